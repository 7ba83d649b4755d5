"""A board without a board: firmware running under qemu-system-arm with its UART0 on a pseudo-terminal
(`-serial pty`), so `tinyprune device-eval --port` talks to it exactly as to a USB serial port.

qemu names the pseudo-terminal on its output ("char device redirected to /dev/pts/N"); its monitor
listens on a Unix socket, through which `reset()` restarts the machine as a board's reset button
would. `-icount shift=0` makes virtual time count instructions, so the firmware's timer figures are
reproducible."""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from tinyprune.errors import TinypruneError

_PTY_LINE = re.compile(rb"char device redirected to (\S+) \(label serial0\)")


class EmulatedBoard:
    def __init__(self, process: subprocess.Popen, port: str, monitor: Path):
        self.process, self.port, self.monitor = process, port, monitor

    def command(self, line: str) -> None:
        """One qemu monitor command (e.g. system_reset, stop, cont)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(str(self.monitor))
            connection.sendall(line.encode() + b"\n")
            time.sleep(0.2)  # the monitor acts on the line before the connection closes

    def reset(self) -> None:
        self.command("system_reset")


@contextmanager
def emulated_board(elf: str | Path, machine: str, startup_seconds: float = 20.0):
    """Run `elf` on qemu's `machine`; yields an EmulatedBoard whose `port` is the UART's pseudo-terminal."""
    if shutil.which("qemu-system-arm") is None:
        raise TinypruneError("qemu-system-arm is not installed", "install qemu-system-arm (Debian/Ubuntu)")
    with tempfile.TemporaryDirectory(prefix="tinyprune-qemu-") as folder:
        monitor = Path(folder) / "monitor.sock"
        command = ["qemu-system-arm", "-machine", machine, "-display", "none", "-serial", "pty",
                   "-monitor", f"unix:{monitor},server,nowait",
                   "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf)]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        try:
            port = _pty_name(process, startup_seconds, command)
            drain = threading.Thread(target=process.stdout.read, daemon=True)  # qemu must never block writing
            drain.start()
            yield EmulatedBoard(process, port, monitor)
        finally:
            process.kill()
            process.wait()
            process.stdout.close()


def _pty_name(process: subprocess.Popen, seconds: float, command: list[str]) -> str:
    found: list[str] = []
    seen = bytearray()

    def read() -> None:
        for line in process.stdout:
            seen.extend(line)
            match = _PTY_LINE.search(line)
            if match:
                found.append(match.group(1).decode())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(seconds)
    if not found:
        raise RuntimeError(f"qemu named no pseudo-terminal in {seconds:g} s: {' '.join(command)}\n"
                           f"{seen.decode(errors='replace')}")
    return found[0]


EMULATED_PORT = "qemu"  # `device-eval --port qemu`: the build's firmware on qemu instead of a board


@contextmanager
def emulated_build(out_dir: str | Path, report: dict, arduino_library: str | None = None):
    """The build's firmware, made for the board's qemu machine with its Serial on UART0, running there;
    yields its port. The standalone C runs as serial firmware; the TFLM sketch, unmodified, is built
    against the installed Arduino library (or `arduino_library`) with the stand-in core."""
    from tinyprune.boards import load_board

    out_dir = Path(out_dir)
    board = load_board(report["target"]["board"]["name"])
    with tempfile.TemporaryDirectory(prefix="tinyprune-firmware-") as folder:
        if report["firmware"]["backend"] == "standalone":
            elf = _standalone_firmware(out_dir, report, board, Path(folder))
        else:
            elf = _sketch_firmware(out_dir, board, Path(folder), arduino_library)
        with emulated_board(elf, board.qemu_machine) as emulated:
            yield emulated.port


def _standalone_firmware(out_dir: Path, report: dict, board, folder: Path) -> Path:
    from tinyprune.backends.standalone import generate_standalone
    from tinyprune.backends.standalone.cortex_m import build_serial_firmware
    from tinyprune.graph.reader import read_graph_file

    model = generate_standalone(read_graph_file(out_dir / "model.tflite"), folder / "c", report["model"]["name"])
    return build_serial_firmware(model, board, folder / "firmware")


def _sketch_firmware(out_dir: Path, board, folder: Path, arduino_library: str | None) -> Path:
    from tinyprune.backends.tflm.arduino import CHIRALE_TENSORFLOWLITE
    from tinyprune.backends.tflm.qemu_proof import build_sketch_elf
    from tinyprune.toolchains.arduino import find_library
    from tinyprune.toolchains.gcc import CompileError

    sketches = sorted(p for p in (out_dir / "arduino").glob("*") if p.is_dir())
    if not sketches:
        raise TinypruneError(f"{out_dir} holds no Arduino sketch to run on qemu",
                             "build for the Arduino library (--runtime arduino, the default) or --backend standalone")
    library = find_library(CHIRALE_TENSORFLOWLITE.name, CHIRALE_TENSORFLOWLITE.version, arduino_library)
    try:
        return build_sketch_elf(sketches[0], board, library, folder / "sketch", serial="uart")[0]
    except CompileError as error:
        raise TinypruneError(f"the sketch does not compile against {library.name} {library.version}: "
                             f"{error.source.name}: {error.first_error}",
                             "rebuild it with this tinyprune version, or give the library's folder with "
                             "--arduino-library") from None

"""qemu-system-arm as the board: a firmware runs on the board's nearest machine, prints through
semihosting into a file, and gets its arguments through semihosting's command line (-append).

Instructions: with `-icount shift=0` each instruction takes 1 ns of virtual time, and SysTick, clocked
by the machine's core clock, ticks every 1 GHz / clock instructions (40 on the 25 MHz MPS2 machines, 50
on the 20 MHz AN505). The firmware polls SysTick (its interrupt locked qemu 7.2 up in some runs) and
times a loop of known length first; that calibration gives the conversion and is checked against the
nominal figure."""
from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tinyprune.boards import Board
from tinyprune.errors import TinypruneError
from tinyprune.toolchains.gcc import require_tool

# Where each machine maps code and data memory (ARM's MPS2 application notes 385/386/500/505).
MACHINES = {
    "mps2-an385": (0x00000000, 0x20000000),  # Cortex-M3
    "mps2-an386": (0x00000000, 0x20000000),  # Cortex-M4
    "mps2-an500": (0x00000000, 0x20000000),  # Cortex-M7
    "mps2-an505": (0x10000000, 0x38000000),  # Cortex-M33
}
# Their core clocks (qemu's hw/arm/mps2.c and mps2-tz.c), which SysTick counts.
CORE_CLOCK_HZ = {"mps2-an385": 25_000_000, "mps2-an386": 25_000_000, "mps2-an500": 25_000_000,
                 "mps2-an505": 20_000_000}
# UART0 of the MPS2 machines (a CMSDK APB UART): what `-serial` connects.
UART0 = {"mps2-an385": 0x40004000, "mps2-an386": 0x40004000, "mps2-an500": 0x40004000}
SERIAL_BAUD_RATE = 115200  # what a firmware's UART and the host's serial port agree on


def uart_context(board: Board) -> dict:
    """UART0's base address and baud-rate divisor on the board's machine (cortex_m/cmsdk_uart.c.j2)."""
    if board.qemu_machine not in UART0:
        raise TinypruneError(f"tinyprune knows no UART of qemu's {board.qemu_machine}",
                             f"choose a board emulated by {', '.join(UART0)}, e.g. --board nano33ble")
    return {"uart_base": UART0[board.qemu_machine],
            "uart_divisor": round(CORE_CLOCK_HZ[board.qemu_machine] / SERIAL_BAUD_RATE)}
CALIBRATION_ITERATIONS = 250_000  # the known loop: 2 instructions a turn


@dataclass
class QemuOutput:
    lines: list[str]  # what the firmware printed through semihosting
    returncode: int | None  # None: killed at the timeout
    command: list[str]
    machine: str

    @property
    def finished(self) -> bool:
        return self.returncode == 0 and "done" in self.lines

    def field(self, label: str) -> str:
        """The word after `label` on the first line starting with it."""
        return next(line.split()[1] for line in self.lines if line.startswith(label + " "))

    def stack_bytes(self) -> tuple[int, int, int] | None:
        """From the runtime's `stack USED REGION HEAP` line (printed once main returns; cortex_m/startup.c.j2):
        the stack's high-water mark in bytes (the deepest word overwritten since reset, main's calls
        included), the bytes the stack and the C library's heap share (RAM above .bss) and the heap's
        bytes (malloc's, through _sbrk); None if the firmware did not print it."""
        line = next((line for line in self.lines if line.startswith("stack ")), None)
        return None if line is None else tuple(int(word, 16) for word in line.split()[1:4])

    def instructions_per_tick(self) -> float:
        """From the firmware's `calibration` line; an error unless qemu counts as -icount shift=0 does."""
        per_tick = 2 * CALIBRATION_ITERATIONS / int(self.field("calibration"), 16)
        nominal = 1e9 / CORE_CLOCK_HZ[self.machine]
        if abs(per_tick - nominal) > 0.01 * nominal:
            raise RuntimeError(f"SysTick calibration gives {per_tick:.2f} instructions a tick, "
                               f"not {nominal:g}: is qemu running with -icount shift=0?")
        return per_tick

    def failure(self, what: str) -> str:
        tail = "\n".join(self.lines[-20:])
        return f"{what} (qemu exit {self.returncode}): {' '.join(self.command)}\n{tail}"


def has_machine(board: Board) -> bool:
    return board.is_arm and board.qemu_machine in MACHINES


def memory_origins(board: Board) -> tuple[int, int]:
    """(flash origin, RAM origin) of the board's qemu machine."""
    if not has_machine(board):
        raise TinypruneError(f"board {board.name!r} ({board.core}) has no Cortex-M qemu machine",
                             "choose an Arm Cortex-M board, e.g. --board nano33ble")
    return MACHINES[board.qemu_machine]


def run_firmware(elf: Path, board: Board, timeout: float = 300.0, arguments: str = "") -> QemuOutput:
    """Run `elf` on the board's machine until it exits through semihosting (or `timeout` seconds pass)."""
    qemu = require_tool("qemu-system-arm")
    memory_origins(board)
    with tempfile.TemporaryDirectory(prefix="tinyprune-qemu-") as folder:
        console = Path(folder) / "semihosting.txt"
        command = [qemu, "-machine", board.qemu_machine, "-display", "none", "-monitor", "none",
                   "-serial", "none", "-chardev", f"file,id=semihosting,path={console}",
                   "-semihosting-config", "enable=on,target=native,chardev=semihosting",
                   "-icount", "shift=0", "-kernel", str(elf)]
        if arguments:
            command += ["-append", arguments]
        try:
            returncode = subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout,
                                        check=False).returncode
        except subprocess.TimeoutExpired:
            returncode = None
        lines = console.read_text(encoding="ascii", errors="replace").splitlines() if console.exists() else []
    return QemuOutput(lines, returncode, command, board.qemu_machine)

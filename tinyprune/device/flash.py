"""`tinyprune flash`: build and upload the exported firmware with the tool the user has, then read what
the board says about itself.

arduino-cli (the board's FQBN; the TFLM sketch's library installed at the pinned version) or
PlatformIO (`pio run -t upload` in the exported project) does the building and uploading; tinyprune
then opens the port and asks the firmware for its INFO frame: the self-test's bytes differing, the
arena used of declared. Which tool and version did it go into the report."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tinyprune.device.link import BoardLink, port_list_fix
from tinyprune.errors import TinypruneError

TOOLS = ("arduino-cli", "pio")
INSTALL = {
    "arduino-cli": "install arduino-cli (https://arduino.github.io/arduino-cli/latest/installation/: "
                   "`curl -fsSL https://raw.githubusercontent.com/arduino/arduino-cli/master/install.sh | sh`)",
    "pio": "install PlatformIO Core: `pip install platformio`",
}
REOPEN_SECONDS = 10.0  # a board re-enumerates its USB port after an upload


@dataclass(frozen=True)
class Firmware:
    """What the build folder holds for a board: the sketch, the PlatformIO project, what they need."""

    sketch: Path | None
    platformio: Path | None
    fqbn: str
    library: str | None  # `arduino-cli lib install` spec of the TFLM library, None for the standalone C
    name: str


@dataclass(frozen=True)
class Tool:
    name: str  # "arduino-cli" or "pio"
    path: str
    version: str


def read_firmware(out_dir: Path, report: dict) -> Firmware:
    """The build's sketch and project folders, from its report."""
    from tinyprune.backends.tflm.arduino import CHIRALE_TENSORFLOWLITE

    sketches = sorted(p for p in (out_dir / "arduino").glob("*") if p.is_dir()) if (out_dir / "arduino").is_dir() else []
    projects = sorted(p for p in (out_dir / "platformio").glob("*") if p.is_dir()) if (out_dir / "platformio").is_dir() else []
    if not sketches and not projects:
        raise TinypruneError(f"{out_dir} holds no Arduino sketch or PlatformIO project to flash",
                             "build for an Arduino library runtime (--runtime arduino, the default) or --backend standalone")
    backend = report["firmware"]["backend"]
    library = None if backend == "standalone" else f"{CHIRALE_TENSORFLOWLITE.name}@{CHIRALE_TENSORFLOWLITE.version}"
    sketch = sketches[0] if sketches else None
    return Firmware(sketch, projects[0] if projects else None, report["target"]["board"]["arduino_fqbn"], library,
                    (sketch or projects[0]).name)


def find_tool(firmware: Firmware, wanted: str | None = None) -> Tool:
    """The uploader: `wanted`, else arduino-cli, else PlatformIO when the build has its project."""
    usable = [t for t in TOOLS if (t == "arduino-cli" and firmware.sketch) or (t == "pio" and firmware.platformio)]
    candidates = [wanted] if wanted else usable
    if wanted and wanted not in usable:
        raise TinypruneError(f"this build has no {'PlatformIO project' if wanted == 'pio' else 'Arduino sketch'} "
                             f"for {wanted}", f"use --tool {usable[0]}" if usable else "rebuild it")
    for name in candidates:
        path = shutil.which(name)
        if path:
            return Tool(name, path, tool_version(name, path))
    names = " or ".join(candidates)
    raise TinypruneError(f"{names} is not installed (not found on PATH)", "; or ".join(INSTALL[t] for t in candidates))


def tool_version(name: str, path: str) -> str:
    """`arduino-cli version` ("arduino-cli  Version: 0.35.3 Commit: ...") / `pio --version` ("PlatformIO Core,
    version 6.1.15"): the version number, or the first line as it is."""
    command = [path, "version"] if name == "arduino-cli" else [path, "--version"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    first = (result.stdout.strip().splitlines() or [""])[0]
    match = re.search(r"[Vv]ersion:?\s*v?([0-9][\w.+-]*)", first)
    return match.group(1) if match else first


def check_port(port: str) -> None:
    """A device path that does not exist is a typo or an unplugged board: say which ports there are."""
    if "://" not in port and not Path(port).exists():
        raise TinypruneError(f"no serial port {port!r}", port_list_fix("tinyprune flash OUT"))


def upload_commands(tool: Tool, firmware: Firmware, port: str) -> list[list[str]]:
    """The tool's commands, in order: install what the build needs, compile, upload."""
    if tool.name == "pio":
        return [[tool.path, "run", "-d", str(firmware.platformio), "-t", "upload", "--upload-port", port]]
    core = ":".join(firmware.fqbn.split(":")[:2])
    commands = [[tool.path, "core", "install", core]]
    if firmware.library:
        commands.append([tool.path, "lib", "install", firmware.library])
    return commands + [[tool.path, "compile", "--fqbn", firmware.fqbn, str(firmware.sketch)],
                       [tool.path, "upload", "--fqbn", firmware.fqbn, "--port", port, str(firmware.sketch)]]


def _run(command: list[str], tool: Tool, port: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode == 0:
        return
    step = command[1] if tool.name == "arduino-cli" else "upload"
    said = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    last = said[-1] if said else "no output"
    fixes = {
        "core": f"install the board's core by hand (`arduino-cli core update-index && arduino-cli core install "
                f"{command[-1]}`) and run again",
        "lib": f"install the library by hand (`arduino-cli lib install \"{command[-1]}\"`) and run again",
        "compile": "read the compiler's message above; the sketch compiles as exported with the board's core installed",
        "upload": f"check that {port} is the board (unplug it and see which port goes away), close any serial monitor "
                  "holding it, and double-tap the board's reset button to put it in its bootloader",
    }
    raise TinypruneError(f"{tool.name} {step} failed (exit {result.returncode}): {last}", fixes[step])


def open_after_upload(port: str, timeout: float) -> BoardLink:
    """The port, waiting while the board re-enumerates it after the upload."""
    deadline = time.monotonic() + REOPEN_SECONDS
    while True:
        try:
            return BoardLink.open(port, answer_seconds=timeout)
        except TinypruneError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.25)


def flash(out_dir: str | Path, port: str, tool: str | None = None, timeout: float = 10.0) -> dict:
    """Build and upload OUT's firmware to the board on `port`, read its INFO; the report's flash section."""
    from tinyprune.device.build_folder import read_build
    from tinyprune.report import add_device_section

    out_dir = Path(out_dir)
    report, _ = read_build(out_dir)
    firmware = read_firmware(out_dir, report)
    uploader = find_tool(firmware, tool)
    check_port(port)
    for command in upload_commands(uploader, firmware, port):
        _run(command, uploader, port)
    with open_after_upload(port, timeout) as link:
        info = link.hello()
        boot_lines = link.counters.text.decode("utf-8", errors="replace").splitlines()
    section = {"tool": uploader.name, "tool_version": uploader.version, "port": port,
               "firmware": str((firmware.sketch if uploader.name == "arduino-cli" else firmware.platformio)
                               .relative_to(out_dir)),
               "fqbn": firmware.fqbn, "library": firmware.library, "board": info.to_dict(),
               "boot_lines": [line.strip() for line in boot_lines if line.strip()]}
    add_device_section(out_dir, "flash", section)
    if info.self_test == "fail":
        raise self_test_failure(section, out_dir, report)
    return section


def self_test_failure(section: dict, out_dir: Path, report: dict) -> TinypruneError:
    """The board ran the uploaded firmware and its boot self-test differs from the host's TFLM: the
    firmware on the board is wrong, whatever the upload's own exit code said. The report keeps the
    measurement; the fix says where to look next, for the backend that built it."""
    board, port = section["board"], section["port"]
    evaluate = f"`tinyprune device-eval {out_dir} --port {port}` shows which inputs differ"
    if report["firmware"]["backend"] == "standalone":
        fix = (f"{evaluate}; the standalone C must equal TFLM on every core, so please report it with the build "
               "folder, and build with --backend tflm meanwhile")
    else:
        fix = (f"{evaluate}; the board's TFLM ({section['library'] or 'its runtime'}) computes this model differently "
               f"from the host's: check it with `tinyprune inspect {out_dir}/model.tflite --board "
               f"{report['target']['board']['name']}`, or build with --backend standalone")
    return TinypruneError(f"the board's self-test FAILED after the upload: {board['self_test_differing_bytes']} of "
                          f"{board['output_size']} output bytes differ from the host's TFLM (recorded in "
                          f"{out_dir}/report.json)", fix)


def describe_flash(section: dict) -> str:
    board = section["board"]
    self_test = {"pass": "self-test PASS", "fail": "self-test FAIL", "none": "no self-test"}[board["self_test"]]
    if board["self_test_differing_bytes"] is not None:
        self_test += f" ({board['self_test_differing_bytes']} of {board['output_size']} output bytes differ)"
    return (f"{section['tool']} {section['tool_version']}: {section['firmware']} on {section['port']}; "
            f"{self_test}; arena {board['arena_used']:,} of {board['arena_declared']:,} B used")


"""An Arduino sketch built the way the Arduino IDE builds it, for qemu: the user's installed library
(found where the IDE and arduino-cli put libraries, or given), compiled with the board core's flags and
defines and cached per library version and flags (only the sources the firmware links: the first build
compiles what the model needs, later ones nothing), and a stand-in for the Arduino core
(firmware_templates/arduino_core/) in place of the board's, which qemu cannot run.

The flags are ArduinoCore-mbed's (variants/*/cxxflags.txt, cflags.txt, defines.txt and platform.txt's
recipes): -std=gnu++14 / gnu11, -Os, no exceptions or RTTI, unsigned char, sections for the linker's
garbage collection, the ARDUINO* defines and CMSIS's ARM_MATH_CMx. Neither the core nor the library
defines TF_LITE_STATIC_MEMORY. Libraries build with the IDE's default warning level (none)."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tinyprune.boards import Board
from tinyprune.errors import TinypruneError
from tinyprune.backends.templates import render
from tinyprune.resources import templates_dir
from tinyprune.toolchains.gcc import CompileError, archive, compile_sources, gcc_version, link, target_flags
from tinyprune.toolchains.qemu import CORE_CLOCK_HZ, uart_context

ARDUINO_IDE_VERSION = "10607"  # what arduino-cli passes as -DARDUINO (runtime.ide.version)
SOURCE_SUFFIXES = (".c", ".cpp", ".S")
CORE_FILES = ("Arduino.h", "Wire.h", "arduino_core.cpp")
COMMON_FLAGS = ("-Os", "-g0", "-fdata-sections", "-ffunction-sections", "-fmessage-length=0", "-fno-exceptions",
                "-fomit-frame-pointer", "-funsigned-char", "-nostdlib")
CXX_FLAGS = ("-std=gnu++14", "-fno-rtti", "-Wvla")


@dataclass(frozen=True)
class InstalledLibrary:
    """An Arduino library as installed: its folder and what its library.properties says."""

    path: Path
    name: str
    version: str

    def fingerprint(self) -> str:
        """A digest of the library's files (paths and sizes): the same version edited in place is another."""
        files = sorted((str(p.relative_to(self.path)), p.stat().st_size) for p in self.path.rglob("*") if p.is_file())
        return hashlib.sha256(json.dumps(files).encode()).hexdigest()[:16]

    @property
    def sources(self) -> list[Path]:
        """What the IDE compiles of a 1.5-format library: every C, C++ and assembly file under src/."""
        return sorted(p for p in (self.path / "src").rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file())


def library_folders() -> list[Path]:
    """Where the Arduino IDE (1.x and 2.x) and arduino-cli install libraries, in their order of preference:
    $ARDUINO_DIRECTORIES_USER (arduino-cli), ~/Arduino (Linux), ~/Documents/Arduino (macOS, Windows)."""
    homes = [os.environ.get("ARDUINO_DIRECTORIES_USER", ""), "~/Arduino", "~/Documents/Arduino",
             "~/snap/arduino/current/Arduino"]
    return [Path(home).expanduser() / "libraries" for home in homes if home]


def read_properties(folder: Path) -> dict[str, str]:
    properties = {}
    for line in (folder / "library.properties").read_text(encoding="utf-8", errors="replace").splitlines():
        key, equals, value = line.partition("=")
        if equals:
            properties[key.strip()] = value.strip()
    return properties


def find_library(name: str, version: str, explicit: str | Path | None = None) -> InstalledLibrary:
    """The installed library called `name` (library.properties' name=, compared without case): the one at
    `explicit` when given, else the first in library_folders(). A different version is used, and named."""
    candidates = [Path(explicit).expanduser()] if explicit else [
        folder for root in library_folders() if root.is_dir() for folder in sorted(root.iterdir())]
    for folder in candidates:
        if not (folder / "library.properties").is_file():
            if explicit:
                raise TinypruneError(f"{folder} is not an Arduino library (no library.properties)",
                                     f"give --arduino-library the folder of {name} {version}")
            continue
        properties = read_properties(folder)
        if properties.get("name", "").lower() == name.lower():
            return InstalledLibrary(folder, properties["name"], properties.get("version", "unknown"))
        if explicit:
            raise TinypruneError(f"{folder} holds {properties.get('name')!r}, not {name}",
                                 f"give --arduino-library the folder of {name} {version}")
    searched = ", ".join(str(root) for root in library_folders())
    raise TinypruneError(f"the Arduino library {name} is not installed (searched {searched})",
                         f'arduino-cli lib install "{name}@{version}", or give its folder with --arduino-library')


def core_defines(board: Board) -> list[str]:
    """The defines the board's Arduino core passes to every source (ArduinoCore-mbed's platform.txt and
    defines.txt, as far as the TFLM library and CMSIS read them)."""
    architecture = board.arduino_architecture.upper()
    defines = [f"-DARDUINO={ARDUINO_IDE_VERSION}", f"-DARDUINO_ARCH_{architecture}"]
    if board.arduino_architecture.startswith("mbed"):
        defines.append("-DARDUINO_ARCH_MBED")
    core_number = "".join(ch for ch in board.mcpu.removeprefix("cortex-m") if ch.isdigit())
    defines.append(f"-DARM_MATH_CM{core_number}")
    if board.mfpu:
        defines.append("-D__FPU_PRESENT=1")
    return defines


def compile_flags(board: Board, language: str) -> list[str]:
    """gcc flags for `language` ("c" or "c++") as the IDE compiles a library for `board`."""
    flags = [*target_flags(board), *COMMON_FLAGS, *core_defines(board)]
    return flags + (list(CXX_FLAGS) if language == "c++" else ["-std=gnu11"])


def cache_root() -> Path:
    root = os.environ.get("TINYPRUNE_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(root) / "tinyprune" if root else Path.home() / ".cache" / "tinyprune"


def write_core(folder: Path, board: Board, loop_turns: int = 1, serial: str = "semihosting") -> list[Path]:
    """The stand-in core's files (Arduino.h, Wire.h, arduino_core.cpp) in `folder`; its sources. Serial is
    `serial`: "semihosting" (written only; loop() runs `loop_turns` times) or "uart" (the machine's UART0,
    both ways, as tinyprune device-eval needs it; loop() runs for ever)."""
    folder.mkdir(parents=True, exist_ok=True)
    uart = uart_context(board) if serial == "uart" else {}
    context = {"core_title": f"the {board.arduino_architecture} core of {board.title}", "loop_turns": loop_turns,
               "ticks_per_microsecond": CORE_CLOCK_HZ[board.qemu_machine] // 1_000_000, "stuck_after_seconds": 10,
               "serial": serial, **uart}
    for name in CORE_FILES:
        (folder / name).write_text(render(f"arduino_core/{name}.j2", **context), encoding="utf-8")
    sources = [folder / "arduino_core.cpp"]
    if uart:
        for name in ("cmsdk_uart.c", "cmsdk_uart.h"):
            (folder / name).write_text(render(f"cortex_m/{name}.j2", **uart), encoding="utf-8")
        sources.append(folder / "cmsdk_uart.c")
    return sources


def library_cache(library: InstalledLibrary, board: Board) -> Path:
    """Where the library's objects for `board` are kept: one folder per library name and version, compiler
    version, flags and stand-in core headers; one object per source inside, compiled once."""
    headers = [(templates_dir() / "arduino_core" / f"{name}.j2").read_text() for name in ("Arduino.h", "Wire.h")]
    key = hashlib.sha256(json.dumps({
        "library": [library.name, library.version, library.fingerprint()], "gcc": gcc_version(),
        "c": compile_flags(board, "c"), "c++": compile_flags(board, "c++"), "core headers": headers,
    }).encode()).hexdigest()[:16]
    return cache_root() / "arduino-libraries" / f"{library.name}-{library.version}-{board.mcpu}-{key}"


def library_objects(library: InstalledLibrary, board: Board, sources: list[Path]) -> list[Path]:
    """The objects of `sources` (files of the library), compiled as the IDE compiles a library (its src/
    folder and the core on the include path, warnings off), taken from the cache when there."""
    cache = library_cache(library, board)
    objects = [cache / source.relative_to(library.path).with_suffix(".o") for source in sources]
    missing = [(source, obj) for source, obj in zip(sources, objects) if not obj.is_file()]
    if missing:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".building-", dir=cache) as building:
            core = Path(building) / "core"
            write_core(core, board)
            includes = [f"-I{library.path / 'src'}", f"-I{core}", "-w"]
            for language in ("c", "c++"):
                group = [(s, o) for s, o in missing if (s.suffix == ".c") == (language == "c")]
                built = compile_sources([s for s, _ in group], Path(building) / language.replace("+", "x"),
                                        compile_flags(board, language) + includes)
                for (_, obj), fresh in zip(group, built):
                    obj.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(fresh, obj)  # atomic: a concurrent build sees a whole object or none
    return objects


UNDEFINED = re.compile(r"undefined reference to `(vtable for )?([^'(]+)")


def defining_sources(library: InstalledLibrary, linker_output: str) -> list[Path]:
    """The library sources that define the symbols the linker found undefined: those where `Class::member(`
    or `function(` (a C++ symbol's namespaces are not spelt at its definition) is followed, past its
    parameters and any initialiser list, by a body; for a class's vtable, any with a `Class::` member."""
    patterns = set()
    for vtable, symbol in UNDEFINED.findall(linker_output):
        parts = [part for part in symbol.strip().split("::") if part]
        if vtable:
            patterns.add(re.escape(parts[-1] + "::"))
            continue
        name = "::".join(parts[-2:]) if len(parts) >= 2 and parts[-2][:1].isupper() else parts[-1]
        patterns.add(rf"\b{re.escape(name)}\s*\((?:[^;{{}}()]|\([^;{{}}()]*\))*\)\s*(?:const\s*)?(?::[^;{{]*)?\{{")
    if not patterns:
        return []
    pattern = re.compile("|".join(sorted(patterns)))
    return [source for source in library.sources if pattern.search(_source_text(source))]


@functools.lru_cache(maxsize=None)
def _source_text(source: Path) -> str:
    return source.read_text(encoding="utf-8", errors="replace")


def link_with_library(objects: list[Path], library: InstalledLibrary, board: Board, elf: Path, linker_script: Path,
                      libraries: list[str]) -> Path:
    """Link `objects` with the library: the linker names what is undefined, the library sources defining it
    are compiled (or taken from the cache) into an archive, and the link is retried until nothing new is
    found. The archive holds what an Arduino IDE build of the whole library would contribute to the
    firmware: sources nothing refers to add nothing after the linker's garbage collection."""
    sources: list[Path] = []
    while True:
        members = archive(library_objects(library, board, sources), elf.parent / "library.a") if sources else None
        try:
            return link([*objects, *([members] if members else [])], elf, list(target_flags(board)), linker_script,
                        libraries)
        except CompileError as error:
            more = [source for source in defining_sources(library, error.output) if source not in sources]
            if not more:
                raise
            sources += more

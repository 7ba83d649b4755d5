"""Debian's arm-none-eabi-gcc: the target flags of a board's core, compiling many sources (in parallel,
stopping at the first error), linking, and reading sizes and symbols off the ELF."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tinyprune.boards import Board
from tinyprune.errors import TinypruneError

GCC = "arm-none-eabi-gcc"
GXX = "arm-none-eabi-g++"
INSTALL_HINT = ("install gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib "
                "qemu-system-arm (Debian/Ubuntu)")


class CompileError(Exception):
    """A source did not compile or link: `first_error` is the compiler's first `error:` line, or the linker's
    first message (a region overflowed, an undefined reference), not collect2's "ld returned 1" after it."""

    def __init__(self, source: Path, output: str):
        self.source = source
        self.output = output
        lines = [re.sub(r"^\S*/(arm-none-eabi-)?ld(\.bfd)?: ", "ld: ", line.strip())
                 for line in output.splitlines() if line.strip()]
        telling = [line for line in lines if not line.startswith("collect2:") and (
            "error" in line or "undefined reference" in line or (line.startswith("ld: ") and not line.endswith(":")))]
        self.first_error = (telling or lines or ["no message"])[0]
        super().__init__(f"{source}: {self.first_error}")


@dataclass(frozen=True)
class Sizes:
    """arm-none-eabi-size's Berkeley figures."""

    text: int
    data: int
    bss: int

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss


def require_tool(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise TinypruneError(f"{tool} is not installed", INSTALL_HINT)
    return path


def target_flags(board: Board) -> tuple[str, ...]:
    """-mcpu/-mthumb/-mfpu/-mfloat-abi from the board file; an error for a board that is not Arm."""
    if not board.is_arm:
        raise TinypruneError(f"board {board.name!r} ({board.core}) is not an Arm Cortex-M",
                             "choose an Arm Cortex-M board, e.g. --board nano33ble")
    return board.gcc_flags


def gcc_version() -> str:
    return subprocess.run([require_tool(GCC), "-dumpversion"], capture_output=True, text=True,
                          check=True).stdout.strip()


def compile_sources(sources: list[Path], objects_dir: Path, flags: list[str],
                    jobs: int | None = None) -> list[Path]:
    """Compile each source (C with gcc, C++ with g++, chosen by suffix) into `objects_dir`, objects named
    after their index and stem so equal stems in different folders do not collide. Raises CompileError
    for the first source (in `sources` order) that fails."""
    objects_dir.mkdir(parents=True, exist_ok=True)
    require_tool(GCC)
    require_tool(GXX)

    def one(numbered):
        number, source = numbered
        obj = objects_dir / f"{number:04d}_{source.stem}.o"
        compiler = GCC if source.suffix == ".c" else GXX
        language = ["-x", "c++"] if source.suffix == ".ino" else []
        result = subprocess.run([compiler, *flags, *language, "-c", str(source), "-o", str(obj)],
                                capture_output=True, text=True, check=False)
        return obj, result

    objects, first_failure = [], None
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        for (obj, result), source in zip(pool.map(one, enumerate(sources)), sources):
            if result.returncode != 0 and first_failure is None:
                first_failure = CompileError(source, result.stderr + result.stdout)
            objects.append(obj)
    if first_failure is not None:
        raise first_failure
    return objects


def archive(objects: list[Path], library: Path) -> Path:
    """Objects into a static library: the linker then takes only the objects the firmware uses."""
    library.unlink(missing_ok=True)
    subprocess.run([require_tool("arm-none-eabi-ar"), "rcs", str(library), *map(str, objects)], check=True)
    return library


def link(inputs: list[Path], elf: Path, flags: list[str], linker_script: Path, libraries: list[str] = ()) -> Path:
    """Link with g++ (C++ objects need its runtime), unused sections dropped."""
    result = subprocess.run(
        [require_tool(GXX), *flags, "-T", str(linker_script), "-nostartfiles", "-Wl,--gc-sections",
         f"-Wl,-Map={elf.with_suffix('.map')}", *map(str, inputs), *libraries, "-o", str(elf)],
        capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CompileError(elf, result.stderr + result.stdout)
    return elf


def section_sizes(elf: Path) -> Sizes:
    output = subprocess.run([require_tool("arm-none-eabi-size"), str(elf)], capture_output=True, text=True,
                            check=True).stdout
    text, data, bss = (int(v) for v in output.splitlines()[1].split()[:3])
    return Sizes(text, data, bss)


def symbol_size(elf: Path, name: str) -> int:
    """The size arm-none-eabi-nm gives a symbol (e.g. a const array linked into .text)."""
    output = subprocess.run([require_tool("arm-none-eabi-nm"), "-S", str(elf)], capture_output=True,
                            text=True, check=True).stdout
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[3] == name:
            return int(fields[1], 16)
    raise KeyError(f"{elf} has no sized symbol {name}")

"""The bare-metal runtime every test firmware links, rendered for a board from firmware_templates/cortex_m/:
reset code and vector table (with C++ constructors), semihosting (print, exit, command line), the SysTick
instruction counter and a linker script placing flash and RAM where the board's qemu machine maps them."""
from __future__ import annotations

from pathlib import Path

from tinyprune.boards import Board
from tinyprune.backends.templates import render
from tinyprune.toolchains.qemu import CALIBRATION_ITERATIONS, memory_origins

RUNTIME_SOURCES = ("startup.c", "semihost.c", "instruction_counter.c")
RUNTIME_FILES = RUNTIME_SOURCES + ("semihost.h", "instruction_counter.h", "linker.ld")


def runtime_context(board: Board) -> dict:
    flash_origin, ram_origin = memory_origins(board)
    return {"board": board, "flash_origin": flash_origin, "ram_origin": ram_origin,
            "calibration_iterations": CALIBRATION_ITERATIONS}


def write_runtime(folder: Path, board: Board) -> list[Path]:
    """The runtime's files in `folder`; returns the C sources among them."""
    folder.mkdir(parents=True, exist_ok=True)
    context = runtime_context(board)
    for name in RUNTIME_FILES:
        (folder / name).write_text(render(f"cortex_m/{name}.j2", **context), encoding="utf-8")
    return [folder / name for name in RUNTIME_SOURCES]

"""The standalone model as bare-metal Cortex-M firmware: a project (the shared runtime from
tinyprune.toolchains: startup code and vector table, semihosting, the SysTick instruction counter, a linker
script from the board's flash and RAM; plus a Makefile and a CMakeLists.txt) built with Debian's
arm-none-eabi-gcc, measured with arm-none-eabi-size, and run under qemu-system-arm on the board's nearest
machine with test inputs linked in (instructions counted as tinyprune.toolchains.qemu explains).
A profiled build (`profile=True`) also reads the counter between kernel calls: instructions per step,
less what reading the counter costs (measured by the firmware on back-to-back reads), averaged over
the inputs. The call stack: GCC's call graph gives a static bound at build time (toolchains/stack.py),
the run its measured high-water mark (the runtime paints the stack at reset)."""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyprune.boards import Board
from tinyprune.errors import TinypruneError
from tinyprune.backends.standalone.codegen import StandaloneModel
from tinyprune.backends.templates import render
from tinyprune.toolchains.gcc import require_tool, section_sizes, symbol_size
from tinyprune.toolchains.qemu import CORE_CLOCK_HZ, run_firmware, uart_context
from tinyprune.toolchains.runtime import runtime_context, write_runtime
from tinyprune.toolchains.stack import (CALLGRAPH_FLAGS, StackBound, add_library_frames, read_call_graph,
                                       stack_bound)

MARK_CALIBRATION_PAIRS = 1000  # back-to-back counter marks the profiled firmware times
COMMON_FILES = (
    ("cortex_m/Makefile.j2", "Makefile"),
    ("cortex_m/CMakeLists.txt.j2", "CMakeLists.txt"),
)
# the test firmware: linked-in inputs, outputs through semihosting
PROJECT_FILES = COMMON_FILES + (("cortex_m/main.c.j2", "main.c"),)
# the serial firmware: inputs and outputs over UART0 in tinyprune's protocol (tinyprune device-eval)
SERIAL_FILES = COMMON_FILES + (("cortex_m/serial_main.c.j2", "main.c"), ("cortex_m/cmsdk_uart.c.j2", "cmsdk_uart.c"),
                               ("cortex_m/cmsdk_uart.h.j2", "cmsdk_uart.h"))


@dataclass
class Firmware:
    elf: Path
    project_dir: Path
    board: Board
    model: StandaloneModel
    text: int  # arm-none-eabi-size, Berkeley format
    data: int
    bss: int
    test_vector_bytes: int  # the linked-in test inputs (in .text as const data)
    sample_count: int
    profiled: bool = False  # built with the per-step counter reads (TP_STEP_HOOK)
    stack_bound: StackBound | None = None  # static, the whole firmware's (from Reset_Handler)
    model_stack_bound: StackBound | None = None  # static, model_invoke's own call tree

    @property
    def flash_bytes(self) -> int:
        """text + data without the test inputs: what the model's firmware needs in flash."""
        return self.text + self.data - self.test_vector_bytes

    @property
    def ram_bytes(self) -> int:
        return self.data + self.bss

    def summary(self) -> dict:
        """arm-none-eabi-size's figures and what the board-fit check compares with the board."""
        return {"board": self.board.name, "text": self.text, "data": self.data, "bss": self.bss,
                "test_vector_bytes": self.test_vector_bytes, "flash_bytes": self.flash_bytes,
                "ram_bytes": self.ram_bytes, "stack_bound_bytes": self.stack_bound.bytes,
                "model_stack_bound_bytes": self.model_stack_bound.bytes, "stack_bound": self.stack_bound.describe()}


@dataclass
class QemuRun:
    outputs: np.ndarray  # int8, (samples, output size)
    instructions: np.ndarray  # per inference, one per sample
    instructions_per_tick: float  # measured on the calibration loop
    step_instructions: np.ndarray | None = None  # profiled builds: per kernel call, mean per inference
    stack_bytes: int = 0  # the stack's high-water mark over the run (toolchains.qemu.QemuOutput.stack_bytes)
    stack_region_bytes: int = 0  # RAM the stack could grow into (above .bss)
    heap_bytes: int = 0  # what the C library's malloc took (the standalone C allocates nothing: 0)

    @property
    def instructions_per_inference(self) -> float:
        return float(self.instructions.mean())

    def summary(self, macs: int) -> dict:
        return {"samples": len(self.outputs), "instructions_per_inference": round(self.instructions_per_inference),
                "instructions_per_mac": round(self.instructions_per_inference / macs, 2) if macs else None,
                "instructions_per_tick": self.instructions_per_tick, "stack_bytes": self.stack_bytes,
                "stack_region_bytes": self.stack_region_bytes, "heap_bytes": self.heap_bytes}


def _write_project(model: StandaloneModel, board: Board, project_dir: str | Path, files: tuple,
                   sources: list[str], **context) -> Path:
    """The model's C, and `files` rendered with `context`, compiling `sources` besides the model's."""
    project_dir = Path(project_dir)
    runtime_sources = write_runtime(project_dir, board)
    for path in model.files:
        if path.parent.resolve() != project_dir.resolve():
            shutil.copyfile(path, project_dir / path.name)
    sources = [p.name for p in model.sources] + [p.name for p in runtime_sources] + sources
    context = {**runtime_context(board), "name": model.name, "sources": sources, **context}
    for template, target in files:
        (project_dir / target).write_text(render(template, **context), encoding="utf-8")
    return project_dir


def write_cortex_m_project(model: StandaloneModel, board: Board, project_dir: str | Path,
                           samples: np.ndarray) -> Path:
    """The model's C plus the bare-metal project around it, with `samples` (int8) as test inputs."""
    samples = np.asarray(samples, dtype=np.int8).reshape(len(samples), -1)
    if samples.shape[1] != model.input_size:
        raise TinypruneError(f"test inputs have {samples.shape[1]} values, the model takes {model.input_size}",
                             f"give samples of shape {list(model.input_shape[1:])}")
    return _write_project(model, board, project_dir, PROJECT_FILES, ["main.c"], serial="none",
                          samples=samples.tolist(), sample_count=len(samples),
                          mark_calibration_pairs=MARK_CALIBRATION_PAIRS)


def write_serial_project(model: StandaloneModel, board: Board, project_dir: str | Path) -> Path:
    """The model's C as firmware that answers tinyprune's serial protocol on the qemu machine's UART0
    (`make run` names a pseudo-terminal to pass to `tinyprune device-eval --port`)."""
    from tinyprune.device.firmware import write_link_sources

    project_dir = _write_project(model, board, project_dir, SERIAL_FILES, ["tp_link.c", "cmsdk_uart.c", "main.c"],
                                 serial="pty", timer_hz=CORE_CLOCK_HZ[board.qemu_machine], **uart_context(board))
    write_link_sources(project_dir, model.input_size)
    return project_dir


def build_cortex_m(model: StandaloneModel, board: Board, samples: np.ndarray,
                   project_dir: str | Path | None = None, extra_cflags: tuple[str, ...] = (),
                   profile: bool = False) -> Firmware:
    """Write the project and build it (see build_project)."""
    project_dir = write_cortex_m_project(model, board, project_dir or model.out_dir / f"cortex_m_{board.name}",
                                         samples)
    return build_project(project_dir, model, board, len(samples), extra_cflags, profile)


def _make(project_dir: Path, extra_cflags: tuple[str, ...] = ()) -> tuple[Path, int, int, int]:
    """firmware.elf built by the project's Makefile (warnings are errors, plus `extra_cflags`; GCC's call
    graph beside it, *.ci), and its text, data and bss from arm-none-eabi-size."""
    for tool in ("arm-none-eabi-gcc", "make"):
        require_tool(tool)
    for stale in project_dir.glob("*.ci"):
        stale.unlink()
    cflags = " ".join(("-Werror",) + CALLGRAPH_FLAGS + tuple(extra_cflags))
    result = subprocess.run(["make", "-B", "-C", str(project_dir), f"EXTRA_CFLAGS={cflags}", "firmware.elf"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"firmware build failed in {project_dir}:\n{result.stdout}\n{result.stderr}")
    elf = project_dir / "firmware.elf"
    sizes = section_sizes(elf)
    return elf, sizes.text, sizes.data, sizes.bss


def build_project(project_dir: Path, model: StandaloneModel, board: Board, sample_count: int,
                  extra_cflags: tuple[str, ...] = (), profile: bool = False) -> Firmware:
    """Build a written project with its Makefile (warnings are errors, plus `extra_cflags`); sizes from
    arm-none-eabi-size. `profile`: read the instruction counter around every kernel call (run_qemu then
    reports each step)."""
    profiling = ("-DTP_STEP_HOOK=model_step_mark",) if profile else ()
    elf, text, data, bss = _make(project_dir, tuple(extra_cflags) + profiling)
    calls = read_call_graph(project_dir)
    add_library_frames(calls, elf)
    return Firmware(elf, project_dir, board, model, text, data, bss, symbol_size(elf, "test_inputs"), sample_count,
                    profile, stack_bound(calls, "Reset_Handler"), stack_bound(calls, "model_invoke"))


def build_serial_firmware(model: StandaloneModel, board: Board, project_dir: str | Path) -> Path:
    """The serial firmware's ELF for the board's qemu machine (tinyprune.device.emulator runs it)."""
    return _make(write_serial_project(model, board, project_dir))[0]


def run_qemu(firmware: Firmware, timeout: float = 300.0) -> QemuRun:
    """Run the firmware on the board's qemu machine: its outputs and instructions per inference."""
    run = run_firmware(firmware.elf, firmware.board, timeout)
    if not run.finished:
        raise RuntimeError(run.failure("qemu run failed"))
    per_tick = run.instructions_per_tick()
    empty = int(run.field("empty"), 16)
    rows = [re.fullmatch(r"out ([0-9a-f]*) ([0-9a-f]{8})", line) for line in run.lines if line.startswith("out ")]
    outputs = np.array([np.frombuffer(bytes.fromhex(m.group(1)), dtype=np.int8) for m in rows])
    ticks = np.array([int(m.group(2), 16) - empty for m in rows], dtype=np.float64)
    steps = None
    if firmware.profiled:
        mark = int(run.field("mark"), 16) / MARK_CALIBRATION_PAIRS
        step_ticks = np.array([int(line.split()[2], 16) for line in run.lines if line.startswith("step ")],
                              dtype=np.float64)
        steps = (step_ticks / len(rows) - mark) * per_tick
    return QemuRun(outputs, ticks * per_tick, per_tick, steps, *(run.stack_bytes() or (0, 0, 0)))


def format_code_bytes(board: Board, work_dir: str | Path) -> dict[str, dict[str, int]]:
    """What formats.KERNEL_CODE_BYTES states, measured: per weighted kernel, its .text compiled at -O2 for
    the board with no sparse weight format (""), and what each format's path adds to that (convolutions
    without a fused pool; a fused pool's path gives figures within about 10 %)."""
    from tinyprune.backends.standalone.codegen import KERNEL_DIR, SHARED_HEADERS, kernel_macro
    from tinyprune.backends.standalone.formats import FORMATS, KERNEL_CODE_BYTES
    from tinyprune.resources import templates_dir
    from tinyprune.toolchains.gcc import compile_sources, target_flags

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    for header in SHARED_HEADERS:
        shutil.copyfile(templates_dir() / KERNEL_DIR / header, work_dir / header)
    measured: dict[str, dict[str, int]] = {}
    for kernel in KERNEL_CODE_BYTES:
        shutil.copyfile(templates_dir() / KERNEL_DIR / f"{kernel}.c", work_dir / f"{kernel}.c")
        sizes = {}
        for form in ("",) + FORMATS[1:]:
            prefix = kernel_macro(kernel)
            (work_dir / "tp_config.h").write_text(
                f"#define {prefix}_FORMATS ({f'(1u << TP_{form.upper()})' if form else '0u'})\n"
                f"#define {prefix}_POOLED 0\n#define {prefix}_PLAIN 1\n#define TP_CONV2D_IN_PLACE 0\n"  # plain convolutions
                f"#define TP_CONV2D_POOL_MEMBERS 4\n"
                f"#define TP_FULLY_CONNECTED_LUT4 {int(form == 'bitmask_lut')}\n"  # 4-bit indices: 16 clusters
                # TFLM's long requantization, no 4-bit index unpacking: the paths any model may take
                "#define TP_CONV2D_LUT4 0\n#define TP_CONV2D_UNPACKED 0\n#define TP_CONV2D_DOUBLED 0\n"
                "#define TP_FULLY_CONNECTED_DOUBLED 0\n")
            objects = compile_sources([work_dir / f"{kernel}.c"], work_dir / "objects",
                                      ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *target_flags(board)])
            sizes[form] = section_sizes(objects[0]).text
        measured[kernel] = {form: size - (sizes[""] if form else 0) for form, size in sizes.items()}
    return measured

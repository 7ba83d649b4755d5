"""The TFLM backend's proof: the exported Arduino sketch, unmodified, built against the Arduino library the
user has installed (compiled as the Arduino IDE compiles it for the board's core, cached) with a stand-in
for the Arduino core, and run on the board's qemu machine; then a probe firmware over the same library
objects and model_data measures what the sketch relies on.

Two firmwares, one library:
- the sketch: compiled yes/no (and the first error), text/data/bss, and its own boot self-test line;
- the probe (firmware_templates/tflm_probe/): the outputs of N test inputs with an ample arena (compared
  here with the host's TFLM), instructions per inference, and the smallest arena (a multiple of 4) that
  allocates and gives those outputs, by bisection inside the firmware: one qemu run for the whole search,
  resumed above a probe that faulted or hung (a too-small arena can corrupt the interpreter)."""
from __future__ import annotations

import json
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tinyprune.backends.templates import render
from tinyprune.boards import Board
from tinyprune.errors import TinypruneError
from tinyprune.toolchains.arduino import InstalledLibrary, compile_flags, find_library, link_with_library, write_core
from tinyprune.toolchains.gcc import CompileError, Sizes, compile_sources, section_sizes
from tinyprune.toolchains.qemu import CALIBRATION_ITERATIONS, has_machine, run_firmware
from tinyprune.toolchains.runtime import write_runtime

PROOF_SAMPLES = 10  # test inputs the probe firmware runs
LINK_LIBRARIES = ["--specs=nosys.specs", "-lstdc++", "-lsupc++", "-lm", "-lc", "-lgcc", "-lnosys"]
RUN_TIMEOUT = 300.0  # seconds of one qemu run; a probe that hangs costs this once


@dataclass
class TflmQemuProof:
    library_name: str  # name and version of the library built against
    library: str  # ... and its folder
    machine: str
    compiled: bool
    first_error: str = ""
    text: int = 0  # the sketch's firmware (with the stand-in core), arm-none-eabi-size
    data: int = 0
    bss: int = 0
    sketch_output: tuple[str, ...] = ()  # what the sketch printed on boot
    sketch_passed: bool = False  # it printed PASS
    samples: int = 0  # test inputs the probe ran
    differing_bytes: int = 0  # of their outputs, against the host's TFLM
    output_bytes: int = 0
    arena_bytes: int = 0  # the smallest arena that allocates and gives the same outputs (multiple of 4)
    arena_used_bytes: int = 0  # TFLM's own arena_used_bytes() with an ample arena
    instructions_per_inference: int = 0
    stack_bytes: int = 0  # the sketch's call stack, high-water mark (toolchains.qemu.QemuOutput.stack_bytes)
    heap_bytes: int = 0  # what the sketch's firmware took with malloc (the C++ runtime's, the core's)
    qemu_runs: int = 0
    seconds: float = 0.0
    estimated_arena_bytes: int | None = None  # the emulation's figure for the same build, for comparison
    kernel_difference: str = ""  # when outputs differ: the first operator the library is known to compute otherwise

    def summary(self) -> dict:
        return asdict(self)

    @property
    def arena_source(self) -> str:
        """How arena_bytes was obtained, in words for the firmware's comment."""
        return f"measured on qemu {self.machine} with {self.library_name} as the Arduino IDE builds it"


@dataclass(frozen=True)
class SketchFacts:
    """What the probe firmware takes from the sketch it measures, so both run the same model the same way."""

    model_array: str
    resolver_methods: tuple[str, ...]
    input_bytes: int
    output_bytes: int
    arena_bytes: int  # what the sketch declares

    @classmethod
    def read(cls, sketch_dir: Path) -> "SketchFacts":
        ino = next(sketch_dir.glob("*.ino")).read_text(encoding="utf-8")
        header = (sketch_dir / "model_data.h").read_text(encoding="utf-8")

        def constant(name: str) -> int:
            return int(re.search(rf"constexpr size_t {name} = (\d+);", ino).group(1))

        return cls(re.search(r"extern const unsigned char (\w+)\[\];", header).group(1),
                   tuple(re.findall(r"resolver\.(\w+)\(\) != kTfLiteOk", ino)),
                   constant("kInputCount"), constant("kOutputCount"), constant("kTensorArenaBytes"))


def sketch_sources(sketch_dir: Path) -> list[Path]:
    """What the Arduino IDE compiles of a sketch folder: the .ino and every C/C++ file beside it."""
    return sorted(p for p in sketch_dir.iterdir() if p.suffix in (".ino", ".cpp", ".c"))


def build_firmware(sources: list[Path], board: Board, library: InstalledLibrary, folder: Path,
                   include_dirs: list[Path] = (), serial: str = "semihosting") -> tuple[Path, Sizes]:
    """`sources` (a sketch's, or any setup()/loop() program's) compiled as the IDE compiles a sketch (the
    .ino as C++ with Arduino.h included first, .cpp and .c files as they are), linked with the stand-in
    core, the bare-metal runtime and the library into folder/firmware.elf. Raises CompileError with the
    first error. `serial`: the stand-in core's Serial (see write_core)."""
    core_sources = write_core(folder / "core", board, serial=serial)
    runtime_sources = write_runtime(folder / "runtime", board)
    includes = [f"-I{path}" for path in (*include_dirs, library.path / "src", folder / "core", folder / "runtime")]
    warnings = ["-Wall", "-Wextra"]
    cxx = compile_flags(board, "c++") + includes + warnings
    groups = (([s for s in sources if s.suffix == ".ino"], cxx + ["-include", "Arduino.h"]),
              ([s for s in sources + core_sources if s.suffix == ".cpp"], cxx),
              ([s for s in sources + core_sources if s.suffix == ".c"] + runtime_sources,
               compile_flags(board, "c") + includes + warnings))
    objects = []
    for number, (group, flags) in enumerate(groups):
        objects += compile_sources(group, folder / "objects" / str(number), flags) if group else []
    elf = link_with_library(objects, library, board, folder / "firmware.elf", folder / "runtime" / "linker.ld",
                            LINK_LIBRARIES)
    return elf, section_sizes(elf)


def build_sketch_elf(sketch_dir: Path, board: Board, library: InstalledLibrary, folder: Path,
                     serial: str = "semihosting") -> tuple[Path, Sizes]:
    """The sketch folder, unmodified, as a firmware for the board's qemu machine (not run); with
    serial="uart" its Serial is the machine's UART0, for tinyprune device-eval."""
    return build_firmware(sketch_sources(sketch_dir), board, library, folder, [sketch_dir], serial)


def prove_sketch(sketch_dir: Path, board: Board, x_int8: np.ndarray, tflm: np.ndarray,
                 library_path: str | Path | None = None, samples: int = PROOF_SAMPLES) -> TflmQemuProof:
    """Build and run the sketch and the probe; `tflm` holds the host TFLM's outputs for `x_int8`."""
    from tinyprune.backends.tflm.arduino import CHIRALE_TENSORFLOWLITE

    if not has_machine(board):
        raise TinypruneError(f"board {board.name!r} ({board.core}) has no qemu machine to prove on",
                             "choose an Arm Cortex-M board (e.g. --board nano33ble), or drop --prove qemu")
    started = time.perf_counter()
    library = find_library(CHIRALE_TENSORFLOWLITE.name, CHIRALE_TENSORFLOWLITE.version, library_path)
    proof = TflmQemuProof(f"{library.name} {library.version}", str(library.path), board.qemu_machine, compiled=False)
    with tempfile.TemporaryDirectory(prefix="tinyprune-tflm-qemu-") as work:
        work = Path(work)
        try:
            elf, sizes = build_sketch_elf(sketch_dir, board, library, work / "sketch")
        except CompileError as error:
            proof.first_error = f"{error.source.name}: {error.first_error}"
            proof.seconds = time.perf_counter() - started
            return proof
        proof.compiled, proof.text, proof.data, proof.bss = True, sizes.text, sizes.data, sizes.bss
        run = run_firmware(elf, board, RUN_TIMEOUT)
        proof.qemu_runs += 1
        proof.stack_bytes, _, proof.heap_bytes = run.stack_bytes() or (0, 0, 0)
        # the sketch's own lines: not "done", nor the binary INFO frame the serial protocol sends at boot
        proof.sketch_output = tuple(line for line in run.lines if line and line != "done" and line.isascii()
                                    and line.isprintable())
        proof.sketch_passed = any(line.startswith("PASS") for line in run.lines)
        x = np.asarray(x_int8[:samples], dtype=np.int8).reshape(min(samples, len(x_int8)), -1)
        expected = np.asarray(tflm[:len(x)], dtype=np.int8).reshape(len(x), -1)
        _run_probe(proof, work / "probe", sketch_dir, board, library, x, expected)
    proof.seconds = time.perf_counter() - started
    return proof


def proof_failure(proof: TflmQemuProof) -> TinypruneError | None:
    """Why the sketch is not proven (it does not compile, or its outputs are not the host TFLM's), or None."""
    if not proof.compiled:
        return TinypruneError(f"the sketch does not compile against {proof.library}: {proof.first_error}",
                              "install the library version the sketch names, or report this")
    if proof.differing_bytes or not proof.sketch_passed:
        return TinypruneError(
            f"on {proof.machine} the library's TFLM differs from the host's on {proof.differing_bytes} of "
            f"{proof.output_bytes} output bytes ({'; '.join(proof.sketch_output[-2:])})"
            + (f": {proof.kernel_difference}" if proof.kernel_difference else ""),
            "build with --backend standalone (it computes as the host's TFLM does), or without --prove qemu "
            "(the board's outputs then differ from the report's as this says)")
    return None


def measured_figures(proof: TflmQemuProof) -> dict:
    """The proof's figures for the report's side-by-side table (Backend.figures)."""
    return {"instructions_per_inference": proof.instructions_per_inference, "differing_bytes": proof.differing_bytes,
            "not_proven": []}


def explain_difference(proof: TflmQemuProof, model_bytes: bytes, x_int8: np.ndarray, runtime_name: str) -> None:
    """When the library's outputs differ from the host's, name the first operator whose kernel it is known
    to compute otherwise (tinyprune/verify/library_kernels.py), over the inputs the probe ran."""
    from tinyprune.graph.reader import read_graph
    from tinyprune.verify.library_kernels import first_kernel_difference

    if not proof.differing_bytes:
        return
    difference = first_kernel_difference(model_bytes, read_graph(model_bytes), x_int8[:proof.samples], runtime_name)
    proof.kernel_difference = (difference.describe() if difference else
                               "no operator whose kernel the library is known to compute otherwise explains it")


def _run_probe(proof: TflmQemuProof, folder: Path, sketch_dir: Path, board: Board, library: InstalledLibrary,
               x: np.ndarray, expected: np.ndarray) -> None:
    """The probe firmware, rebuilt larger while its ample arena is not (twice the sketch's at first); then
    the bisection, resumed past any probe that ended the run."""
    sketch = SketchFacts.read(sketch_dir)
    upper = _round_up(max(2 * sketch.arena_bytes, sketch.arena_bytes + 4096), 16)
    while True:
        elf = _build_probe(folder, sketch_dir, sketch, board, library, x, upper)
        run = run_firmware(elf, board, RUN_TIMEOUT, f"0 {upper}")
        proof.qemu_runs += 1
        if f"fail {upper:08x}" not in run.lines:
            break
        if 2 * upper > board.ram_bytes:
            raise TinypruneError(f"the model does not allocate in {upper:,} B of arena on {board.title}'s TFLM",
                                 "make the model smaller")
        upper *= 2
    outputs = [line for line in run.lines if line.startswith("out ")]
    if len(outputs) != len(x):
        raise RuntimeError(run.failure("the probe firmware did not run every test input"))
    board_outputs = np.array([np.frombuffer(bytes.fromhex(line.split()[1]), dtype=np.int8) for line in outputs])
    ticks = np.array([int(line.split()[2], 16) for line in outputs], dtype=np.float64) - int(run.field("empty"), 16)
    proof.samples, proof.output_bytes = len(x), int(expected.size)
    proof.differing_bytes = int(np.count_nonzero(board_outputs != expected))
    proof.instructions_per_inference = round(float(ticks.mean()) * run.instructions_per_tick())
    proof.arena_used_bytes = int(run.field("arena_used"), 16)
    lower = 0
    while True:
        passes = [int(line.split()[1], 16) for line in run.lines if line.startswith("pass ")]
        fails = [int(line.split()[1], 16) for line in run.lines if line.startswith("fail ")]
        if any(line.startswith("smallest ") for line in run.lines):
            proof.arena_bytes = int(run.field("smallest"), 16)
            return
        probes = [int(line.split()[1], 16) for line in run.lines if line.startswith("probe ")]
        if not probes:
            raise RuntimeError(run.failure("the probe firmware stopped before its search"))
        # the last probe neither passed nor failed: it faulted or hung, so that arena is too small
        upper = min(passes + [upper])
        lower = max(fails + [probes[-1], lower - 4]) + 4
        if lower >= upper:
            proof.arena_bytes = upper
            return
        run = run_firmware(elf, board, RUN_TIMEOUT, f"{lower} {upper}")
        proof.qemu_runs += 1


def _build_probe(folder: Path, sketch_dir: Path, sketch: SketchFacts, board: Board, library: InstalledLibrary,
                 x: np.ndarray, largest_arena: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if x.shape[1] != sketch.input_bytes:
        raise ValueError(f"test inputs have {x.shape[1]} bytes, the sketch's model takes {sketch.input_bytes}")
    source = folder / "probe.cpp"
    source.write_text(render(
        "tflm_probe/probe.cpp.j2", model_array=sketch.model_array, sample_count=len(x), input_bytes=x.shape[1],
        output_bytes=sketch.output_bytes, largest_arena=largest_arena, calibration_iterations=CALIBRATION_ITERATIONS,
        samples=x.tolist(), resolver_methods=sketch.resolver_methods,
    ), encoding="utf-8")
    model_sources = [p for p in sketch_sources(sketch_dir) if p.suffix != ".ino"]
    return build_firmware([source, *model_sources], board, library, folder, [sketch_dir])[0]


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def prove_build(out: str | Path, library_path: str | Path | None = None, samples: int = PROOF_SAMPLES) -> dict:
    """`tinyprune prove OUT`: the build's TFLM sketch (the firmware, or the one built beside it for comparison)
    proven on qemu with the first `samples` inputs of its test set; the figures (with the emulated arena beside
    the measured one) go into the report's `prove` and that sketch's builds[] entry (not proven: why)."""
    from tinyprune.backends.base import proof_figures
    from tinyprune.boards import load_board
    from tinyprune.device.build_folder import read_build, test_set
    from tinyprune.graph.reader import read_graph
    from tinyprune.report import rewrite_reports
    from tinyprune.verify.accuracy import tflm_outputs

    out = Path(out)
    report, model_bytes = read_build(out)
    built = next((b for b in report.get("builds", []) if b["backend"] == "tflm"), None)
    sketches = sorted((out / built["folder"] / "arduino").glob("*/*.ino")) if built else []
    if not sketches:
        raise TinypruneError(f"{out} holds no TFLM sketch to prove (firmware {report['firmware']['backend']}, "
                             f"runtime {report['config']['runtime']})",
                             "prove a build made with --backend tflm or auto and --runtime arduino; a standalone "
                             "build proves itself on qemu as it is built")
    graph = read_graph(model_bytes)
    x, _, _ = test_set(report, graph, None, samples)  # without data: the build's self-test inputs
    x = x.reshape((len(x),) + tuple(graph.input_tensors()[0].shape[1:]))
    tflm = tflm_outputs(model_bytes, x, report["memory"]["arena_aligned16"]).reshape(len(x), -1)
    proof = prove_sketch(sketches[0].parent, load_board(report["target"]["board"]["name"]), x, tflm, library_path,
                         samples)
    explain_difference(proof, model_bytes, x, report["config"]["runtime"])
    proof.estimated_arena_bytes = report["memory"]["board_exact"]  # TFLM's arena emulated, whichever the firmware
    section = {**proof.summary(), "declared_arena_bytes": built["arena_firmware"], "folder": built["folder"]}
    failure = proof_failure(proof)
    built.update(proof_figures(measured_figures(proof), failure.problem if failure else ""))
    report["prove"] = section
    rewrite_reports(out, report)
    return section


def describe_prove_build(out: str | Path, section: dict) -> str:
    """`tinyprune prove OUT`'s line: the sketch's proof; for a sketch built beside the firmware for
    comparison, which it is and the firmware's own result, which its failure must not hide."""
    from tinyprune.device.build_folder import read_build

    line = describe_prove_section(section)
    report, _ = read_build(out)
    firmware = report["builds"][0]
    if section["folder"] == firmware["folder"]:
        return line
    if firmware["proof_failure"]:
        result = f"not proven: {firmware['proof_failure']}"
    elif firmware["differing_bytes"] is None:
        result = "not run: " + "; ".join(firmware["not_proven"])
    else:
        result = (f"{firmware['differing_bytes']:,} output bytes differ from TFLM's"
                  + (f", {firmware['instructions_per_inference']:,} instructions an inference"
                     if firmware["instructions_per_inference"] is not None else "")
                  + "".join(f"; not proven here: {what}" for what in firmware["not_proven"]))
    return (f"the TFLM sketch beside the firmware, in {section['folder']}/: {line}; the firmware "
            f"({firmware['backend']}), as built: {result}")


def describe_prove_section(section: dict) -> str:
    """The prove line: what the sketch did on qemu, the arena measured and the one estimated."""
    if not section["compiled"]:
        return f"the sketch does not compile against {section['library_name']}: {section['first_error']}"
    estimated = section.get("estimated_arena_bytes")
    why = f"; {section['kernel_difference']}" if section.get("kernel_difference") else ""
    return (f"{section['library_name']} on {section['machine']}: self-test {'PASS' if section['sketch_passed'] else 'FAIL'}, "
            f"{section['differing_bytes']} of {section['output_bytes']:,} output bytes differ from the host's TFLM "
            f"({section['samples']} inputs{why}); arena {section['arena_bytes']:,} B measured"
            + (f" ({estimated:,} B emulated)" if estimated is not None else "")
            + f"; {section['instructions_per_inference']:,} instructions an inference; text {section['text']:,} B, "
            f"data {section['data']:,} B, bss {section['bss']:,} B ({section['qemu_runs']} qemu runs, "
            f"{section['seconds']:.0f} s)")


# The structs the emulation's layouts count (tinyprune/memory/tflm_arena.py RuntimeLayout fields).
LAYOUT_STRUCTS = {
    "tflite_tensor": "TfLiteTensor",
    "node_and_registration": "tflite::NodeAndRegistration",
    "eval_tensor": "TfLiteEvalTensor",
    "affine_quantization": "TfLiteAffineQuantization",
    "subgraph_allocations": "tflite::SubgraphAllocations",
    "scratch_request": "tflite::internal::ScratchBufferRequest",
    "scratch_handle": "tflite::ScratchBufferHandle",
    "allocation_info": "tflite::AllocationInfo",
    "single_arena_allocator": "tflite::SingleArenaBufferAllocator",
    "greedy_memory_planner": "tflite::GreedyMemoryPlanner",
    "micro_allocator": "tflite::MicroAllocator",
}


def struct_sizes(library: InstalledLibrary, board: Board, folder: Path, static_memory: bool = False) -> dict:
    """sizeof of each LAYOUT_STRUCTS entry in the library's headers, compiled for `board` with the IDE's flags
    (or with TF_LITE_STATIC_MEMORY): what the emulation's 32-bit layouts must say."""
    from tinyprune.toolchains.gcc import symbol_size

    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "struct_sizes.cpp"
    source.write_text(render("tflm_probe/struct_sizes.cpp.j2", structs=list(LAYOUT_STRUCTS.items())), encoding="utf-8")
    flags = compile_flags(board, "c++") + [f"-I{library.path / 'src'}", "-w"]
    obj = compile_sources([source], folder, flags + (["-DTF_LITE_STATIC_MEMORY"] if static_memory else []))[0]
    return {label: symbol_size(obj, f"size_of_{label}") for label in LAYOUT_STRUCTS}

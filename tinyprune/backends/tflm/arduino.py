"""Stage 6: an Arduino sketch folder that runs the int8 model with the TFLM Arduino library and checks
itself on boot against the output TFLM gave on the host.

The sketch registers exactly the model's operators (MicroMutableOpResolver<N>), declares the arena
verify measured plus a margin, and carries one test vector; over Serial it prints the arena really
used, the byte differences and PASS/FAIL, then runs whatever input the user sends.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from tinyprune.boards import Board
from tinyprune.errors import TinypruneError
from tinyprune.backends.tflm.c_array import write_model_data
from tinyprune.backends.templates import c_identifier, render
from tinyprune.device.firmware import link_buffer_bytes, write_link_sources
from tinyprune.graph.ir import Graph, Tensor
from tinyprune.graph.runtimes import Runtime


@dataclass(frozen=True)
class ArduinoLibrary:
    """How the tools name the TFLM Arduino library the sketch is written for."""

    name: str  # in the Arduino library index (`arduino-cli lib install`)
    version: str
    header: str  # library.properties' `includes=`
    platformio_id: str  # for platformio.ini's lib_deps


# Chirale_TensorFlowLite 2.0.0: TFLM of January 2023 with CMSIS-NN kernels. Its library.properties
# spells the name "Chirale_TensorFLowLite" (capital L), which is what the library index matches.
CHIRALE_TENSORFLOWLITE = ArduinoLibrary(
    name="Chirale_TensorFLowLite",
    version="2.0.0",
    header="Chirale_TensorFlowLite.h",
    platformio_id="spaziochirale/Chirale_TensorFLowLite@2.0.0",
)

ESTIMATED_ARENA = "emulated by tinyprune for this library's 32-bit build"

# Arduino sketch specification: a letter, digit or underscore, then letters, digits, "_", "-", ".";
# at most 63 characters, not ending with a dot.
_SKETCH_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}")


def sketch_buffer_bytes(input_size: int, output_size: int) -> int:
    """The RAM the sketch declares that grows with the model, besides the tensor arena: loop()'s float
    features and outputs (arduino/tflm_sketch.cpp.j2) and the serial protocol's buffers."""
    return 4 * (input_size + output_size) + link_buffer_bytes(input_size, output_size)


def write_arduino_sketch(out_dir: Path, sketch_name: str, model_bytes: bytes, graph: Graph,
                         runtime: Runtime, arena_bytes: int, test_input: np.ndarray,
                         expected_output: np.ndarray, board: Board, *,
                         exact_arena_bytes: int | None = None, arena_source: str = "") -> Path:
    """Write the sketch folder `out_dir/sketch_name/` (<sketch_name>.ino, model_data.h,
    model_data.cpp, tp_link.h, tp_link.c) and return its path.

    `runtime.ops` maps each operator to its resolver method; `arena_bytes` is the size the sketch
    declares (verify's exact arena, given as `exact_arena_bytes` for the comment, plus a margin);
    `expected_output` is what TFLM on the host gave for `test_input`."""
    check_sketch_name(sketch_name)
    context = sketch_context(sketch_name, model_bytes, graph, runtime, arena_bytes, test_input,
                             expected_output, board, exact_arena_bytes, arena_source)
    sketch_dir = Path(out_dir) / sketch_name
    sketch_dir.mkdir(parents=True)
    write_model_data(sketch_dir, model_bytes, context["model_array"])
    write_link_sources(sketch_dir, context["input"]["count"])  # the serial protocol (tinyprune device-eval)
    (sketch_dir / f"{sketch_name}.ino").write_text(render("arduino/sketch.ino.j2", **context),
                                                   encoding="utf-8")
    return sketch_dir


def check_sketch_name(sketch_name: str) -> None:
    if not _SKETCH_NAME.fullmatch(sketch_name) or sketch_name.endswith("."):
        raise TinypruneError(
            f"{sketch_name!r} cannot name an Arduino sketch",
            f"use letters, digits, '_', '-' and '.' (at most 63), e.g. {c_identifier(sketch_name)!r}",
        )


def check_architecture(board: Board, runtime: Runtime) -> None:
    """The Arduino library builds only for the architectures its library.properties lists."""
    if not runtime.arduino_architectures:
        raise TinypruneError(f"{runtime.title} is not an Arduino library: no sketch can link it",
                             "export the sketch for the Arduino library's runtime (arduino)")
    if board.arduino_architecture not in runtime.arduino_architectures:
        raise TinypruneError(
            f"{runtime.title} does not build for {board.title}: its Arduino architecture "
            f"{board.arduino_architecture!r} is not among {', '.join(runtime.arduino_architectures)}",
            "choose a board of one of those architectures",
        )


def sketch_context(sketch_name: str, model_bytes: bytes, graph: Graph, runtime: Runtime,
                   arena_bytes: int, test_input: np.ndarray, expected_output: np.ndarray,
                   board: Board, exact_arena_bytes: int | None, arena_source: str = "") -> dict:
    """The values the sketch body template (arduino/tflm_sketch.cpp.j2) needs, checked."""
    check_architecture(board, runtime)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinypruneError(
            f"the sketch runs models with one input and one output; this one has "
            f"{len(graph.inputs)} inputs and {len(graph.outputs)} outputs",
            "export a model with a single input and a single output tensor",
        )
    input_tensor, output_tensor = graph.input_tensors()[0], graph.output_tensors()[0]
    missing = [name for name in graph.op_names if name not in runtime.ops]
    if missing:
        raise TinypruneError(f"{runtime.title} has no kernel for {', '.join(missing)}",
                             "run the check stage: it names the layer each operator came from")
    if exact_arena_bytes is not None and exact_arena_bytes > arena_bytes:
        raise ValueError(f"arena_bytes {arena_bytes} is below the exact arena {exact_arena_bytes}")
    return {
        "sketch_name": sketch_name,
        "model_array": c_identifier(f"{sketch_name}_model"),
        "model_size": len(model_bytes),
        "board": board,
        "runtime": runtime,
        "library": CHIRALE_TENSORFLOWLITE,
        "ops": [{"name": name, "method": runtime.ops[name]} for name in graph.op_names],
        "arena_bytes": arena_bytes,
        "exact_arena_bytes": exact_arena_bytes,
        "arena_source": arena_source or ESTIMATED_ARENA,
        "input": _tensor_facts(input_tensor),
        "output": _tensor_facts(output_tensor),
        "test_input": _int8_values(test_input, input_tensor, "test_input"),
        "expected_output": _int8_values(expected_output, output_tensor, "expected_output"),
        "oracle": _oracle(),
    }


def _tensor_facts(tensor: Tensor) -> dict:
    if tensor.dtype != "int8" or tensor.quantization is None or tensor.quantization.per_channel:
        raise TinypruneError(
            f"tensor {tensor.name!r} is {tensor.dtype}, not int8 with one scale and zero point",
            "convert with int8 input and output (the quantize stage does)",
        )
    return {
        "count": tensor.num_elements,
        "shape": "x".join(str(d) for d in tensor.shape),
        "scale": tensor.quantization.scale[0],
        "zero_point": tensor.quantization.zero_point[0],
    }


def _int8_values(values: np.ndarray, tensor: Tensor, what: str) -> list[int]:
    values = np.asarray(values)
    if values.dtype != np.int8 or values.size != tensor.num_elements:
        raise ValueError(f"{what} must be {tensor.num_elements} int8 values for tensor {tensor.name!r}, "
                         f"got {values.size} {values.dtype}")
    return [int(v) for v in values.reshape(-1)]


def _oracle() -> str:
    try:
        return f"the TFLM interpreter on the host (tflite-micro {version('tflite-micro')})"
    except PackageNotFoundError:
        return "the TFLM interpreter on the host"

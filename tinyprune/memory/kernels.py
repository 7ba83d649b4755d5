"""What each TFLM kernel takes from the arena, per runtime: its builtin options struct, the op data its
Init allocates, and what its Prepare does in order (temporary TfLiteTensors, persistent per-channel
arrays, scratch-buffer requests).

Two runtimes are modelled:
- "host": the `tflite-micro` Python package (reference kernels, 64-bit). Every figure below was read off
  the package's allocator calls (a debugger breakpoint on SingleArenaBufferAllocator, one zoo model at a
  time) and agrees with the kernels' sources in tensorflow/tflite-micro; the tests hold the emulation to
  the package to the byte.
- "arm32": the Arduino library's TFLM (tflite-micro-arduino-examples, January 2023) with CMSIS-NN
  kernels on a 32-bit Cortex-M: struct sizes of a 32-bit build and the CMSIS-NN scratch buffers from
  CMSIS-NN's *_get_buffer_size functions (arm_convolve_wrapper_s8, arm_depthwise_conv_wrapper_s8,
  arm_fully_connected_s8, arm_avgpool_s8). Read from those sources, not measured here: an estimate.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tinyprune.graph.ir import Graph, Operator


@dataclass(frozen=True)
class TempTensor:
    """AllocateTempTfLiteTensor: a TfLiteTensor and its quantization params in the head's temp area."""

    tensor: int


@dataclass(frozen=True)
class Persistent:
    """context->AllocatePersistentBuffer from a kernel: 16-byte aligned, from the tail."""

    nbytes: int
    what: str


@dataclass(frozen=True)
class Scratch:
    """context->RequestScratchBufferInArena: planned in the head, alive while the node runs."""

    nbytes: int
    what: str


PrepareEvent = TempTensor | Persistent | Scratch


@dataclass(frozen=True)
class KernelRecipe:
    builtin_data: tuple[int, int] | None  # (size, alignment) of the parsed options struct
    init: tuple[int, ...]  # op data allocated by Init, bytes each
    prepare: tuple[PrepareEvent, ...] = ()
    known: bool = True  # False: a generic guess for an operator we have not modelled
    note: str = ""


@dataclass(frozen=True)
class _Shapes:
    """The facts about one operator that the recipes need."""

    graph: Graph
    op: Operator
    inputs: list[int] = field(default_factory=list)

    def tensor(self, position: int):
        return self.graph.tensors[self.op.inputs[position]]

    def has_input(self, position: int) -> bool:
        return position < len(self.op.inputs) and self.op.inputs[position] >= 0

    @property
    def output(self):
        return self.graph.tensors[self.op.outputs[0]]


def _temps(op: Operator, *positions: str) -> list[TempTensor]:
    """TempTensor events for ("i", n) input / ("o", n) output positions written as "i0", "o0"."""
    events = []
    for position in positions:
        indices = op.inputs if position[0] == "i" else op.outputs
        number = int(position[1:])
        if number < len(indices) and indices[number] >= 0:
            events.append(TempTensor(indices[number]))
    return events


def _per_channel_arrays(channels: int, int32: int = 4) -> list[Persistent]:
    return [Persistent(int32 * channels, "per-channel output multipliers"),
            Persistent(int32 * channels, "per-channel output shifts")]


def _output_channels(s: _Shapes, filter_axis: int) -> int:
    return s.tensor(1).shape[filter_axis]


def _is_per_channel(s: _Shapes, position: int) -> bool:
    quantization = s.tensor(position).quantization
    return quantization is not None and quantization.per_channel


# ---------------------------------------------------------------- host: the tflite-micro package (64-bit)

def _host_conv(s: _Shapes, filter_axis: int) -> KernelRecipe:
    # ConvPrepare / DepthwiseConvPrepare: input, output, filter; the per-channel arrays; then
    # CalculateOpData* takes input, filter, bias, output again (temps are freed only after Prepare).
    prepare = (_temps(s.op, "i0", "o0", "i1") + _per_channel_arrays(_output_channels(s, filter_axis))
               + _temps(s.op, "i0", "i1", "i2", "o0"))
    return KernelRecipe((28, 4), (80,), tuple(prepare))


def _host_fully_connected(s: _Shapes) -> KernelRecipe:
    prepare = _temps(s.op, "i0", "i1", "o0")
    if _is_per_channel(s, 1):
        prepare += _per_channel_arrays(s.tensor(1).shape[0])
    return KernelRecipe((32, 8), (72,), tuple(prepare))


def _host_mean(s: _Shapes) -> KernelRecipe:
    # PrepareMeanOrSumHelper: int32 accumulators for the output, an index per input dimension and a
    # resolved axis per reduced axis, requested as scratch buffers between two rounds of temps.
    axes = s.tensor(1).num_elements
    scratch = [Scratch(4 * s.output.num_elements, "int32 sums"),
               Scratch(4 * len(s.tensor(0).shape), "iteration index"),
               Scratch(4 * axes, "resolved axes")]
    prepare = _temps(s.op, "i0", "o0", "i1") + scratch + _temps(s.op, "i0", "i1", "o0")
    return KernelRecipe((1, 1), (44,), tuple(prepare))


def _host_recipe(s: _Shapes) -> KernelRecipe:
    opcode = s.op.opcode
    if opcode == "CONV_2D":
        return _host_conv(s, filter_axis=0)
    if opcode == "DEPTHWISE_CONV_2D":
        return _host_conv(s, filter_axis=3)
    if opcode == "FULLY_CONNECTED":
        return _host_fully_connected(s)
    if opcode in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return KernelRecipe((40, 4), (32,), tuple(_temps(s.op, "i0", "o0")))
    if opcode == "RESHAPE":
        return KernelRecipe((36, 4), (), tuple(_temps(s.op, "i0", "o0")))
    if opcode == "EXPAND_DIMS":
        return KernelRecipe(None, (), tuple(_temps(s.op, "i0", "o0")))
    if opcode == "SOFTMAX":
        return KernelRecipe((4, 4), (80,), tuple(_temps(s.op, "i0", "o0")))
    if opcode == "ADD":
        return KernelRecipe((8, 4), (60,), tuple(_temps(s.op, "i0", "i1", "o0")))
    if opcode == "MEAN":
        return _host_mean(s)
    return _generic(s)


def _generic(s: _Shapes) -> KernelRecipe:
    """Not modelled: a temp tensor per non-constant input and output, no op data. The arena is then
    an estimate (the op's own allocations are missing), and the estimate says so."""
    positions = [f"i{n}" for n, i in enumerate(s.op.inputs)
                 if i >= 0 and not s.graph.tensors[i].is_constant]
    positions += [f"o{n}" for n in range(len(s.op.outputs))]
    return KernelRecipe(None, (), tuple(_temps(s.op, *positions)), known=False,
                        note=f"{s.op.opcode}: allocations not modelled (temporaries only)")


RECIPES = {"host": _host_recipe}


def kernel_recipe(graph: Graph, op: Operator, runtime: str) -> KernelRecipe:
    return RECIPES[runtime](_Shapes(graph, op))

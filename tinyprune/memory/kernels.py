"""What each TFLM kernel takes from the arena, per runtime: its builtin options struct, the op data its
Init allocates, and what its Prepare does in order (temporary TfLiteTensors, persistent per-channel
arrays, scratch-buffer requests).

Three runtimes are modelled:
- "host": the `tflite-micro` Python package (reference kernels, 64-bit). Every figure below was read off
  the package's allocator calls with `python -m tinyprune.memory.trace_allocations model.tflite` (gdb
  breakpoints; do the same for an operator not listed here) and agrees with the kernels' sources in
  tensorflow/tflite-micro; the tests hold the emulation to the package to the byte on the whole zoo.
- "arm32": the Arduino library's TFLM (Chirale_TensorFlowLite 2.0.0, January 2023) with CMSIS-NN
  kernels on a 32-bit Cortex-M: op data sizes of a 32-bit build (sizeof in arm-none-eabi-g++) and the
  CMSIS-NN scratch buffers from CMSIS-NN's *_get_buffer_size functions (arm_convolve_wrapper_s8,
  arm_depthwise_conv_wrapper_s8, arm_fully_connected_s8, arm_avgpool_s8); held to that library's arena
  measured on qemu (backends/tflm/qemu_proof.py) by the tests.
- "arm32-reference": the same library with its reference kernels (no scratch buffers, smaller op data).
Operators not listed get a generic recipe and the estimate says it is approximate.
"""
from __future__ import annotations

from dataclasses import dataclass

from tinyprune.graph.ir import Graph, Operator, Tensor


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
    """One operator and the graph it reads its tensors from."""

    graph: Graph
    op: Operator

    def tensor(self, position: int) -> Tensor:
        return self.graph.tensors[self.op.inputs[position]]

    @property
    def output(self) -> Tensor:
        return self.graph.tensors[self.op.outputs[0]]


def _temps(op: Operator, *positions: str) -> list[TempTensor]:
    """Temporary tensors for the operator's inputs ("i0", "i1"...) and outputs ("o0"...) in the order
    the kernel takes them; an omitted optional input (index -1, e.g. no bias) takes none."""
    events = []
    for position in positions:
        indices = op.inputs if position[0] == "i" else op.outputs
        number = int(position[1:])
        if number < len(indices) and indices[number] >= 0:
            events.append(TempTensor(indices[number]))
    return events


def _per_channel_arrays(channels: int) -> list[Persistent]:
    """The int32 output multiplier and shift per output channel."""
    return [Persistent(4 * channels, "per-channel output multipliers"),
            Persistent(4 * channels, "per-channel output shifts")]


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
    if opcode == "MUL":
        return KernelRecipe((4, 4), (36,), tuple(_temps(s.op, "i0", "i1", "o0")))
    if opcode == "CONCATENATION":
        return KernelRecipe((8, 4), (80,), tuple(_concatenation_temps(s)))
    if opcode == "PAD":
        return KernelRecipe(None, (56,), tuple(_temps(s.op, "i0", "i1", "o0")))
    if opcode == "RELU6":  # takes only its input: the clamp bounds come from its quantization
        return KernelRecipe(None, (8,), tuple(_temps(s.op, "i0")))
    if opcode == "LOGISTIC":
        return KernelRecipe(None, (16,), tuple(_temps(s.op, "i0", "o0")))
    if opcode == "TANH":
        return KernelRecipe(None, (16,), tuple(_temps(s.op, "i0", "o0", "i0")))
    return _generic(s)


def _concatenation_temps(s: _Shapes) -> list[TempTensor]:
    """The first input and the output for the checks, then every input for the parameters."""
    return _temps(s.op, "i0", "o0", *(f"i{n}" for n in range(len(s.op.inputs))))


def _generic(s: _Shapes) -> KernelRecipe:
    """Not modelled: a temp tensor per non-constant input and output, no op data. The arena is then
    an estimate (the op's own allocations are missing), and the estimate says so."""
    positions = [f"i{n}" for n, i in enumerate(s.op.inputs)
                 if i >= 0 and not s.graph.tensors[i].is_constant]
    positions += [f"o{n}" for n in range(len(s.op.outputs))]
    return KernelRecipe(None, (), tuple(_temps(s.op, *positions)), known=False,
                        note=f"{s.op.opcode}: allocations not modelled (temporaries only)")


# ------------------------------------ arm32: the Arduino library's TFLM (January 2023), 32-bit Cortex-M
# Kernels of that version take their tensors with micro_context->AllocateTemp{Input,Output}Tensor
# (input, filter, output; then CalculateOpData* takes input, filter, bias, output) and allocate
# per-channel arrays for CONV_2D and DEPTHWISE_CONV_2D (and CMSIS-NN's FULLY_CONNECTED when its output has
# more than two dimensions). Their op data, sizeof in arm-none-eabi-g++ with the library's headers:
# OpDataConv 56 B (CMSIS-NN's OpData 60: a scratch-buffer index more), OpDataFullyConnected 36 B (CMSIS-NN
# 60: per-channel pointers, index, batches, depths), OpDataPooling 32 B (CMSIS-NN 36), SoftmaxParams 56 B
# (CMSISNNSoftmaxParams 64), CMSIS-NN add's OpData 60 B, OpDataMul 36 B, pad's OpData 56 B, OpDataLogistic
# and tanh's OpData 16 B, Relu6OpData 2 B, OpDataReduce 40 B, ConcatenationParams 24 B. The builtin
# options structs are laid out with arm-none-eabi's one-byte enums: TfLiteFullyConnectedParams is 4 B
# aligned to 1, TfLiteAddParams 2 B, TfLiteMulParams and TfLiteReducerParams 1 B.

def _cmsis_conv_scratch(s: _Shapes) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size on a DSP core (CMSIS-NN 4.0, wrapper V.2.1.2): 1x1
    stride-1 unpadded convolutions need nothing, everything else an int16 im2col of two columns. A 1x1
    stride-1 kernel is unpadded whether the model says SAME or VALID (SAME pads a 1x1 window by 0)."""
    filter_height, filter_width, input_channels = s.tensor(1).shape[1:4]
    options = s.op.options
    pointwise = (filter_height == filter_width == 1
                 and options.get("stride_w", 1) == options.get("stride_h", 1) == 1
                 and options.get("dilation_w_factor", 1) == options.get("dilation_h_factor", 1) == 1)
    return 0 if pointwise else 2 * input_channels * filter_width * filter_height * 2


def _cmsis_depthwise_scratch(s: _Shapes) -> int:
    """arm_depthwise_conv_wrapper_s8_get_buffer_size: arm_depthwise_conv_s8_opt's int16 im2col when
    the channel multiplier is 1 (DSP core), else none."""
    input_channels = s.tensor(0).shape[3]
    _, filter_height, filter_width, output_channels = s.tensor(1).shape
    dilated = s.op.options.get("dilation_w_factor", 1) != 1 or s.op.options.get("dilation_h_factor", 1) != 1
    if input_channels != output_channels or dilated:
        return 0
    return input_channels * filter_width * filter_height * 2


def _arm32_conv(s: _Shapes, filter_axis: int, builtin: int, cmsis: bool, scratch) -> KernelRecipe:
    prepare = (_temps(s.op, "i0", "i1", "o0") + _per_channel_arrays(_output_channels(s, filter_axis))
               + _temps(s.op, "i0", "i1", "i2", "o0"))
    if cmsis and scratch(s) > 0:
        prepare.append(Scratch(scratch(s), "CMSIS-NN im2col buffer"))
    return KernelRecipe((builtin, 4), (56 + 4 * cmsis,), tuple(prepare))


def _arm32_fully_connected(s: _Shapes, cmsis: bool) -> KernelRecipe:
    """Input, filter, bias and output as temporaries; CMSIS-NN's kernel also keeps per-channel arrays when
    the output has more than two dimensions and the accumulation depth is a multiple of 4 (its 1x1
    convolution path, whose buffer, arm_convolve_1x1_s8_fast_get_buffer_size, is 0 in CMSIS-NN 4.0, as is
    arm_fully_connected_s8_get_buffer_size)."""
    prepare = _temps(s.op, "i0", "i1", "i2", "o0")
    if cmsis and len(s.output.shape) > 2 and s.tensor(1).shape[-1] % 4 == 0:
        prepare += _per_channel_arrays(s.output.shape[-1])
    note = (f"operator {s.op.index} FULLY_CONNECTED has per-channel weights, which this runtime "
            "reads as per-tensor (wrong outputs; the op check reports it)") if _is_per_channel(s, 1) else ""
    return KernelRecipe((4, 1), (60 if cmsis else 36,), tuple(prepare), note=note)


def _arm32_recipe(s: _Shapes, cmsis: bool) -> KernelRecipe:
    opcode = s.op.opcode
    if opcode == "CONV_2D":
        return _arm32_conv(s, 0, 24, cmsis, _cmsis_conv_scratch)
    if opcode == "DEPTHWISE_CONV_2D":
        return _arm32_conv(s, 3, 28, cmsis, _cmsis_depthwise_scratch)
    if opcode == "FULLY_CONNECTED":
        return _arm32_fully_connected(s, cmsis)
    if opcode in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        prepare = _temps(s.op, "i0", "o0")
        if cmsis and opcode == "AVERAGE_POOL_2D":  # arm_avgpool_s8_get_buffer_size: an int32 a channel
            prepare.append(Scratch(4 * s.output.shape[-1], "CMSIS-NN average-pool sums"))
        return KernelRecipe((40, 4), (32 + 4 * cmsis,), tuple(prepare))
    if opcode == "RESHAPE":
        return KernelRecipe((36, 4), (), tuple(_temps(s.op, "i0", "o0")))
    if opcode == "EXPAND_DIMS":
        return KernelRecipe(None, (), tuple(_temps(s.op, "i1", "i0", "o0")))
    if opcode == "SOFTMAX":
        return KernelRecipe((4, 4), (56 + 8 * cmsis,), tuple(_temps(s.op, "i0", "o0")))
    if opcode == "ADD":
        return KernelRecipe((2, 1), (60,), tuple(_temps(s.op, "i0", "i1", "o0")))
    if opcode == "MUL":
        return KernelRecipe((1, 1), (36,), tuple(_temps(s.op, "i0", "i1", "o0")))
    if opcode == "CONCATENATION":
        # concatenation.cc of that version: the first input and the output, every input, then for int8 the
        # output again, each input's scale (float) and zero point (int32) kept, and every input once more
        inputs = [f"i{n}" for n in range(len(s.op.inputs))]
        prepare = (_concatenation_temps(s) + _temps(s.op, "o0")
                   + [Persistent(4 * len(inputs), "input scales"), Persistent(4 * len(inputs), "input zero points")]
                   + _temps(s.op, *inputs))
        return KernelRecipe((8, 4), (24,), tuple(prepare))
    if opcode == "PAD":
        return KernelRecipe(None, (56,), tuple(_temps(s.op, "i0", "i1", "o0")))
    if opcode == "RELU6":
        return KernelRecipe(None, (2,), tuple(_temps(s.op, "i0", "o0")))
    if opcode in ("LOGISTIC", "TANH"):
        return KernelRecipe(None, (16,), tuple(_temps(s.op, "i0", "o0")))
    if opcode == "MEAN":
        # PrepareMeanOrSumHelper (reduce_common.cc of that version): input, output and axis, one int32
        # accumulator a output element as scratch, then PrepareSimple takes input, axis and output again
        prepare = (_temps(s.op, "i0", "o0", "i1") + [Scratch(4 * s.output.num_elements, "int32 sums")]
                   + _temps(s.op, "i0", "i1", "o0"))
        return KernelRecipe((1, 1), (40,), tuple(prepare))
    return _generic(s)


RECIPES = {
    "host": _host_recipe,
    "arm32": lambda s: _arm32_recipe(s, cmsis=True),
    "arm32-reference": lambda s: _arm32_recipe(s, cmsis=False),
}


def kernel_recipe(graph: Graph, op: Operator, runtime: str) -> KernelRecipe:
    return RECIPES[runtime](_Shapes(graph, op))

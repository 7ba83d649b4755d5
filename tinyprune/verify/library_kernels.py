"""Where the Arduino library's TFLM (January 2023) computes an operator differently from today's TFLM, emulated
on the host: the old kernel's arithmetic applied to the input today's TFLM gives that operator, compared
with today's output. When `--prove qemu` finds the library's outputs differing from the host's, this names
the operator and the change in one line.

Found on MobileNetV1 (zoo mobilenet_v1_vww): the library, run on qemu with each intermediate tensor as the
model's output, agrees with the host byte for byte up to the last pointwise convolution, and its MEAN
(global average pooling) differs on 681 of 2,560 bytes, by one step; emulating the old MEAN below gives
exactly those 681 bytes. TFLM's int8 MEAN became fixed point in its sync from TensorFlow of 2023-03-01
(tensorflow/lite/kernels/internal/reference/reduce.h, QuantizedMeanOrSum); before it:
- input and output quantized alike: the integer sum divided by the element count in C, rounding toward
  zero (reference_ops::Mean), where today's rounds to nearest;
- quantized differently: float arithmetic, round(sum / n * (input_scale / output_scale) - input_zero_point
  * that ratio) + output_zero_point, rounding half away from zero in float32, where today's multiplies by
  a fixed-point multiplier folded with 1 / n."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tinyprune.graph.ir import Graph, Operator
from tinyprune.verify.layers import LayerDivergence, tflm_tensors


@dataclass(frozen=True)
class KernelChange:
    """An operator the library computes with other arithmetic than today's TFLM."""

    opcode: str
    what: Callable[[Graph, Operator], str]  # the change for this operator, in words, for the message
    emulate: Callable[[Graph, Operator, np.ndarray], np.ndarray]  # the old kernel on today's input


def _quantized_alike(graph: Graph, op: Operator) -> bool:
    source, target = (graph.tensors[op.inputs[0]].quantization, graph.tensors[op.outputs[0]].quantization)
    return (np.float32(source.scale[0]), source.zero_point[0]) == (np.float32(target.scale[0]), target.zero_point[0])


def january_2023_mean_words(graph: Graph, op: Operator) -> str:
    old = ("divides the int8 sum by the count rounding toward zero" if _quantized_alike(graph, op) else
           "averages in float (input and output quantized differently), rounding half away from zero")
    return (f"the library's TFLM (January 2023) {old}, today's TFLM (since its sync of 2023-03-01) in fixed point, "
            "rounding to nearest")


def _reduced_axes(graph: Graph, op: Operator, rank: int) -> tuple[int, ...]:
    return tuple(sorted({int(a) % rank for a in graph.tensors[op.inputs[1]].numpy().reshape(-1)}))


def january_2023_mean(graph: Graph, op: Operator, inputs: np.ndarray) -> np.ndarray:
    """The library's int8 MEAN of `inputs` (samples first, then the operator's input shape), shaped as
    the operator's output for each sample."""
    source, target = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    axes = tuple(axis + 1 for axis in _reduced_axes(graph, op, len(source.shape)))
    sums = inputs.astype(np.int32).sum(axis=axes)
    count = int(np.prod([inputs.shape[axis] for axis in axes]))
    in_scale, in_zero = np.float32(source.quantization.scale[0]), int(source.quantization.zero_point[0])
    out_scale, out_zero = np.float32(target.quantization.scale[0]), int(target.quantization.zero_point[0])
    if _quantized_alike(graph, op):
        means = np.trunc(sums / count).astype(np.int32)  # C integer division
    else:
        ratio = np.float32(in_scale / out_scale)
        scaled = (sums.astype(np.float32) / np.float32(count)) * ratio + np.float32(-in_zero * ratio)
        whole = np.trunc(scaled)  # std::round: half away from zero, exact (no float32 x + 0.5)
        means = (whole + np.sign(scaled) * (np.abs(scaled - whole) >= 0.5)).astype(np.int32) + out_zero
    return np.clip(means, -128, 127).astype(np.int8).reshape((len(inputs),) + tuple(target.shape))


CHANGES = {
    "arduino": {
        "MEAN": KernelChange("MEAN", january_2023_mean_words, january_2023_mean),
    },
}
"""runtime name -> opcode -> the change, for the runtimes whose kernels differ from today's TFLM."""


@dataclass(frozen=True)
class KernelDifference(LayerDivergence):
    """The first operator whose old kernel, emulated, gives other bytes than today's TFLM, and why."""

    layer: str = ""
    what: str = ""

    def describe(self) -> str:
        return (f"first at operator {self.operator} ({self.opcode}, {self.layer!r}): {self.what}, which changes "
                f"{self.differing_bytes:,} of its {self.total_bytes:,} output bytes (by up to {self.max_difference}) "
                f"over these {self.samples} inputs (the old kernel emulated on the host)")


def first_kernel_difference(model_bytes: bytes, graph: Graph, x_int8: np.ndarray, runtime_name: str,
                            arena_size: int = 1 << 22) -> KernelDifference | None:
    """The first operator (in execution order) that `runtime_name`'s kernels are known to compute otherwise
    and whose emulation changes its output for `x_int8`; None when no such operator changes anything."""
    changes = CHANGES.get(runtime_name, {})
    suspects = [op for op in graph.operators if op.opcode in changes]
    if not suspects:
        return None
    tensors = tflm_tensors(model_bytes, graph, x_int8, arena_size)
    for op in suspects:
        change = changes[op.opcode]
        today = tensors[op.outputs[0]]
        steps = np.abs(change.emulate(graph, op, tensors[op.inputs[0]]).astype(np.int16) - today)
        if np.any(steps):
            return KernelDifference(op.index, op.opcode, graph.tensors[op.outputs[0]].name,
                                    int(np.count_nonzero(steps)), int(today.size), int(steps.max()), len(x_int8),
                                    layer=graph.producer_layer(op), what=change.what(graph, op))
    return None

"""The fixed-point parameters TFLM's kernels compute in their Prepare step, computed here the same way
(same float widths, same rounding) so the generated C reproduces TFLM's outputs byte for byte."""
from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def _round_half_away(value: float) -> int:
    """C's round() (TfLiteRound), not Python's banker's rounding."""
    return math.floor(abs(value) + 0.5) * (1 if value >= 0 else -1)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLM's QuantizeMultiplier: real = multiplier * 2^(shift - 31), multiplier a Q31 in [2^30, 2^31)."""
    if real_multiplier == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real_multiplier)
    fixed = _round_half_away(fraction * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return fixed, shift


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLM's CalculateActivationRangeQuantized for int8 (the division in float32, as TFLM does)."""

    def quantize(value: float) -> int:
        return zero_point + _round_half_away(float(np.float32(value) / np.float32(scale)))

    if activation == "RELU":
        return max(INT8_MIN, quantize(0.0)), INT8_MAX
    if activation == "RELU6":
        return max(INT8_MIN, quantize(0.0)), min(INT8_MAX, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(INT8_MIN, quantize(-1.0)), min(INT8_MAX, quantize(1.0))
    return INT8_MIN, INT8_MAX


def channel_multipliers(input_scale: float, filter_scales, output_scale: float) -> list[tuple[int, int]]:
    """Per output channel (or one, per tensor): input_scale * filter_scale / output_scale in double."""
    return [quantize_multiplier(float(input_scale) * float(scale) / float(output_scale))
            for scale in filter_scales]


def add_parameters(scale1: float, scale2: float, output_scale: float) -> dict:
    """TFLM's int8 ADD Prepare: inputs onto a grid of twice the larger scale, 20 bits of headroom."""
    left_shift = 20
    twice_max = 2.0 * max(scale1, scale2)
    input1 = quantize_multiplier(scale1 / twice_max)
    input2 = quantize_multiplier(scale2 / twice_max)
    output = quantize_multiplier(twice_max / ((1 << left_shift) * output_scale))
    return {"left_shift": left_shift, "input1": input1, "input2": input2, "output": output}


def mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """TFLM's MEAN: input/output scale, then 1/count folded in by QuantizedMeanOrSum's integer steps."""
    multiplier, shift = quantize_multiplier(input_scale / output_scale)
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    folded = (multiplier << extra) // count  # both positive: C's truncating division
    return folded, shift - extra


def softmax_parameters(beta: float, input_scale: float) -> dict:
    """TFLM's PreprocessSoftmaxScaling and CalculateInputRadius with 5 integer bits."""
    integer_bits = 5
    real = min(beta * input_scale * (1 << (31 - integer_bits)), float((1 << 31) - 1))
    multiplier, left_shift = quantize_multiplier(real)
    radius = math.floor(((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / 2.0**left_shift)
    return {"input_multiplier": multiplier, "input_left_shift": left_shift, "diff_min": -radius}


def sigmoid_parameters(input_scale: float) -> dict:
    """TFLM's int8 LOGISTIC and TANH Prepare: the input onto Q4 (frexp and round, no renormalizing)
    and the radius beyond which the output saturates."""
    integer_bits = 4
    fraction, left_shift = math.frexp(input_scale * (1 << (31 - integer_bits)))
    multiplier = _round_half_away(fraction * (1 << 31))
    multiplier -= (1 << 32) if multiplier >= 1 << 31 else 0  # static_cast<int32_t> wraps
    radius = math.floor(((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / 2.0**left_shift)
    return {"input_multiplier": multiplier, "input_left_shift": left_shift, "input_range_radius": radius}

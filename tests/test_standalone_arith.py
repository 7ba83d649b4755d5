"""tp_arith.h's requantization (the reference form, and tp_rescale's single multiply-accumulate, unclamped
and as int8) compiled on the host (gcc, no TensorFlow) against TFLM's arithmetic written out in Python:
SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT, on edge and random accumulators, every
shift TFLM allows and multipliers from 0 to just under 2^31."""
import shutil
import subprocess

import numpy as np
import pytest

from tinyprune.resources import templates_dir

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")

HARNESS = r"""
#include <stdio.h>
#include "tp_arith.h"

int main(void)
{
    long acc, multiplier, shift;
    while (scanf("%ld %ld %ld", &acc, &multiplier, &shift) == 3) {
        const int32_t m = (int32_t)multiplier;
        const int8_t s = (int8_t)shift;
        const tp_requant requant = {&m, &s, 0, 0, -128, 127};
        const tp_channel_scale scale = tp_scale_of(m, (int)shift);
        printf("%d %d %d\n", (int)tp_multiply_by_quantized_multiplier((int32_t)acc, m, (int)shift),
               (int)tp_rescale(&scale, (int32_t)acc), (int)tp_requantize(&requant, 0, (int32_t)acc));
    }
    return 0;
}
"""


def tflm_multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    a = (x * (1 << left) + 2**31) % 2**32 - 2**31  # int32 wrap, as TFLM's x * (1 << left_shift)
    if a == multiplier == -2**31:
        high = 2**31 - 1
    else:
        product = a * multiplier
        nudge = 2**30 if product >= 0 else 1 - 2**30
        total = product + nudge
        high = abs(total) // 2**31 * (1 if total >= 0 else -1)  # C division truncates toward zero
    mask = (1 << right) - 1
    remainder, threshold = high & mask, (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if remainder > threshold else 0)


def cases(rng) -> list[tuple[int, int, int]]:
    edges = [0, 1, -1, 2, -2, 127, -128, 2**15, -2**15, 2**20 + 1, -2**20 - 1, 2**30, -2**30,
             2**31 - 1, -2**31]
    multipliers = [0, 1, 2**30, 2**30 + 1, 3 << 29, 2**31 - 1]
    out = [(a, m, s) for a in edges for m in multipliers for s in (-31, -20, -8, -2, -1, 0)]
    accumulators = rng.integers(-2**31, 2**31, 3000)
    small = rng.integers(-2**17, 2**17, 3000)
    for acc in np.concatenate([accumulators, small]):
        multiplier = int(rng.integers(2**30, 2**31))
        shift = int(rng.integers(-31, 1))
        out.append((int(acc), multiplier, shift))
    # left shifts only where TFLM's int32 product stays meaningful: small accumulators
    out += [(int(a), int(rng.integers(2**30, 2**31)), int(rng.integers(1, 8))) for a in rng.integers(-2**20, 2**20, 500)]
    return out


def test_requantization_equals_tflm_arithmetic(tmp_path):
    source = tmp_path / "harness.c"
    source.write_text(HARNESS)
    binary = tmp_path / "harness"
    kernels = templates_dir() / "standalone" / "kernels"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{kernels}", str(source),
                    "-o", str(binary)], check=True, capture_output=True)
    inputs = cases(np.random.default_rng(0))
    result = subprocess.run([str(binary)], input="\n".join(f"{a} {m} {s}" for a, m, s in inputs),
                            capture_output=True, text=True, check=True)
    for (acc, multiplier, shift), line in zip(inputs, result.stdout.splitlines(), strict=True):
        expected = tflm_multiply_by_quantized_multiplier(acc, multiplier, shift)
        direct, rescaled, requantized = (int(v) for v in line.split())
        assert (direct, rescaled, requantized) == (expected, expected, max(-128, min(127, expected))), \
            (acc, multiplier, shift)

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


DOUBLED_HARNESS = r"""
#include <stdio.h>
#include "tp_arith.h"

int main(void)
{
    long acc, multiplier, shift, zero_point, low, high;
    while (scanf("%ld %ld %ld %ld %ld %ld", &acc, &multiplier, &shift, &zero_point, &low, &high) == 6) {
        const int32_t m = (int32_t)multiplier;
        const int8_t s = (int8_t)shift;
        const tp_requant requant = {&m, &s, 0, (int8_t)zero_point, (int8_t)low, (int8_t)high};
        const tp_channel_scale scale = tp_channel(&requant, 0);
        tp_doubled_scale doubled;
        const long bound = acc < 0 ? -acc : acc;
        if (tp_doubled_scale_of(&requant, 0, bound, &doubled)) {
            printf("1 %d\n", (int)tp_scale_doubled(&doubled, (int32_t)(2 * acc)));
        } else {
            printf("0 %d\n", (int)tp_scale(&scale, (int32_t)acc));
        }
    }
    return 0;
}
"""


def doubled_cases(rng) -> list[tuple[int, ...]]:
    """Accumulators up to the short form's bound (2^29) and past it, every right shift it takes and some
    it refuses, zero points and clamps of RELU, RELU6 and none; ties of the rounding divide on purpose."""
    out = []
    for shift in range(-24, 2):
        for _ in range(400):
            multiplier = int(rng.choice([0, 2**30, 2**31 - 1, int(rng.integers(2**30, 2**31))]))
            zero_point = int(rng.integers(-128, 128))
            low, high = sorted(int(v) for v in rng.integers(-128, 128, size=2))
            low, high = rng.choice([(-128, 127), (zero_point, 127), (low, high)])
            if rng.random() < 0.5:  # a tie: acc * m / 2^31 lands on a half step of 2^-shift
                right = max(-shift, 1)
                target = int(rng.integers(-2**12, 2**12)) * 2**right + 2**(right - 1)
                acc = int(target * 2**31 // max(multiplier, 1)) + int(rng.integers(-2, 3))
            else:
                acc = int(rng.integers(-2**29 + 1, 2**29))
            if abs(acc) < 2**29:
                out.append((acc, multiplier, shift, zero_point, int(low), int(high)))
    out += [(a, 2**30 + 5, -5, -3, -128, 127) for a in (2**29, -2**29, 2**29 - 1, -2**29 + 1, 0, -1, 1)]
    return out


def test_the_doubled_short_form_equals_tflm_arithmetic(tmp_path):
    """tp_scale_doubled (SMMULR's rounding on 2 * acc, the rounding divide, zero point and clamp in one
    sum and shift) gives TFLM's int8 output wherever tp_doubled_scale_of lets the depthwise kernel use it,
    and it is used for every right shift from 1 to 21 within the accumulator bound."""
    source = tmp_path / "doubled.c"
    source.write_text(DOUBLED_HARNESS)
    binary = tmp_path / "doubled"
    kernels = templates_dir() / "standalone" / "kernels"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=undefined",
                    "-fno-sanitize-recover", f"-I{kernels}", str(source), "-o", str(binary)],
                   check=True, capture_output=True)
    inputs = doubled_cases(np.random.default_rng(1))
    result = subprocess.run([str(binary)], input="\n".join(" ".join(map(str, case)) for case in inputs),
                            capture_output=True, text=True, check=True)
    short_form = set()
    for (acc, multiplier, shift, zero_point, low, high), line in zip(inputs, result.stdout.splitlines(), strict=True):
        used, value = (int(v) for v in line.split())
        expected = max(low, min(high, tflm_multiply_by_quantized_multiplier(acc, multiplier, shift) + zero_point))
        assert value == expected, (acc, multiplier, shift, zero_point, low, high, used)
        if used:
            short_form.add(shift)
        assert used == (-21 <= shift <= -1 and abs(acc) < 2**29), (acc, shift)
    assert short_form == set(range(-21, 0))

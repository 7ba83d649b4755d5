/* SOFTMAX, int8 -> int8 (output scale 1/256, zero point -128): TFLM's reference Softmax, which
 * evaluates exp() and the reciprocal of the sum in gemmlowp's fixed point. The helpers below follow
 * gemmlowp's exp_on_negative_values and one_over_one_plus_x_for_x_in_0_1 operation for operation. */
#include "tp_kernels.h"

enum { SCALED_DIFF_INTEGER_BITS = 5, ACCUMULATION_INTEGER_BITS = 12 };

/* x * 2^exponent saturated to int32 (gemmlowp SaturatingRoundingMultiplyByPOT, exponent > 0). */
static int32_t saturating_shift_left(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: a Taylor expansion around -1/8. */
static int32_t exp_near_zero(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28);
    const int32_t x2 = tp_doubling_high_mul(x, x);
    const int32_t x3 = tp_doubling_high_mul(x2, x);
    const int32_t x4 = tp_doubling_high_mul(x2, x2);
    const int32_t x4_over_4 = tp_rounding_divide_by_pot(x4, 2);
    const int32_t polynomial =
        tp_rounding_divide_by_pot(tp_doubling_high_mul(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + tp_doubling_high_mul(exp_minus_one_eighth, x + polynomial);
}

/* exp(a) for a <= 0 given with 5 integer bits; the result in Q0.31. */
static int32_t exp_on_negative_values(int32_t a)
{
    static const int32_t exp_of_minus_powers_of_two[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242,
    };
    const int fractional_bits = 31 - SCALED_DIFF_INTEGER_BITS;
    const int32_t one_quarter = 1 << (fractional_bits - 2);
    const int32_t a_mod_quarter_minus_one_quarter = (a & (one_quarter - 1)) - one_quarter;
    int32_t result = exp_near_zero((int32_t)((uint32_t)a_mod_quarter_minus_one_quarter << SCALED_DIFF_INTEGER_BITS));
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;
    for (int exponent = -2; exponent <= 4; ++exponent) {
        if (remainder & (1 << (fractional_bits + exponent))) {
            result = tp_doubling_high_mul(result, exp_of_minus_powers_of_two[exponent + 2]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1), Q0.31 in and out: three Newton-Raphson steps in Q2.29. */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t forty_eight_over_17 = 1515870810;
    const int32_t minus_thirty_two_over_17 = -1010580540;
    const int32_t one_q2 = 1 << 29;
    int32_t x = forty_eight_over_17 + tp_doubling_high_mul(half_denominator, minus_thirty_two_over_17);
    for (int i = 0; i < 3; ++i) {
        const int32_t error = one_q2 - tp_doubling_high_mul(half_denominator, x);
        x = x + saturating_shift_left(tp_doubling_high_mul(x, error), 2);
    }
    return saturating_shift_left(x, 1);
}

static int count_leading_zeros(uint32_t x)
{
    int count = 0;
    for (uint32_t bit = 0x80000000u; bit && !(x & bit); bit >>= 1) {
        ++count;
    }
    return count;
}

void tp_softmax(const tp_softmax_params *p, const int8_t *input, int8_t *output)
{
    for (int row = 0; row < p->rows; ++row) {
        int32_t largest = INT8_MIN;
        for (int c = 0; c < p->depth; ++c) {
            largest = input[c] > largest ? input[c] : largest;
        }
        int32_t sum_of_exps = 0; /* 12 integer bits */
        for (int c = 0; c < p->depth; ++c) {
            const int32_t diff = input[c] - largest;
            if (diff >= p->diff_min) {
                const int32_t scaled = tp_doubling_high_mul(
                    (int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                sum_of_exps += tp_rounding_divide_by_pot(exp_on_negative_values(scaled),
                                                         ACCUMULATION_INTEGER_BITS);
            }
        }
        const int headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
        const int bits_over_unit = ACCUMULATION_INTEGER_BITS - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - 0x80000000u);
        const int32_t reciprocal = one_over_one_plus_x(shifted_sum_minus_one);
        for (int c = 0; c < p->depth; ++c) {
            const int32_t diff = input[c] - largest;
            int32_t result = INT8_MIN;
            if (diff >= p->diff_min) {
                const int32_t scaled = tp_doubling_high_mul(
                    (int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                const int32_t probability = tp_doubling_high_mul(reciprocal, exp_on_negative_values(scaled));
                result = tp_clamp(tp_rounding_divide_by_pot(probability, bits_over_unit + 31 - 8) + INT8_MIN,
                                  INT8_MIN, INT8_MAX);
            }
            output[c] = (int8_t)result;
        }
        input += p->depth;
        output += p->depth;
    }
}

/* SOFTMAX, int8 -> int8 (output scale 1/256, zero point -128): TFLM's reference Softmax, which
 * evaluates exp() and the reciprocal of the sum in gemmlowp's fixed point (tp_fixedpoint.h). */
#include "tp_fixedpoint.h"
#include "tp_kernels.h"

enum { SCALED_DIFF_INTEGER_BITS = 5, ACCUMULATION_INTEGER_BITS = 12 };

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
                const int32_t exp = tp_exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS);
                sum_of_exps += tp_rounding_divide_by_pot(exp, ACCUMULATION_INTEGER_BITS);
            }
        }
        const int headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
        const int bits_over_unit = ACCUMULATION_INTEGER_BITS - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - 0x80000000u);
        const int32_t reciprocal = tp_one_over_one_plus_x(shifted_sum_minus_one);
        for (int c = 0; c < p->depth; ++c) {
            const int32_t diff = input[c] - largest;
            int32_t result = INT8_MIN;
            if (diff >= p->diff_min) {
                const int32_t scaled = tp_doubling_high_mul(
                    (int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
                const int32_t exp = tp_exp_on_negative_values(scaled, SCALED_DIFF_INTEGER_BITS);
                const int32_t probability = tp_doubling_high_mul(reciprocal, exp);
                result = tp_clamp(tp_rounding_divide_by_pot(probability, bits_over_unit + 31 - 8) + INT8_MIN,
                                  INT8_MIN, INT8_MAX);
            }
            output[c] = (int8_t)result;
        }
        input += p->depth;
        output += p->depth;
    }
}

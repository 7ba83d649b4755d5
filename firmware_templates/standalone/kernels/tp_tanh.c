/* TANH, int8 -> int8 (output scale 1/128, zero point 0): TFLM's reference_integer_ops::Tanh, the input
 * rescaled to Q4 and gemmlowp's fixed-point tanh. Safe in place. */
#include "tp_fixedpoint.h"
#include "tp_kernels.h"

/* tanh(a), a in Q4, the result in Q0 (gemmlowp::tanh: (1 - exp(-2|a|)) / (1 + exp(-2|a|)), where
 * doubling -|a| in Q4 is the same raw value read as Q5). */
static int32_t tanh_q4(int32_t a)
{
    if (a == 0) {
        return 0;
    }
    const int32_t negative = a < 0 ? a : -a;
    const int32_t of_magnitude = tp_one_minus_x_over_one_plus_x(tp_exp_on_negative_values(negative, 5));
    return a < 0 ? -of_magnitude : of_magnitude;
}

void tp_tanh(const tp_activation_params *p, const int8_t *input, int8_t *output)
{
    for (uint32_t i = 0; i < p->size; ++i) {
        const int32_t centred = input[i] - p->input_zero_point;
        int32_t result;
        if (centred <= -p->input_range_radius) {
            result = INT8_MIN;
        } else if (centred >= p->input_range_radius) {
            result = INT8_MAX;
        } else {
            const int32_t q4 =
                tp_multiply_by_quantized_multiplier(centred, p->input_multiplier, p->input_left_shift);
            result = tp_clamp(tp_rounding_divide_by_pot(tanh_q4(q4), 31 - 7), INT8_MIN, INT8_MAX);
        }
        output[i] = (int8_t)result;
    }
}

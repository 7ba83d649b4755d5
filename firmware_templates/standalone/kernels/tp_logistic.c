/* LOGISTIC, int8 -> int8 (output scale 1/256, zero point -128): TFLM's reference_integer_ops::Logistic,
 * the input rescaled to Q4 and gemmlowp's fixed-point logistic. Safe in place. */
#include "tp_fixedpoint.h"
#include "tp_kernels.h"

/* 1 / (1 + exp(-a)), a in Q4, the result in Q0 (gemmlowp::logistic). */
static int32_t logistic_q4(int32_t a)
{
    if (a == 0) {
        return 1 << 30;
    }
    const int32_t magnitude = a > 0 ? a : -a;
    const int32_t of_magnitude = tp_one_over_one_plus_x(tp_exp_on_negative_values(-magnitude, 4));
    return a > 0 ? of_magnitude : INT32_MAX - of_magnitude;
}

void tp_logistic(const tp_activation_params *p, const int8_t *input, int8_t *output)
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
            result = tp_clamp(tp_rounding_divide_by_pot(logistic_q4(q4), 31 - 8) + INT8_MIN, INT8_MIN, INT8_MAX);
        }
        output[i] = (int8_t)result;
    }
}

/* MEAN, int8, over one contiguous block of axes (H and W of NHWC, or the time axis of a 1-D signal):
 * TFLM's QuantizedMeanOrSum with 1/count folded into the multiplier, or its plain integer division
 * when input and output share scale and zero point. */
#include "tp_kernels.h"

void tp_mean(const tp_mean_params *p, const int8_t *input, int8_t *output)
{
    for (uint32_t o = 0; o < p->outer; ++o) {
        const int8_t *block = input + o * p->reduced * p->inner;
        for (uint32_t i = 0; i < p->inner; ++i) {
            int32_t sum = 0;
            for (uint32_t r = 0; r < p->reduced; ++r) {
                sum += block[r * p->inner + i];
            }
            int32_t result;
            if (p->plain_average) {
                result = sum / (int32_t)p->reduced;
            } else {
                const int32_t centred = sum - p->input_zero_point * (int32_t)p->reduced;
                result = tp_clamp(tp_multiply_by_quantized_multiplier(centred, p->multiplier, p->shift)
                                      + p->output_zero_point,
                                  INT8_MIN, INT8_MAX);
            }
            *output++ = (int8_t)result;
        }
    }
}

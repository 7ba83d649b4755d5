/* QUANTIZE int8 -> int8, and RELU / RELU6 as ops of their own: subtract the input zero point, rescale,
 * add the output zero point, clamp (TFLM's Requantize and ReluQuantized). Safe in place. */
#include "tp_kernels.h"

void tp_requantize_tensor(const tp_requantize_params *p, const int8_t *input, int8_t *output)
{
    for (uint32_t i = 0; i < p->size; ++i) {
        const int32_t result =
            tp_multiply_by_quantized_multiplier(input[i] - p->input_zero_point, p->multiplier, p->shift)
            + p->output_zero_point;
        output[i] = (int8_t)tp_clamp(result, p->activation_min, p->activation_max);
    }
}

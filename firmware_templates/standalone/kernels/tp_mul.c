/* MUL, int8, same shapes (TFLM's reference MulElementwise). Safe in place. */
#include "tp_kernels.h"

void tp_mul(const tp_mul_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    for (uint32_t i = 0; i < p->size; ++i) {
        const int32_t product = (p->input1_offset + input1[i]) * (p->input2_offset + input2[i]);
        const int32_t result = p->output_offset
                               + tp_multiply_by_quantized_multiplier(product, p->output_multiplier,
                                                                     p->output_shift);
        output[i] = (int8_t)tp_clamp(result, p->activation_min, p->activation_max);
    }
}

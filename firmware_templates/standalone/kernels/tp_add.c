/* ADD, int8, same shapes: both inputs rescaled to a common 2^20-scaled grid, summed, rescaled to the
 * output (TFLM's reference AddElementwise). Safe in place. */
#include "tp_kernels.h"

void tp_add(const tp_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    for (uint32_t i = 0; i < p->size; ++i) {
        const int32_t shifted1 = (int32_t)((uint32_t)(p->input1_offset + input1[i]) << p->left_shift);
        const int32_t shifted2 = (int32_t)((uint32_t)(p->input2_offset + input2[i]) << p->left_shift);
        const int32_t sum =
            tp_multiply_by_quantized_multiplier(shifted1, p->input1_multiplier, p->input1_shift)
            + tp_multiply_by_quantized_multiplier(shifted2, p->input2_multiplier, p->input2_shift);
        const int32_t result =
            tp_multiply_by_quantized_multiplier(sum, p->output_multiplier, p->output_shift) + p->output_offset;
        output[i] = (int8_t)tp_clamp(result, p->activation_min, p->activation_max);
    }
}

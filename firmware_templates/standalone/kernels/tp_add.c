/* ADD, int8, same shapes: both inputs rescaled to a common 2^20-scaled grid, summed, rescaled to the
 * output (TFLM's reference AddElementwise). The three rescalings' constants are worked out once.
 * Safe in place. */
#include "tp_kernels.h"

void tp_add(const tp_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    const tp_channel_scale scale1 = tp_scale_of(p->input1_multiplier, p->input1_shift);
    const tp_channel_scale scale2 = tp_scale_of(p->input2_multiplier, p->input2_shift);
    const tp_channel_scale output_scale = tp_scale_of(p->output_multiplier, p->output_shift);
    const int32_t offset1 = p->input1_offset, offset2 = p->input2_offset, output_offset = p->output_offset;
    const int32_t low = p->activation_min, high = p->activation_max;
    const int left_shift = p->left_shift;
    const uint32_t size = p->size;
    for (uint32_t i = 0; i < size; ++i) {
        const int32_t shifted1 = (int32_t)((uint32_t)(offset1 + input1[i]) << left_shift);
        const int32_t shifted2 = (int32_t)((uint32_t)(offset2 + input2[i]) << left_shift);
        const int32_t sum = tp_rescale(&scale1, shifted1) + tp_rescale(&scale2, shifted2);
        output[i] = (int8_t)tp_clamp(tp_rescale(&output_scale, sum) + output_offset, low, high);
    }
}

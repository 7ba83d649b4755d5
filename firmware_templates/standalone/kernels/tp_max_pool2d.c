/* MAX_POOL_2D, int8: the largest value of each window clipped to the input, then the activation clamp
 * (TFLM's reference MaxPool). All channels of a window position are read together, contiguously. */
#include "tp_kernels.h"

void tp_max_pool2d(const tp_pool2d_params *p, const int8_t *input, int8_t *output)
{
    const int channels = p->channels;
    for (int oy = 0; oy < p->out_h; ++oy) {
        const int y0 = oy * p->stride_h - p->pad_top;
        const int y_start = y0 < 0 ? 0 : y0;
        const int y_end = y0 + p->filter_h > p->in_h ? p->in_h : y0 + p->filter_h;
        for (int ox = 0; ox < p->out_w; ++ox) {
            const int x0 = ox * p->stride_w - p->pad_left;
            const int x_start = x0 < 0 ? 0 : x0;
            const int x_end = x0 + p->filter_w > p->in_w ? p->in_w : x0 + p->filter_w;
            for (int c = 0; c < channels; ++c) {
                output[c] = INT8_MIN;
            }
            for (int y = y_start; y < y_end; ++y) {
                for (int x = x_start; x < x_end; ++x) {
                    const int8_t *values = input + ((uint32_t)y * p->in_w + x) * channels;
                    for (int c = 0; c < channels; ++c) {
                        output[c] = values[c] > output[c] ? values[c] : output[c];
                    }
                }
            }
            for (int c = 0; c < channels; ++c) {
                output[c] = (int8_t)tp_clamp(output[c], p->activation_min, p->activation_max);
            }
            output += channels;
        }
    }
}

/* AVERAGE_POOL_2D, int8: each window clipped to the input, its sum divided by its size rounding half
 * away from zero, then the activation clamp (TFLM's reference AveragePool). */
#include "tp_kernels.h"

void tp_average_pool2d(const tp_pool2d_params *p, const int8_t *input, int8_t *output)
{
    for (int oy = 0; oy < p->out_h; ++oy) {
        int y_start, y_end;
        tp_pool_window(oy, p->stride_h, p->pad_top, p->filter_h, p->in_h, &y_start, &y_end);
        for (int ox = 0; ox < p->out_w; ++ox) {
            int x_start, x_end;
            tp_pool_window(ox, p->stride_w, p->pad_left, p->filter_w, p->in_w, &x_start, &x_end);
            const int32_t count = (y_end - y_start) * (x_end - x_start);
            for (int c = 0; c < p->channels; ++c) {
                int32_t sum = 0;
                for (int y = y_start; y < y_end; ++y) {
                    for (int x = x_start; x < x_end; ++x) {
                        sum += input[((uint32_t)y * p->in_w + x) * p->channels + c];
                    }
                }
                const int32_t average = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                *output++ = (int8_t)tp_clamp(average, p->activation_min, p->activation_max);
            }
        }
    }
}

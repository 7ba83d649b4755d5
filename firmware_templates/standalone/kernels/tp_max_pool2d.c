/* MAX_POOL_2D, int8: the largest value of each window clipped to the input, then the activation clamp
 * (TFLM's reference MaxPool). All channels of a window position are read together, contiguously;
 * with the SIMD extension four at a time. Starting from the activation minimum is the same as
 * clamping after: max(a, max(b, c)) = max(max(a, b), c). */
#include <string.h>

#include "tp_kernels.h"

void tp_max_pool2d(const tp_pool2d_params *p, const int8_t *input, int8_t *output)
{
    const int channels = p->channels;
    for (int oy = 0; oy < p->out_h; ++oy) {
        int y_start, y_end;
        tp_pool_window(oy, p->stride_h, p->pad_top, p->filter_h, p->in_h, &y_start, &y_end);
        for (int ox = 0; ox < p->out_w; ++ox) {
            int x_start, x_end;
            tp_pool_window(ox, p->stride_w, p->pad_left, p->filter_w, p->in_w, &x_start, &x_end);
            int c = 0;
#if TP_SIMD32
            /* four channels at a time */
            const uint32_t low = 0x01010101u * (uint8_t)p->activation_min;
            const uint32_t high = 0x01010101u * (uint8_t)p->activation_max;
            for (; c + 4 <= channels; c += 4) {
                uint32_t largest = low;
                for (int y = y_start; y < y_end; ++y) {
                    for (int x = x_start; x < x_end; ++x) {
                        uint32_t values;
                        memcpy(&values, input + ((uint32_t)y * p->in_w + x) * channels + c, 4);
                        largest = tp_max_s8x4(values, largest);
                    }
                }
                largest = tp_min_s8x4(largest, high);
                memcpy(output + c, &largest, 4);
            }
#endif
            for (int rest = c; rest < channels; ++rest) {
                output[rest] = INT8_MIN;
            }
            for (int y = y_start; y < y_end; ++y) {
                for (int x = x_start; x < x_end; ++x) {
                    const int8_t *values = input + ((uint32_t)y * p->in_w + x) * channels;
                    for (int rest = c; rest < channels; ++rest) {
                        output[rest] = values[rest] > output[rest] ? values[rest] : output[rest];
                    }
                }
            }
            for (int rest = c; rest < channels; ++rest) {
                output[rest] = (int8_t)tp_clamp(output[rest], p->activation_min, p->activation_max);
            }
            output += channels;
        }
    }
}

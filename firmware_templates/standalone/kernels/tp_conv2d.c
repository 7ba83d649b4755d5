/* CONV_2D, int8, per-channel: TFLM's reference ConvPerChannel on an input already padded with its
 * zero point (so every tap is inside and the input offset folds into the bias). */
#include "tp_weights.h"

/* Dense rows: kernel rows of kernel_w x in_c contiguous bytes (one run when dilation_w is 1). */
static int32_t dense_window_dot(const tp_conv2d_params *p, const int8_t *window, const int8_t *row)
{
    int32_t acc = 0;
    const int run = p->dilation_w == 1 ? p->kernel_w * p->in_c : p->in_c;
    const int runs = p->dilation_w == 1 ? 1 : p->kernel_w;
    for (int ky = 0; ky < p->kernel_h; ++ky) {
        const int8_t *x = window + (uint32_t)ky * p->dilation_h * p->in_w * p->in_c;
        for (int r = 0; r < runs; ++r) {
            acc += tp_dot(x + (uint32_t)r * p->dilation_w * p->in_c, row, run);
            row += run;
        }
    }
    return acc;
}

void tp_conv2d(const tp_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const uint32_t row_step = (uint32_t)p->stride_h * p->in_w * p->in_c;
    const uint32_t column_step = (uint32_t)p->stride_w * p->in_c;
    for (int oy = 0; oy < p->out_h; ++oy) {
        for (int ox = 0; ox < p->out_w; ++ox) {
            const int8_t *window = input + oy * row_step + ox * column_step;
            const int8_t *nonzeros = p->weights.values;
            for (int oc = 0; oc < p->out_c; ++oc) {
                int32_t acc = p->bias[oc];
                if (p->weights.format == TP_DENSE) {
                    acc += dense_window_dot(p, window,
                                            p->weights.values + (uint32_t)oc * p->weights.row_len);
                } else {
                    acc += tp_row_dot(&p->weights, oc, &nonzeros, window, p->taps);
                }
                *output++ = tp_requantize(&p->requant, oc, acc);
            }
        }
    }
}

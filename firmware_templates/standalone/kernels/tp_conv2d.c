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

/* Four neighbouring output pixels of a bitmask layer: one pass over each row's nonzeros. */
static void bitmask_block4(const tp_conv2d_params *p, const int8_t *window, uint32_t column_step,
                           int8_t *output)
{
    const tp_weights weights = p->weights;
    const tp_requant requant = p->requant;
    const int out_c = p->out_c;
    const int8_t *nonzeros = weights.values;
    for (int oc = 0; oc < out_c; ++oc) {
        int32_t acc[4] = {p->bias[oc], p->bias[oc], p->bias[oc], p->bias[oc]};
        tp_bitmask_row_dot4(&weights, oc, &nonzeros, window, column_step, p->taps, acc);
        const tp_channel_scale scale = tp_channel(&requant, oc);
        for (int k = 0; k < 4; ++k) {
            output[k * out_c + oc] = tp_scale(&scale, acc[k]);
        }
    }
}

void tp_conv2d(const tp_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const uint32_t row_step = (uint32_t)p->stride_h * p->in_w * p->in_c;
    const uint32_t column_step = (uint32_t)p->stride_w * p->in_c;
    const tp_weights weights = p->weights;
    const tp_requant requant = p->requant;
    const int out_c = p->out_c;
    for (int oy = 0; oy < p->out_h; ++oy) {
        int ox = 0;
        if (p->weights.format == TP_BITMASK) {
            for (; ox + 4 <= p->out_w; ox += 4) {
                bitmask_block4(p, input + oy * row_step + ox * column_step, column_step, output);
                output += 4 * out_c;
            }
        }
        for (; ox < p->out_w; ++ox) {
            const int8_t *window = input + oy * row_step + ox * column_step;
            const int8_t *nonzeros = weights.values;
            for (int oc = 0; oc < out_c; ++oc) {
                int32_t acc = p->bias[oc];
                if (weights.format == TP_DENSE) {
                    acc += dense_window_dot(p, window, weights.values + (uint32_t)oc * weights.row_len);
                } else {
                    acc += tp_row_dot(&weights, oc, &nonzeros, window, p->taps);
                }
                *output++ = tp_requantize(&requant, oc, acc);
            }
        }
    }
}

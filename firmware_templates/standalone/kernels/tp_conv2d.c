/* CONV_2D, int8, per-channel: TFLM's reference ConvPerChannel on an input already padded with its
 * zero point (so every tap is inside and the input offset folds into the bias). */
#define TP_KERNEL_FORMATS TP_CONV2D_FORMATS
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

/* Dense rows against four windows `column_step` apart: kernel rows of kernel_w x in_c contiguous bytes. */
static void dense_window_dot4(const tp_conv2d_params *p, const int8_t *window, uint32_t column_step,
                              const int8_t *row, int32_t acc[4])
{
    const int run = p->dilation_w == 1 ? p->kernel_w * p->in_c : p->in_c;
    const int runs = p->dilation_w == 1 ? 1 : p->kernel_w;
    for (int ky = 0; ky < p->kernel_h; ++ky) {
        const int8_t *x = window + (uint32_t)ky * p->dilation_h * p->in_w * p->in_c;
        for (int r = 0; r < runs; ++r) {
            tp_dot4(x + (uint32_t)r * p->dilation_w * p->in_c, column_step, row, run, acc);
            row += run;
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
    const int out_w = p->out_w;
    /* four neighbouring output pixels at a time: each weight read (or nonzero found) once for four */
    const int block_end = out_w - out_w % 4;
    tp_cursor cursor = tp_cursor_start(&weights);
    for (int oc = 0; oc < out_c; ++oc) {
        const tp_channel_scale scale = tp_channel(&requant, oc);
        const int32_t bias = p->bias[oc];
        /* a dense row; the compressed forms find their rows through mask, indices or `cursor` */
        const int8_t *row = TP_IS(&weights, DENSE) ? weights.values + (uint32_t)oc * weights.row_len
                                                       : weights.values;
        const tp_cursor row_cursor = cursor;
        for (int oy = 0; oy < p->out_h; ++oy) {
            /* output pixel ox of this row is out[ox * out_c] (an index, never a pointer past the end) */
            int8_t *out = output + (uint32_t)oy * out_w * out_c + oc;
            int ox = 0;
            for (; ox < block_end; ox += 4) {
                const int8_t *window = input + oy * row_step + ox * column_step;
                const int8_t *const windows[4] = {window, window + column_step, window + 2 * column_step,
                                                  window + 3 * column_step};
                int32_t acc[4] = {bias, bias, bias, bias};
                cursor = row_cursor;
                if (!TP_IS(&weights, DENSE)) {
                    tp_sparse_row_dot(&weights, oc, &cursor, windows, p->taps, 4, acc);
                } else if (p->taps) {
                    tp_dense_taps_dot4(row, weights.row_len, windows, p->taps, acc);
                } else {
                    dense_window_dot4(p, window, column_step, row, acc);
                }
                for (int k = 0; k < 4; ++k) {
                    out[(uint32_t)(ox + k) * out_c] = tp_scale(&scale, acc[k]);
                }
            }
            for (; ox < out_w; ++ox) {
                const int8_t *window = input + oy * row_step + ox * column_step;
                cursor = row_cursor;
                const int32_t acc = TP_IS(&weights, DENSE) && !p->taps
                                        ? dense_window_dot(p, window, row)
                                        : tp_row_dot(&weights, oc, &cursor, window, p->taps);
                out[(uint32_t)ox * out_c] = tp_scale(&scale, bias + acc);
            }
        }
    }
}

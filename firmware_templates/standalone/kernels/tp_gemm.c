/* Dense int8 weights times columns of int8 inputs: a CONV_2D over all its output pixels (a pointwise
 * one reads its pixels where they are, any other copies two windows at a time into scratch, padding
 * them with the input zero point: a small im2col), or a FULLY_CONNECTED over its batches; TFLM's
 * reference ConvPerChannel / FullyConnected bit for bit, the input offset folded into the bias.
 *
 * Two weight rows times two input columns a pass: each weight and input word is loaded and
 * sign-extended once for two multiply-accumulates, and SMLAD does two of those an instruction. The
 * export interleaves each pair of rows four bytes at a time (tp_gemm_params), so one pointer walks
 * both. A pass takes `block` columns, so each pair of weight rows is read, and its requantization
 * worked out, once for them. With in_place a pass's outputs go to scratch first and then to `output`,
 * so output may be the input itself when rows <= depth: the block's columns are fully read before
 * their outputs are written. */
#include <string.h>

#include "tp_kernels.h"

/* acc[r][c] += row r . column c over `depth` values; `w`: the two rows interleaved, 4 bytes each. */
static TP_ALWAYS_INLINE void dot_2x2(const int8_t *x0, const int8_t *x1, const int8_t *w, int depth, int32_t acc[4])
{
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    const int body = depth & ~3;
    int k = 0;
#if TP_SIMD32
    for (; k < body; k += 4, w += 8) {
        uint32_t x0_word, x1_word, w0_word, w1_word;
        memcpy(&x0_word, x0 + k, 4);
        memcpy(&x1_word, x1 + k, 4);
        memcpy(&w0_word, w, 4);
        memcpy(&w1_word, w + 4, 4);
        /* bytes 0 and 2, then 1 and 3, as 16-bit pairs: the same pairing on both sides of SMLAD */
        const int32_t x0_even = tp_sxtb16(x0_word), x0_odd = tp_sxtb16_ror8(x0_word);
        const int32_t x1_even = tp_sxtb16(x1_word), x1_odd = tp_sxtb16_ror8(x1_word);
        int32_t w_even = tp_sxtb16(w0_word), w_odd = tp_sxtb16_ror8(w0_word);
        a00 = tp_smlad(x0_odd, w_odd, tp_smlad(x0_even, w_even, a00));
        a01 = tp_smlad(x1_odd, w_odd, tp_smlad(x1_even, w_even, a01));
        w_even = tp_sxtb16(w1_word);
        w_odd = tp_sxtb16_ror8(w1_word);
        a10 = tp_smlad(x0_odd, w_odd, tp_smlad(x0_even, w_even, a10));
        a11 = tp_smlad(x1_odd, w_odd, tp_smlad(x1_even, w_even, a11));
    }
#else
    for (; k < body; k += 4, w += 8) {
        for (int j = 0; j < 4; ++j) {
            a00 += (int32_t)x0[k + j] * w[j];
            a01 += (int32_t)x1[k + j] * w[j];
            a10 += (int32_t)x0[k + j] * w[4 + j];
            a11 += (int32_t)x1[k + j] * w[4 + j];
        }
    }
#endif
    /* the last depth % 4 values: row 0's, then row 1's */
    const int tail = depth - body;
    for (int j = 0; j < tail; ++j) {
        a00 += (int32_t)x0[body + j] * w[j];
        a01 += (int32_t)x1[body + j] * w[j];
        a10 += (int32_t)x0[body + j] * w[tail + j];
        a11 += (int32_t)x1[body + j] * w[tail + j];
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

/* acc[r] += row r . x over `depth` values: the two interleaved rows against one column. */
static TP_ALWAYS_INLINE void dot_2x1(const int8_t *x, const int8_t *w, int depth, int32_t acc[2])
{
    int32_t a0 = acc[0], a1 = acc[1];
    const int body = depth & ~3;
    int k = 0;
#if TP_SIMD32
    for (; k < body; k += 4, w += 8) {
        uint32_t x_word, w0_word, w1_word;
        memcpy(&x_word, x + k, 4);
        memcpy(&w0_word, w, 4);
        memcpy(&w1_word, w + 4, 4);
        const int32_t x_even = tp_sxtb16(x_word), x_odd = tp_sxtb16_ror8(x_word);
        a0 = tp_smlad(x_odd, tp_sxtb16_ror8(w0_word), tp_smlad(x_even, tp_sxtb16(w0_word), a0));
        a1 = tp_smlad(x_odd, tp_sxtb16_ror8(w1_word), tp_smlad(x_even, tp_sxtb16(w1_word), a1));
    }
#else
    for (; k < body; k += 4, w += 8) {
        for (int j = 0; j < 4; ++j) {
            a0 += (int32_t)x[k + j] * w[j];
            a1 += (int32_t)x[k + j] * w[4 + j];
        }
    }
#endif
    const int tail = depth - body;
    for (int j = 0; j < tail; ++j) {
        a0 += (int32_t)x[body + j] * w[j];
        a1 += (int32_t)x[body + j] * w[tail + j];
    }
    acc[0] = a0;
    acc[1] = a1;
}

/* Up to `block` columns (`count`) starting at `x`, two at a time: every row's outputs into
 * out[column * rows + row]; a pair of rows' requantization constants serve the whole block. */
static void columns(const tp_gemm_params *p, const tp_requant *requant, const int8_t *x, int count, int8_t *out)
{
    const int depth = p->depth, rows = p->rows;
    const int8_t *w = p->weights;
    int row = 0;
    for (; row + 1 < rows; row += 2, w += 2 * depth) {
        const tp_channel_scale scale0 = tp_channel(requant, row);
        const tp_channel_scale scale1 = tp_channel(requant, row + 1);
        const int32_t bias0 = p->bias[row], bias1 = p->bias[row + 1];
        for (int column = 0; column < count; column += 2) {
            const int8_t *x0 = x + column * depth;
            int8_t *to = out + column * rows + row;
            if (column + 1 < count) {
                int32_t acc[4] = {bias0, bias0, bias1, bias1};
                dot_2x2(x0, x0 + depth, w, depth, acc);
                to[0] = tp_scale(&scale0, acc[0]);
                to[rows] = tp_scale(&scale0, acc[1]);
                to[1] = tp_scale(&scale1, acc[2]);
                to[rows + 1] = tp_scale(&scale1, acc[3]);
            } else {
                int32_t acc[2] = {bias0, bias1};
                dot_2x1(x0, w, depth, acc);
                to[0] = tp_scale(&scale0, acc[0]);
                to[1] = tp_scale(&scale1, acc[1]);
            }
        }
    }
    if (row < rows) { /* an odd last row, stored plain */
        for (int column = 0; column < count; ++column) {
            const int32_t acc = p->bias[row] + tp_dot(x + column * depth, w, depth);
            out[column * rows + row] = tp_requantize(requant, row, acc);
        }
    }
}

static inline int32_t larger(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

/* With a fused pool: each `members` consecutive columns of the `count` are one pooled output's windows;
 * each row's largest accumulator over them, requantized once (monotone: see tp_conv2d.c), goes to
 * out[pooled * rows + row]. Two rows times two windows a pass, as in `columns`. */
static void pooled_columns(const tp_gemm_params *p, const tp_requant *requant, const int8_t *x, int count,
                           int8_t *out)
{
    const int depth = p->depth, rows = p->rows, members = p->pool_h * p->pool_w;
    const int8_t *w = p->weights;
    for (int row = 0; row < rows; row += 2, w += 2 * depth) {
        const int pair = row + 1 < rows; /* else an odd last row, stored plain */
        const tp_channel_scale scale0 = tp_channel(requant, row);
        const tp_channel_scale scale1 = tp_channel(requant, pair ? row + 1 : row);
        const int32_t bias0 = p->bias[row], bias1 = pair ? p->bias[row + 1] : 0;
        for (int first = 0; first < count; first += members) {
            int8_t *to = out + first / members * rows + row;
            int32_t largest0 = INT32_MIN, largest1 = INT32_MIN;
            for (int m = 0; m < members; ++m) {
                const int8_t *x0 = x + (first + m) * depth;
                if (!pair) {
                    largest0 = larger(largest0, bias0 + tp_dot(x0, w, depth));
                } else if (m + 1 < members) {
                    int32_t acc[4] = {bias0, bias0, bias1, bias1};
                    dot_2x2(x0, x0 + depth, w, depth, acc);
                    largest0 = larger(largest0, larger(acc[0], acc[1]));
                    largest1 = larger(largest1, larger(acc[2], acc[3]));
                    ++m;
                } else {
                    int32_t acc[2] = {bias0, bias1};
                    dot_2x1(x0, w, depth, acc);
                    largest0 = larger(largest0, acc[0]);
                    largest1 = larger(largest1, acc[1]);
                }
            }
            to[0] = tp_scale(&scale0, largest0);
            if (pair) {
                to[1] = tp_scale(&scale1, largest1);
            }
        }
    }
}

/* The convolution windows of output pixels `column` and the next (`count` of them) copied into `to`,
 * one after the other: kernel_h runs of kernel_w x in_c bytes each (the small im2col), the padding
 * (taps outside the input) filled with the input zero point on the way. */
static const int8_t *gather(const tp_gemm_params *p, const int8_t *input, int column, int count, int8_t *to)
{
    const int in_c = p->in_c, in_w = p->in_w, kernel_w = p->kernel_w;
    const uint32_t run = (uint32_t)kernel_w * in_c;
    int8_t *at = to;
    const int members = p->pool_h * p->pool_w;
    for (int c = column; c < column + count; ++c) {
        /* the output pixel of column c: without a pool, the c-th in row-major order; with one, window
         * member c % members of pooled pixel c / members */
        const int pixel = members ? c / members : c;
        const int member = members ? c % members : 0;
        const int oy = members ? pixel / p->out_w * p->pool_h + member / p->pool_w : pixel / p->out_w;
        const int ox = members ? pixel % p->out_w * p->pool_w + member % p->pool_w : pixel % p->out_w;
        const int y0 = oy * p->stride_h - p->pad_top;
        const int x0 = ox * p->stride_w - p->pad_left;
        const int columns_inside = x0 >= 0 && x0 + kernel_w <= in_w;
        for (int ky = 0; ky < p->kernel_h; ++ky, at += run) {
            const int y = y0 + ky * p->dilation_h;
            const int8_t *row = input + (uint32_t)y * in_w * in_c;
            if (y < 0 || y >= p->in_h) {
                memset(at, p->input_zero_point, run);
            } else if (columns_inside) {
                tp_copy_bytes(at, row + (uint32_t)x0 * in_c, run);
            } else {
                for (int kx = 0; kx < kernel_w; ++kx) {
                    const int x = x0 + kx;
                    if (x < 0 || x >= in_w) {
                        memset(at + kx * in_c, p->input_zero_point, (size_t)in_c);
                    } else {
                        tp_copy_bytes(at + kx * in_c, row + (uint32_t)x * in_c, (uint32_t)in_c);
                    }
                }
            }
        }
    }
    return to;
}

void tp_gemm(const tp_gemm_params *p, const int8_t *input, int8_t *scratch, int8_t *output)
{
    /* a local copy: the int8 stores could otherwise alias the parameters */
    const tp_requant requant = p->requant;
    const int depth = p->depth, rows = p->rows, count = p->columns, block = p->block;
    int8_t *const staged = scratch + (p->kernel_h ? block * depth : 0);
    const int members = p->pool_h ? p->pool_h * p->pool_w : 1;
    for (int column = 0; column < count; column += block) {
        const int taken = count - column < block ? count - column : block;
        const int8_t *x = p->kernel_h ? gather(p, input, column, taken, scratch) : input + (uint32_t)column * depth;
        int8_t *out = output + (uint32_t)(column / members) * rows;
        if (TP_GEMM_PLAIN && p->in_place) {
            columns(p, &requant, x, taken, staged);
            memcpy(out, staged, (size_t)taken * rows);
        } else if (TP_GEMM_POOLED && (members > 1 || !TP_GEMM_PLAIN)) {
            pooled_columns(p, &requant, x, taken, out);
        } else {
            columns(p, &requant, x, taken, out);
        }
    }
}

/* DEPTHWISE_CONV_2D, int8, per-channel: TFLM's reference DepthwiseConvPerChannel.
 *
 * Channels are the outer loop, so a channel's requantization constants are worked out once. With one
 * output channel per input channel, four neighbouring channels go together: their inputs and weights
 * are contiguous, four bytes a load. Each block of four is first copied into scratch with its padding
 * (the input zero point) around it, so every window lies inside, the input offset of every tap folds
 * into the bias and the loop multiplies raw inputs with no border tests. Once copied, the block's
 * input channels are dead: the output may be the input itself. Other layers (depth multiplier > 1,
 * channels not a multiple of four) go a channel at a time, skipping the taps outside the input.
 * Pruned or clustered weights (bitmask or LUT rows, a row of taps per output channel) multiply only
 * their nonzero taps: staged the same way a block at a time, else pixel by pixel. */
#include <string.h>

#define TP_KERNEL_FORMATS TP_DEPTHWISE_CONV2D_FORMATS
#include "tp_weights.h"

/* Output pixels whose accumulators are kept before they are requantized, a channel at a time. */
#define TP_DEPTHWISE_CHUNK 16

/* The taps [*first, *end) of a kernel axis that land inside the input, for a window starting at `start`. */
static void inside_taps(int start, int taps, int dilation, int size, int *first, int *end)
{
    *first = start < 0 ? (-start + dilation - 1) / dilation : 0;
    const int last = (size - start + dilation - 1) / dilation;
    *end = last < taps ? last : taps;
}

/* Channels c0 .. c0 + 3 of the input copied into `plane`: padded_h x padded_w pixels of four bytes,
 * the padding filled with the input zero point. */
static void stage_block(const tp_depthwise_conv2d_params *p, const int8_t *input, int c0, int8_t *plane)
{
    const uint32_t zero_points = (uint32_t)(uint8_t)(-p->input_offset) * 0x01010101u;
    const int in_w = p->in_w, in_c = p->in_c;
    for (int py = 0; py < p->padded_h; ++py) {
        const int y = py - p->pad_top;
        const int8_t *from = input + ((uint32_t)y * in_w * in_c + c0);
        for (int px = 0; px < p->padded_w; ++px, plane += 4) {
            const int x = px - p->pad_left;
            if (y >= 0 && y < p->in_h && x >= 0 && x < in_w) {
                memcpy(plane, from + (uint32_t)x * in_c, 4);
            } else {
                memcpy(plane, &zero_points, 4);
            }
        }
    }
}

/* acc[k] += x[k] * w[k] for four neighbouring channels: raw inputs, the input offset is in the bias. */
static inline void mac4_raw(const int8_t *x, const int8_t *w, int32_t acc[4])
{
#if TP_SIMD32
    uint32_t x4, w4;
    memcpy(&x4, x, 4);
    memcpy(&w4, w, 4);
    const int32_t x02 = tp_sxtb16(x4), x13 = tp_sxtb16_ror8(x4);
    const int32_t w02 = tp_sxtb16(w4), w13 = tp_sxtb16_ror8(w4);
    acc[0] = tp_smlabb(x02, w02, acc[0]);
    acc[1] = tp_smlabb(x13, w13, acc[1]);
    acc[2] = tp_smlatt(x02, w02, acc[2]);
    acc[3] = tp_smlatt(x13, w13, acc[3]);
#else
    for (int k = 0; k < 4; ++k) {
        acc[k] += x[k] * w[k];
    }
#endif
}

/* Channels c0 .. c0 + 3 (depth multiplier 1) at every output pixel, from their staged plane: every
 * window lies inside it, so each starts from the bias with all its taps' input offsets folded in.
 * `weights`: the block's, tap after tap, four bytes each (the export stores depth-multiplier-1 weights
 * block by block). Kernel rows three taps wide with no dilation are unrolled: constant offsets. */
static void block4(const tp_depthwise_conv2d_params *p, const tp_requant *requant, const int8_t *plane, int c0,
                   const int8_t *weights, int8_t *out)
{
    const int out_c = p->out_c, kernel_h = p->kernel_h, kernel_w = p->kernel_w, taps = kernel_h * kernel_w;
    tp_channel_scale scale[4];
    int32_t bias[4];
    for (int k = 0; k < 4; ++k) {
        scale[k] = tp_channel(requant, c0 + k);
        bias[k] = p->bias[c0 + k];
        for (int tap = 0; tap < taps; ++tap) {
            bias[k] += p->input_offset * weights[4 * tap + k];
        }
    }
    const uint32_t tap_step = 4u * p->dilation_w;
    const uint32_t row_step = 4u * p->dilation_h * p->padded_w;
    const uint32_t column_step = 4u * p->stride_w;
    const int rows_of_three = kernel_w == 3 && p->dilation_w == 1;
    const uint32_t pixels = (uint32_t)p->out_h * p->out_w;
    int32_t chunk[TP_DEPTHWISE_CHUNK][4];
    for (uint32_t first = 0; first < pixels; first += TP_DEPTHWISE_CHUNK) {
        const uint32_t count = pixels - first < TP_DEPTHWISE_CHUNK ? pixels - first : TP_DEPTHWISE_CHUNK;
        for (uint32_t i = 0; i < count; ++i) {
            const int oy = (int)((first + i) / p->out_w), ox = (int)((first + i) % p->out_w);
            const int8_t *row = plane + 4u * ((uint32_t)oy * p->stride_h * p->padded_w) + (uint32_t)ox * column_step;
            int32_t *acc = chunk[i];
            memcpy(acc, bias, sizeof bias);
            const int8_t *w = weights;
            if (rows_of_three) {
                for (int ky = 0; ky < kernel_h; ++ky, row += row_step, w += 12) {
                    mac4_raw(row, w, acc);
                    mac4_raw(row + 4, w + 4, acc);
                    mac4_raw(row + 8, w + 8, acc);
                }
            } else {
                for (int ky = 0; ky < kernel_h; ++ky, row += row_step) {
                    const int8_t *x = row;
                    for (int kx = 0; kx < kernel_w; ++kx, x += tap_step, w += 4) {
                        mac4_raw(x, w, acc);
                    }
                }
            }
        }
        /* a channel at a time: its requantization constants stay in registers */
        for (int k = 0; k < 4; ++k) {
            const tp_channel_scale channel_scale = scale[k];
            int8_t *to = out + first * out_c + k;
            for (uint32_t i = 0; i < count; ++i, to += out_c) {
                *to = tp_scale(&channel_scale, chunk[i][k]);
            }
        }
    }
}

/* Output channel oc (any depth multiplier) at every output pixel, written out_c bytes apart. */
static void channel(const tp_depthwise_conv2d_params *p, const tp_requant *requant, const int8_t *input, int oc,
                    int8_t *out)
{
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_c = p->out_c;
    const int kernel_h = p->kernel_h, kernel_w = p->kernel_w;
    const int dilation_h = p->dilation_h, dilation_w = p->dilation_w;
    const int32_t input_offset = p->input_offset;
    const tp_channel_scale scale = tp_channel(requant, oc);
    const int source = oc / p->depth_multiplier;
    for (int oy = 0; oy < p->out_h; ++oy) {
        const int y0 = oy * p->stride_h - p->pad_top;
        int ky_first, ky_end;
        inside_taps(y0, kernel_h, dilation_h, in_h, &ky_first, &ky_end);
        for (int ox = 0; ox < p->out_w; ++ox, out += out_c) {
            const int x0 = ox * p->stride_w - p->pad_left;
            int kx_first, kx_end;
            inside_taps(x0, kernel_w, dilation_w, in_w, &kx_first, &kx_end);
            int32_t acc = p->bias[oc];
            for (int ky = ky_first; ky < ky_end; ++ky) {
                const int y = y0 + ky * dilation_h;
                for (int kx = kx_first; kx < kx_end; ++kx) {
                    const int x = x0 + kx * dilation_w;
                    acc += (input[((uint32_t)y * in_w + (uint32_t)x) * in_c + source] + input_offset)
                           * p->weights.values[(uint32_t)(ky * kernel_w + kx) * out_c + oc];
                }
            }
            *out = tp_scale(&scale, acc);
        }
    }
}

/* One output pixel's window over the pixels it reads (the input, or a staged plane), and the part of
 * the window inside them. */
typedef struct {
    const int8_t *pixels;
    uint32_t width, channels;
    int y0, x0; /* the window's top-left pixel, outside the pixels where padding is */
    int ky_first, ky_end, kx_first, kx_end;
} window;

/* (input + offset) * weight for tap (ky, kx) of `channel`, 0 for a tap outside the pixels. */
static inline int32_t tap(const tp_depthwise_conv2d_params *p, const window *win, int channel, int ky, int kx,
                          int32_t weight)
{
    if (ky < win->ky_first || ky >= win->ky_end || kx < win->kx_first || kx >= win->kx_end) {
        return 0;
    }
    const uint32_t y = (uint32_t)(win->y0 + ky * p->dilation_h);
    const uint32_t x = (uint32_t)(win->x0 + kx * p->dilation_w);
    return (win->pixels[(y * win->width + x) * win->channels + (uint32_t)channel] + p->input_offset) * weight;
}

/* Output channel `oc`'s sum over its nonzero taps, from its bitmask or LUT row; `*nonzeros` walks the
 * bitmask form's values row after row. (ky, kx) follow the row position without a division. */
static int32_t sparse_channel(const tp_depthwise_conv2d_params *p, int oc, const int8_t **nonzeros,
                              const window *win, int channel)
{
    const tp_weights *w = &p->weights;
    const int kernel_w = p->kernel_w;
    int32_t acc = 0;
    int ky = 0, kx = 0, at = 0; /* (ky, kx) is row position `at` */
    if (TP_IS(w, BITMASK)) {
        const uint32_t *mask = w->mask + (uint32_t)oc * w->row_stride;
        const int8_t *value = *nonzeros;
        for (int word = 0; word < w->row_stride; ++word) {
            uint32_t bits = mask[word];
            int next = word * 32; /* the position of the top bit of `bits` */
            while (bits) {
                const int skip = tp_leading_zeros(bits);
                bits = (bits << skip) << 1;
                const int position = next + skip;
                next = position + 1;
                for (kx += position - at, at = position; kx >= kernel_w; kx -= kernel_w) {
                    ++ky;
                }
                acc += tap(p, win, channel, ky, kx, *value++);
            }
        }
        *nonzeros = value;
    } else {
        const uint8_t *indices = w->indices + (uint32_t)oc * w->row_stride;
        for (int position = 0; position < w->row_len; ++position) {
            const int32_t weight = w->values[tp_read_bits(indices, (uint32_t)position * w->index_bits,
                                                          w->index_bits)];
            if (weight) {
                acc += tap(p, win, channel, ky, kx, weight);
            }
            if (++kx == kernel_w) {
                kx = 0;
                ++ky;
            }
        }
    }
    return acc;
}

/* Bitmask or LUT weights of a staged block: channels c0 .. c0 + 3 from their padded plane (every window
 * inside; a padding tap adds (zero point + offset) * weight = 0), a channel at a time. `*nonzeros`: the
 * bitmask values of row c0, then of the next row. */
static void sparse_block4(const tp_depthwise_conv2d_params *p, const tp_requant *requant, const int8_t *plane,
                          int c0, const int8_t **nonzeros, int8_t *output)
{
    window win = {plane, p->padded_w, 4, 0, 0, 0, p->kernel_h, 0, p->kernel_w};
    for (int k = 0; k < 4; ++k) {
        const int oc = c0 + k;
        const tp_channel_scale scale = tp_channel(requant, oc);
        const int8_t *row = *nonzeros;
        for (int oy = 0; oy < p->out_h; ++oy) {
            win.y0 = oy * p->stride_h;
            for (int ox = 0; ox < p->out_w; ++ox) {
                win.x0 = ox * p->stride_w;
                *nonzeros = row;
                const int32_t acc = p->bias[oc] + sparse_channel(p, oc, nonzeros, &win, k);
                output[((uint32_t)oy * p->out_w + (uint32_t)ox) * p->out_c + (uint32_t)oc] = tp_scale(&scale, acc);
            }
        }
    }
}

/* Bitmask or LUT weights, not staged: every output channel of a pixel from its own row. */
static void sparse_depthwise(const tp_depthwise_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const tp_requant requant = p->requant;
    const int out_c = p->out_c, multiplier = p->depth_multiplier;
    for (int oy = 0; oy < p->out_h; ++oy) {
        window win;
        win.pixels = input;
        win.width = p->in_w;
        win.channels = p->in_c;
        win.y0 = oy * p->stride_h - p->pad_top;
        inside_taps(win.y0, p->kernel_h, p->dilation_h, p->in_h, &win.ky_first, &win.ky_end);
        for (int ox = 0; ox < p->out_w; ++ox) {
            win.x0 = ox * p->stride_w - p->pad_left;
            inside_taps(win.x0, p->kernel_w, p->dilation_w, p->in_w, &win.kx_first, &win.kx_end);
            const int8_t *nonzeros = p->weights.values;
            for (int oc = 0; oc < out_c; ++oc) {
                const int32_t acc = p->bias[oc] + sparse_channel(p, oc, &nonzeros, &win, oc / multiplier);
                output[oc] = tp_requantize(&requant, oc, acc);
            }
            output += out_c;
        }
    }
}

void tp_depthwise_conv2d(const tp_depthwise_conv2d_params *p, const int8_t *input, int8_t *scratch, int8_t *output)
{
    /* a local copy: the int8 stores could otherwise alias the parameters */
    const tp_requant requant = p->requant;
    const int out_c = p->out_c;
    if (p->staged) {
        const uint32_t block_weights = 4u * p->kernel_h * p->kernel_w;
        const int8_t *nonzeros = p->weights.values;
        for (int oc = 0; oc < out_c; oc += 4) {
            stage_block(p, input, oc, scratch);
            if (TP_IS(&p->weights, DENSE)) {
                block4(p, &requant, scratch, oc, p->weights.values + (uint32_t)oc / 4 * block_weights, output + oc);
            } else {
                sparse_block4(p, &requant, scratch, oc, &nonzeros, output);
            }
        }
    } else if (!TP_IS(&p->weights, DENSE)) {
        sparse_depthwise(p, input, output);
    } else {
        for (int oc = 0; oc < out_c; ++oc) {
            channel(p, &requant, input, oc, output + oc);
        }
    }
}

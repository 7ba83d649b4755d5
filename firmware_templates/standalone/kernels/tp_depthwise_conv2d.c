/* DEPTHWISE_CONV_2D, int8, per-channel: TFLM's reference DepthwiseConvPerChannel. Taps outside the
 * input are skipped (no padded copy: depthwise layers are wide and cheap per byte).
 *
 * Channels are the outer loop, so a channel's requantization constants are worked out once. With one
 * output channel per input channel, four neighbouring channels go together: their inputs and weights
 * are contiguous, four bytes a load. A window wholly inside the input starts from the bias with the
 * input offset of all its taps folded in, and multiplies raw inputs; only border windows add the
 * offset tap by tap.
 *
 * In place (in_place, output the same shape as the input): a block's outputs go to scratch (out_h x
 * out_w x 4 bytes) and are copied over the block's input channels once the block is done, since no
 * other block reads them. */
#include <string.h>

#include "tp_kernels.h"

/* The taps [*first, *end) of a kernel axis that land inside the input, for a window starting at `start`. */
static void inside_taps(int start, int taps, int dilation, int size, int *first, int *end)
{
    *first = start < 0 ? (-start + dilation - 1) / dilation : 0;
    const int last = (size - start + dilation - 1) / dilation;
    *end = last < taps ? last : taps;
}

/* acc[k] += (x[k] + input_offset) * w[k] for four neighbouring channels. */
static inline void mac4(const int8_t *x, const int8_t *w, int32_t input_offset, int32_t acc[4])
{
#if TP_SIMD32
    uint32_t x4, w4;
    memcpy(&x4, x, 4);
    memcpy(&w4, w, 4);
    const int32_t offsets = (int32_t)((uint32_t)(uint16_t)input_offset * 0x10001u);
    const int32_t x02 = tp_sadd16(tp_sxtb16(x4), offsets);
    const int32_t x13 = tp_sadd16(tp_sxtb16_ror8(x4), offsets);
    const int32_t w02 = tp_sxtb16(w4);
    const int32_t w13 = tp_sxtb16_ror8(w4);
    acc[0] = tp_smlabb(x02, w02, acc[0]);
    acc[1] = tp_smlabb(x13, w13, acc[1]);
    acc[2] = tp_smlatt(x02, w02, acc[2]);
    acc[3] = tp_smlatt(x13, w13, acc[3]);
#else
    for (int k = 0; k < 4; ++k) {
        acc[k] += (x[k] + input_offset) * w[k];
    }
#endif
}

/* acc[k] += x[k] * w[k] for four neighbouring channels (raw inputs: the offset is in the bias). */
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

/* Channels c0 .. c0 + 3 (depth multiplier 1) at every output pixel, written `pixel_stride` bytes apart. */
static void block4(const tp_depthwise_conv2d_params *p, const tp_requant *requant, const int8_t *input, int c0,
                   int8_t *out, uint32_t pixel_stride)
{
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_c = p->out_c;
    const int kernel_h = p->kernel_h, kernel_w = p->kernel_w;
    const int dilation_h = p->dilation_h, dilation_w = p->dilation_w;
    const int32_t input_offset = p->input_offset;
    const int8_t *const weights = p->weights + c0;
    tp_channel_scale scale[4];
    int32_t bias[4], inside_bias[4];
    for (int k = 0; k < 4; ++k) {
        scale[k] = tp_channel(requant, c0 + k);
        bias[k] = p->bias[c0 + k];
        inside_bias[k] = bias[k];
        for (int tap = 0; tap < kernel_h * kernel_w; ++tap) {
            inside_bias[k] += input_offset * weights[tap * out_c + k];
        }
    }
    const uint32_t tap_step = (uint32_t)dilation_w * in_c;
    const uint32_t row_step = (uint32_t)dilation_h * in_w * in_c;
    for (int oy = 0; oy < p->out_h; ++oy) {
        const int y0 = oy * p->stride_h - p->pad_top;
        int ky_first, ky_end;
        inside_taps(y0, kernel_h, dilation_h, in_h, &ky_first, &ky_end);
        for (int ox = 0; ox < p->out_w; ++ox, out += pixel_stride) {
            const int x0 = ox * p->stride_w - p->pad_left;
            int kx_first, kx_end;
            inside_taps(x0, kernel_w, dilation_w, in_w, &kx_first, &kx_end);
            int32_t acc[4];
            if (ky_first == 0 && ky_end == kernel_h && kx_first == 0 && kx_end == kernel_w) {
                memcpy(acc, inside_bias, sizeof acc);
                const int8_t *row = input + ((uint32_t)(y0 * in_w + x0) * in_c + c0);
                const int8_t *w = weights;
                for (int ky = 0; ky < kernel_h; ++ky, row += row_step) {
                    const int8_t *x = row;
                    for (int kx = 0; kx < kernel_w; ++kx, x += tap_step, w += out_c) {
                        mac4_raw(x, w, acc);
                    }
                }
            } else {
                memcpy(acc, bias, sizeof acc);
                for (int ky = ky_first; ky < ky_end; ++ky) {
                    const int y = y0 + ky * dilation_h;
                    for (int kx = kx_first; kx < kx_end; ++kx) {
                        const int x = x0 + kx * dilation_w;
                        mac4(input + ((uint32_t)(y * in_w + x) * in_c + c0),
                             weights + (uint32_t)(ky * kernel_w + kx) * out_c, input_offset, acc);
                    }
                }
            }
            for (int k = 0; k < 4; ++k) {
                out[k] = tp_scale(&scale[k], acc[k]);
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
                    acc += (input[(uint32_t)(y * in_w + x) * in_c + source] + input_offset)
                           * p->weights[(uint32_t)(ky * kernel_w + kx) * out_c + oc];
                }
            }
            *out = tp_scale(&scale, acc);
        }
    }
}

void tp_depthwise_conv2d(const tp_depthwise_conv2d_params *p, const int8_t *input, int8_t *scratch, int8_t *output)
{
    /* a local copy: the int8 stores could otherwise alias the parameters */
    const tp_requant requant = p->requant;
    const int out_c = p->out_c;
    const uint32_t pixels = (uint32_t)p->out_h * p->out_w;
    const int block_end = p->depth_multiplier == 1 ? out_c - out_c % 4 : 0;
    int oc = 0;
    for (; oc < block_end; oc += 4) {
        if (p->in_place) {
            block4(p, &requant, input, oc, scratch, 4);
            for (uint32_t pixel = 0; pixel < pixels; ++pixel) {
                memcpy(output + pixel * out_c + oc, scratch + 4 * pixel, 4);
            }
        } else {
            block4(p, &requant, input, oc, output + oc, (uint32_t)out_c);
        }
    }
    for (; oc < out_c; ++oc) {
        channel(p, &requant, input, oc, output + oc);
    }
}

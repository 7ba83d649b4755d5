/* DEPTHWISE_CONV_2D, int8, per-channel: TFLM's reference DepthwiseConvPerChannel. Taps outside the
 * input are skipped in the kernel (no padded copy: depthwise layers are wide and cheap per byte).
 * With one output channel per input channel, four neighbouring channels are computed together: their
 * inputs and weights are contiguous, four bytes a load. */
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

void tp_depthwise_conv2d(const tp_depthwise_conv2d_params *p, const int8_t *input, int8_t *output)
{
    /* locals, not p->: the int8 stores below could otherwise alias the parameters */
    const tp_requant requant = p->requant;
    const int8_t *const weights = p->weights;
    const int32_t *const bias = p->bias;
    const int32_t input_offset = p->input_offset;
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_c = p->out_c;
    const int kernel_h = p->kernel_h, kernel_w = p->kernel_w, multiplier = p->depth_multiplier;
    const int dilation_h = p->dilation_h, dilation_w = p->dilation_w;
    const int block_end = multiplier == 1 ? out_c - out_c % 4 : 0;
    for (int oy = 0; oy < p->out_h; ++oy) {
        const int y0 = oy * p->stride_h - p->pad_top;
        int ky_first, ky_end;
        inside_taps(y0, kernel_h, dilation_h, in_h, &ky_first, &ky_end);
        for (int ox = 0; ox < p->out_w; ++ox) {
            const int x0 = ox * p->stride_w - p->pad_left;
            int kx_first, kx_end;
            inside_taps(x0, kernel_w, dilation_w, in_w, &kx_first, &kx_end);
            int oc = 0;
            for (; oc < block_end; oc += 4) {
                int32_t acc[4] = {bias[oc], bias[oc + 1], bias[oc + 2], bias[oc + 3]};
                for (int ky = ky_first; ky < ky_end; ++ky) {
                    const int y = y0 + ky * dilation_h;
                    for (int kx = kx_first; kx < kx_end; ++kx) {
                        const int x = x0 + kx * dilation_w;
                        mac4(input + ((y * in_w + x) * in_c + oc), weights + ((ky * kernel_w + kx) * out_c + oc),
                             input_offset, acc);
                    }
                }
                for (int k = 0; k < 4; ++k) {
                    output[oc + k] = tp_requantize(&requant, oc + k, acc[k]);
                }
            }
            for (; oc < out_c; ++oc) {
                const int channel = oc / multiplier;
                int32_t acc = bias[oc];
                for (int ky = ky_first; ky < ky_end; ++ky) {
                    const int y = y0 + ky * dilation_h;
                    for (int kx = kx_first; kx < kx_end; ++kx) {
                        const int x = x0 + kx * dilation_w;
                        acc += (input[(y * in_w + x) * in_c + channel] + input_offset)
                               * weights[(ky * kernel_w + kx) * out_c + oc];
                    }
                }
                output[oc] = tp_requantize(&requant, oc, acc);
            }
            output += out_c;
        }
    }
}

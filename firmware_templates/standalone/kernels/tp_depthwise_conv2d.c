/* DEPTHWISE_CONV_2D, int8, per-channel: TFLM's reference DepthwiseConvPerChannel on an input already
 * padded with its zero point (input offset folded into the bias). */
#include "tp_kernels.h"

void tp_depthwise_conv2d(const tp_depthwise_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const uint32_t line = (uint32_t)p->in_w * p->in_c;
    const tp_requant requant = p->requant;
    for (int oy = 0; oy < p->out_h; ++oy) {
        for (int ox = 0; ox < p->out_w; ++ox) {
            const int8_t *window = input + (uint32_t)oy * p->stride_h * line
                                   + (uint32_t)ox * p->stride_w * p->in_c;
            for (int oc = 0; oc < p->out_c; ++oc) {
                const int8_t *x = window + oc / p->depth_multiplier;
                const int8_t *w = p->weights + oc;
                int32_t acc = p->bias[oc];
                for (int ky = 0; ky < p->kernel_h; ++ky) {
                    const int8_t *x_row = x + (uint32_t)ky * p->dilation_h * line;
                    for (int kx = 0; kx < p->kernel_w; ++kx) {
                        acc += (int32_t)x_row[(uint32_t)kx * p->dilation_w * p->in_c] * *w;
                        w += p->out_c;
                    }
                }
                *output++ = tp_requantize(&requant, oc, acc);
            }
        }
    }
}

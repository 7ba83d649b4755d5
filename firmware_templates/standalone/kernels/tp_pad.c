/* PAD (and the zero-point border a padded convolution reads): a 4-D copy into a larger buffer filled
 * with the pad value. The export merges unpadded axes into the one before (ops._pad_fields), so the
 * runs copied are as long as they can be; the fill and the runs go a word at a time (no memset or memcpy:
 * the buffers are short, and a firmware whose other kernels need neither links none). */
#include "tp_kernels.h"

void tp_pad(const tp_pad_params *p, const int8_t *input, int8_t *output)
{
    uint32_t out_dims[4];
    uint32_t out_size = 1;
    for (int d = 0; d < 4; ++d) {
        out_dims[d] = (uint32_t)p->before[d] + p->in_dims[d] + p->after[d];
        out_size *= out_dims[d];
    }
    tp_fill_bytes(output, p->value, out_size);
    for (uint32_t i0 = 0; i0 < p->in_dims[0]; ++i0) {
        for (uint32_t i1 = 0; i1 < p->in_dims[1]; ++i1) {
            for (uint32_t i2 = 0; i2 < p->in_dims[2]; ++i2) {
                const uint32_t at = (((i0 + p->before[0]) * out_dims[1] + i1 + p->before[1]) * out_dims[2]
                                     + i2 + p->before[2]) * out_dims[3] + p->before[3];
                tp_copy_bytes(output + at, input, p->in_dims[3]);
                input += p->in_dims[3];
            }
        }
    }
}

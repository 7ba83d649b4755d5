/* PAD (and the zero-point border a padded convolution reads): the output filled with the pad value, then
 * the input copied into it run by run. A header, not a kernel file: model.c inlines each call, its
 * parameters (worked out at export, ops._pad_fields) are constants there, so the loops take immediates,
 * loops of one run fold away and the parameters take no flash. No memset or memcpy: the buffers are
 * short, and a firmware whose other kernels need neither links none. */
#ifndef TP_PAD_H
#define TP_PAD_H

#include "tp_kernels.h"

static TP_ALWAYS_INLINE void tp_pad(const tp_pad_params *p, const int8_t *input, int8_t *output)
{
    tp_fill_bytes(output, p->value, p->size);
    output += p->first;
    for (uint32_t i0 = 0; i0 < p->runs[0]; ++i0) {
        for (uint32_t i1 = 0; i1 < p->runs[1]; ++i1) {
            for (uint32_t i2 = 0; i2 < p->runs[2]; ++i2) {
                tp_copy_bytes(output + i0 * p->strides[0] + i1 * p->strides[1] + i2 * p->strides[2], input,
                              p->run);
                input += p->run;
            }
        }
    }
}

#endif /* TP_PAD_H */

/* Dot products of one weight row with the input, straight from the row's stored form: dense, bitmask
 * plus nonzero values, or look-up-table indices. Zero weights cost nothing in the compressed forms.
 * `taps` maps a row position to its input offset (NULL: the position itself). */
#ifndef TP_WEIGHTS_H
#define TP_WEIGHTS_H

#include "tp_kernels.h"

/* The formats the including kernel meets, as bits (1 << TP_DENSE ...): the kernel defines
 * TP_KERNEL_FORMATS as its line of the generated tp_config.h before including this file, so that code
 * for a format its model never uses is not compiled. A build of several models' kernels at once (the
 * tests' host runner) defines TP_EVERY_FORMAT instead. */
#ifdef TP_EVERY_FORMAT
#define TP_FORMATS 0xFFu
#else
#include "tp_config.h"
#define TP_FORMATS (TP_KERNEL_FORMATS)
#endif

/* Whether weights `w` are stored in format F (DENSE, BITMASK, LUT): a constant when the kernel meets
 * F never or only F. */
#define TP_IS(w, F) (((TP_FORMATS >> TP_##F) & 1u) && (TP_FORMATS == (1u << TP_##F) || (w)->format == TP_##F))

/* The row's dot product; `*nonzeros` walks the bitmask form's values row after row. */
static inline int32_t tp_row_dot(const tp_weights *w, int row, const int8_t **nonzeros,
                                 const int8_t *x, const uint16_t *taps)
{
    int32_t acc = 0;
    if (TP_IS(w, BITMASK)) {
        const uint32_t *mask = w->mask + (uint32_t)row * w->row_stride;
        const int8_t *value = *nonzeros;
        for (int word = 0; word < w->row_stride; ++word) {
            uint32_t bits = mask[word];
            /* shift the zeros before each nonzero out, then the nonzero's own bit */
            if (taps) {
                const uint16_t *tap = taps + word * 32;
                while (bits) {
                    const int skip = tp_leading_zeros(bits);
                    tap += skip;
                    bits = (bits << skip) << 1;
                    acc += (int32_t)*value++ * x[*tap++];
                }
            } else {
                const int8_t *input = x + word * 32;
                while (bits) {
                    const int skip = tp_leading_zeros(bits);
                    input += skip;
                    bits = (bits << skip) << 1;
                    acc += (int32_t)*value++ * *input++;
                }
            }
        }
        *nonzeros = value;
    } else if (TP_IS(w, LUT)) {
        const uint8_t *indices = w->indices + (uint32_t)row * w->row_stride;
        for (int position = 0; position < w->row_len; ++position) {
            const int32_t weight = w->values[tp_read_bits(indices, (uint32_t)position * w->index_bits,
                                                          w->index_bits)];
            if (weight) {
                acc += weight * x[taps ? taps[position] : position];
            }
        }
    } else if (taps) {
        const int8_t *weight = w->values + (uint32_t)row * w->row_len;
        for (int position = 0; position < w->row_len; ++position) {
            acc += (int32_t)weight[position] * x[taps[position]];
        }
    } else {
        acc = tp_dot(x, w->values + (uint32_t)row * w->row_len, w->row_len);
    }
    return acc;
}

/* A bitmask row's dot products with four windows at once (`x` and the next three, `step` bytes
 * apart): each nonzero weight is found once and used four times. */
static inline void tp_bitmask_row_dot4(const tp_weights *w, int row, const int8_t **nonzeros,
                                       const int8_t *x, uint32_t step, const uint16_t *taps,
                                       int32_t acc[4])
{
    const uint32_t *mask = w->mask + (uint32_t)row * w->row_stride;
    const int8_t *value = *nonzeros;
    const int8_t *x1 = x + step;
    const int8_t *x2 = x1 + step;
    const int8_t *x3 = x2 + step;
    int32_t acc0 = acc[0], acc1 = acc[1], acc2 = acc[2], acc3 = acc[3];
    for (uint32_t word = 0; word < w->row_stride; ++word) {
        uint32_t bits = mask[word];
        const uint16_t *tap = taps + word * 32u; /* inside the table: a word's first position is a row position */
        while (bits) {
            /* shift the zeros before the next nonzero out, then the nonzero's own bit */
            const int skip = tp_leading_zeros(bits);
            tap += skip;
            bits = (bits << skip) << 1;
            const uint32_t offset = *tap++;
            const int32_t weight = *value++;
            acc0 += weight * x[offset];
            acc1 += weight * x1[offset];
            acc2 += weight * x2[offset];
            acc3 += weight * x3[offset];
        }
    }
    *nonzeros = value;
    acc[0] = acc0;
    acc[1] = acc1;
    acc[2] = acc2;
    acc[3] = acc3;
}

/* A dense row through a tap table against four windows `step` bytes apart: for kernels whose rows
 * are too short for a contiguous dot product (few input channels). */
static inline void tp_dense_taps_dot4(const int8_t *w, int n, const int8_t *x, uint32_t step,
                                      const uint16_t *taps, int32_t acc[4])
{
    const int8_t *x1 = x + step;
    const int8_t *x2 = x1 + step;
    const int8_t *x3 = x2 + step;
    int32_t acc0 = acc[0], acc1 = acc[1], acc2 = acc[2], acc3 = acc[3];
    for (int i = 0; i < n; ++i) {
        const uint32_t offset = taps[i];
        const int32_t weight = w[i];
        acc0 += weight * x[offset];
        acc1 += weight * x1[offset];
        acc2 += weight * x2[offset];
        acc3 += weight * x3[offset];
    }
    acc[0] = acc0;
    acc[1] = acc1;
    acc[2] = acc2;
    acc[3] = acc3;
}

#endif /* TP_WEIGHTS_H */

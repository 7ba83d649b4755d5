/* Dot products of one weight row with the input, straight from the row's stored form (formats.py):
 * dense; sparse, with the nonzeros' positions as a bitmask or as gap codes and their values as int8 or
 * as table indices; or look-up-table indices for every position. Zero weights cost nothing in the
 * sparse forms. `taps` maps a row position to its input offset (NULL: the position itself). */
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

/* Whether weights `w` are stored in format F (DENSE, BITMASK, DELTA, LUT, BITMASK_LUT, DELTA_LUT): a
 * constant when the kernel meets F never or only F. */
#define TP_IS(w, F) (((TP_FORMATS >> TP_##F) & 1u) && (TP_FORMATS == (1u << TP_##F) || (w)->format == TP_##F))
/* positions as gap codes; values as table indices */
#define TP_IS_DELTA(w) (TP_IS(w, DELTA) || TP_IS(w, DELTA_LUT))
#define TP_IS_INDEXED(w) (TP_IS(w, BITMASK_LUT) || TP_IS(w, DELTA_LUT))

/* Where a sparse form's reading stands: kernels take one at the matrix's start (tp_cursor_start), hand
 * it to each row in turn, and keep a copy of a row's to read the row again. */
typedef struct {
    const int8_t *value; /* int8 nonzeros: the next one */
    uint32_t index;      /* table indices: the bit the next nonzero's index starts at */
    uint32_t code;       /* gap codes: the bit the next code starts at */
    int32_t position;    /* gap codes: the next nonzero's position, from the current row's start */
} tp_cursor;

/* Zeros before the next nonzero: escape codes (2^bits - 1 zeros each), then a smaller code read from
 * bit `*code` on. */
static inline int32_t tp_next_gap(const uint8_t *codes, unsigned bits, uint32_t *code)
{
    const unsigned escape = (1u << bits) - 1u;
    int32_t gap = 0;
    unsigned item;
    while ((item = tp_read_bits(codes, *code, bits)) == escape) {
        gap += (int32_t)escape;
        *code += bits;
    }
    *code += bits;
    return gap + (int32_t)item;
}

static inline tp_cursor tp_cursor_start(const tp_weights *w)
{
    tp_cursor cursor = {w->values, 0, 0, 0};
    if (TP_IS_DELTA(w)) {
        cursor.position = tp_next_gap(w->codes, w->code_bits, &cursor.code);
    }
    return cursor;
}

/* The next nonzero's value: int8, or through its index (from bit `*index` on) into the table. */
static inline int32_t tp_next_value(const tp_weights *w, const int8_t **value, uint32_t *index)
{
    if (TP_IS_INDEXED(w)) {
        const int32_t weight = w->values[tp_read_bits(w->indices, *index, w->index_bits)];
        *index += w->index_bits;
        return weight;
    }
    return *(*value)++;
}

/* acc[k] += weight * window k's input at `offset`, for the first `windows` (1 or 4) windows. */
static inline void tp_mac(int32_t acc[4], int windows, int32_t weight, const int8_t *const x[4], uint32_t offset)
{
    acc[0] += weight * x[0][offset];
    if (windows == 4) { /* spelt out: a loop would keep acc in memory */
        acc[1] += weight * x[1][offset];
        acc[2] += weight * x[2][offset];
        acc[3] += weight * x[3][offset];
    }
}

/* A bitmask row of int8 nonzeros (the fastest sparse form: a count-leading-zeros finds each nonzero)
 * against one window; `*nonzeros` walks the values row after row. */
static inline int32_t tp_bitmask_row_dot(const tp_weights *w, int row, const int8_t **nonzeros, const int8_t *x,
                                         const uint16_t *taps)
{
    const uint32_t *mask = w->mask + (uint32_t)row * w->row_stride;
    const int8_t *value = *nonzeros;
    int32_t acc = 0;
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
    return acc;
}

/* The same against four windows x[0..3]: each nonzero weight is found once and used four times. */
static inline void tp_bitmask_row_dot4(const tp_weights *w, int row, const int8_t **nonzeros,
                                       const int8_t *const x[4], const uint16_t *taps, int32_t acc[4])
{
    const uint32_t *mask = w->mask + (uint32_t)row * w->row_stride;
    const int8_t *value = *nonzeros;
    const int8_t *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
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
            acc0 += weight * x0[offset];
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

/* A sparse or LUT row's dot products with the first `windows` (1 or 4, a constant where inlined) of
 * windows x[0..3]: each nonzero is found once and used for every window. */
static inline void tp_sparse_row_dot(const tp_weights *w, int row, tp_cursor *cursor, const int8_t *const x[4],
                                     const uint16_t *taps, int windows, int32_t acc[4])
{
    const int8_t *value = cursor->value;
    uint32_t index = cursor->index;
    if (TP_IS(w, BITMASK)) {
        if (windows == 4) {
            tp_bitmask_row_dot4(w, row, &cursor->value, x, taps, acc);
        } else {
            acc[0] += tp_bitmask_row_dot(w, row, &cursor->value, x[0], taps);
        }
        return;
    }
    if (TP_IS(w, LUT)) {
        const uint8_t *indices = w->indices + (uint32_t)row * w->row_stride;
        for (int position = 0; position < w->row_len; ++position) {
            const int32_t weight = w->values[tp_read_bits(indices, (uint32_t)position * w->index_bits,
                                                          w->index_bits)];
            if (weight) {
                tp_mac(acc, windows, weight, x, taps ? taps[position] : (uint32_t)position);
            }
        }
    } else if (TP_IS_DELTA(w)) {
        const uint8_t *codes = w->codes;
        const unsigned bits = w->code_bits;
        uint32_t code = cursor->code;
        int32_t position = cursor->position;
        while (position < w->row_len) {
            tp_mac(acc, windows, tp_next_value(w, &value, &index), x, taps ? taps[position] : (uint32_t)position);
            position += 1 + tp_next_gap(codes, bits, &code);
        }
        cursor->position = position - w->row_len;
        cursor->code = code;
    } else if (TP_IS(w, BITMASK_LUT)) {
        const uint32_t *mask = w->mask + (uint32_t)row * w->row_stride;
        for (uint32_t word = 0; word < w->row_stride; ++word) {
            uint32_t bits = mask[word];
            uint32_t position = word * 32u;
            while (bits) {
                /* shift the zeros before the next nonzero out, then the nonzero's own bit */
                const int skip = tp_leading_zeros(bits);
                position += (uint32_t)skip;
                bits = (bits << skip) << 1;
                tp_mac(acc, windows, tp_next_value(w, &value, &index), x, taps ? taps[position] : position);
                ++position;
            }
        }
    }
    cursor->value = value;
    cursor->index = index;
}

/* The row's dot product with one window, in any format. */
static inline int32_t tp_row_dot(const tp_weights *w, int row, tp_cursor *cursor, const int8_t *x,
                                 const uint16_t *taps)
{
    int32_t acc[4] = {0, 0, 0, 0};
    if (TP_IS(w, DENSE)) {
        const int8_t *weight = w->values + (uint32_t)row * w->row_len;
        if (!taps) {
            return tp_dot(x, weight, w->row_len);
        }
        for (int position = 0; position < w->row_len; ++position) {
            acc[0] += (int32_t)weight[position] * x[taps[position]];
        }
    } else {
        const int8_t *const window[4] = {x, x, x, x};
        tp_sparse_row_dot(w, row, cursor, window, taps, 1, acc);
    }
    return acc[0];
}

/* A dense row through a tap table against four windows x[0..3]: for kernels whose rows are too short
 * for a contiguous dot product (few input channels). */
static inline void tp_dense_taps_dot4(const int8_t *w, int n, const int8_t *const x[4], const uint16_t *taps,
                                      int32_t acc[4])
{
    const int8_t *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    int32_t acc0 = acc[0], acc1 = acc[1], acc2 = acc[2], acc3 = acc[3];
    for (int i = 0; i < n; ++i) {
        const uint32_t offset = taps[i];
        const int32_t weight = w[i];
        acc0 += weight * x0[offset];
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

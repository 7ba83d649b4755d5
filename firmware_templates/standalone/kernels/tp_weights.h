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
#define TP_LUT4_ROWS 2
#else
#include "tp_config.h"
#define TP_FORMATS (TP_KERNEL_FORMATS)
/* The walk of table-indexed bitmask rows against one contiguous window that the kernel's line
 * TP_KERNEL_LUT4 of tp_config.h compiles: 1 every such row of the model has 4-bit indices (read two a
 * byte, tp_bitmask_lut4_row_dot), 0 none has, 2 some have (chosen per weight matrix, TP_IS_LUT4). */
#ifdef TP_KERNEL_LUT4
#define TP_LUT4_ROWS (TP_KERNEL_LUT4)
#else
#define TP_LUT4_ROWS 0
#endif
#endif

/* Whether weights `w` are stored in format F (DENSE, BITMASK, DELTA, LUT, BITMASK_LUT, DELTA_LUT): a
 * constant when the kernel meets F never or only F. */
#define TP_IS(w, F) (((TP_FORMATS >> TP_##F) & 1u) && (TP_FORMATS == (1u << TP_##F) || (w)->format == TP_##F))

/* Where a sparse form's reading stands: kernels take one at the matrix's start (tp_cursor_start), hand
 * it to each row in turn, and keep a copy of a row's to read the row again. */
typedef struct {
    const int8_t *value; /* bitmask: the next int8 nonzero */
    uint32_t index;      /* bitmask_lut: the bit the next nonzero's index starts at */
    uint32_t code;       /* delta*: the bit the entry after the next nonzero's starts at */
    int32_t position;    /* delta*: the next nonzero's position, from the current row's start */
    int32_t weight;      /* delta*: the next nonzero's value */
} tp_cursor;

/* 25 or more bits of a padded stream (formats.py STREAM_PADDING) from bit `bit` on, at the bottom: one
 * 32-bit load, little-endian as every Cortex-M runs. */
static inline uint32_t tp_peek(const uint8_t *stream, uint32_t bit)
{
    uint32_t window;
    memcpy(&window, stream + (bit >> 3), 4);
    return window >> (bit & 7u);
}

/* Moves a gap-code reader from bit `*bit` to the next nonzero: its position (from `*position`, the
 * previous one's) and its value, int8 or (`indexed`, a constant) through the table. Escape codes add
 * 2^bits - 1 zeros each and carry no value. */
static inline int32_t tp_delta_next(const tp_weights *w, int indexed, uint32_t *bit, int32_t *position)
{
    const uint32_t gap_bits = w->code_bits, escape = (1u << gap_bits) - 1u;
    uint32_t entry;
    while (((entry = tp_peek(w->codes, *bit)) & escape) == escape) {
        *bit += gap_bits;
        *position += (int32_t)escape;
    }
    *position += (int32_t)(entry & escape) + 1;
    entry >>= gap_bits;
    if (indexed) {
        *bit += gap_bits + w->index_bits;
        return w->values[entry & ((1u << w->index_bits) - 1u)];
    }
    *bit += gap_bits + 8u;
    return (int8_t)(entry & 0xFFu);
}

static inline tp_cursor tp_cursor_start(const tp_weights *w)
{
    tp_cursor cursor = {w->values, 0, 0, -1, 0};
    if (TP_IS(w, DELTA)) {
        cursor.weight = tp_delta_next(w, 0, &cursor.code, &cursor.position);
    } else if (TP_IS(w, DELTA_LUT)) {
        cursor.weight = tp_delta_next(w, 1, &cursor.code, &cursor.position);
    }
    return cursor;
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

/* The next nonzero's value: int8 (`*value`), or with `indexed` through its index (from bit `*index` on)
 * into the table. */
static inline int32_t tp_take_value(const tp_weights *w, int indexed, const int8_t **value, uint32_t *index)
{
    if (indexed) {
        const int32_t weight = w->values[tp_peek(w->indices, *index) & ((1u << w->index_bits) - 1u)];
        *index += w->index_bits;
        return weight;
    }
    return *(*value)++;
}

/* A bitmask row (a count-leading-zeros finds each nonzero) of int8 nonzeros or (`indexed`, a constant)
 * table indices, against one window. */
static inline int32_t tp_bitmask_row_dot(const tp_weights *w, int row, tp_cursor *cursor, int indexed,
                                         const int8_t *x, const tp_tap *taps)
{
    const uint32_t *mask = w->mask + (uint32_t)row * w->row_stride;
    const int8_t *value = cursor->value;
    uint32_t index = cursor->index;
    int32_t acc = 0;
    for (int word = 0; word < w->row_stride; ++word) {
        uint32_t bits = mask[word];
        /* shift the zeros before each nonzero out, then the nonzero's own bit */
        if (taps) {
            const tp_tap *tap = taps + word * 32;
            while (bits) {
                const int skip = tp_leading_zeros(bits);
                tap += skip;
                bits = (bits << skip) << 1;
                acc += tp_take_value(w, indexed, &value, &index) * x[*tap++];
            }
        } else {
            const int8_t *input = x + word * 32;
            while (bits) {
                const int skip = tp_leading_zeros(bits);
                input += skip;
                bits = (bits << skip) << 1;
                acc += tp_take_value(w, indexed, &value, &index) * *input++;
            }
        }
    }
    cursor->value = value;
    cursor->index = index;
    return acc;
}

/* The walks of a bitmask row against one contiguous window below are assembly where the core runs Thumb-2
 * (M3, M4, M7, M33) and the compiler takes GNU inline assembly: GCC's register allocation of the same C
 * loops costs one or two instructions more a nonzero. The C beside each is the walk elsewhere (M0+, the
 * host). Each nonzero's bit is cleared where it stands (clz, lsr, subs: no shifting of the mask or
 * stepping of the input). */
#if defined(__thumb2__) && defined(__GNUC__)
#define TP_THUMB2 1
#else
#define TP_THUMB2 0
#endif

/* acc plus a bitmask row of int8 nonzeros (from *value on, left after the row's last) against one
 * contiguous window x: 7 instructions a nonzero in the assembly. */
static TP_ALWAYS_INLINE int32_t tp_bitmask_int8_row_dot(const uint32_t *mask, const uint32_t *end,
                                                        const int8_t **value, const int8_t *x, int32_t acc)
{
    const int8_t *next = *value;
#if TP_THUMB2
    uint32_t bits, at, weight, input;
    __asm__("1: ldr %[bits], [%[mask]], #4\n"
            "   cbz %[bits], 3f\n"
            "2: clz %[at], %[bits]\n"
            "   lsr %[weight], %[top], %[at]\n"
            "   subs %[bits], %[bits], %[weight]\n"
            "   ldrsb %[weight], [%[next]], #1\n"
            "   ldrsb %[input], [%[x], %[at]]\n"
            "   mla %[acc], %[weight], %[input], %[acc]\n"
            "   bne 2b\n"
            "3: add %[x], %[x], #32\n"
            "   cmp %[mask], %[end]\n"
            "   bne 1b\n"
            : [mask] "+r"(mask), [next] "+r"(next), [x] "+r"(x), [acc] "+r"(acc), [bits] "=&l"(bits),
              [at] "=&r"(at), [weight] "=&r"(weight), [input] "=&r"(input)
            : [end] "r"(end), [top] "r"(0x80000000u)
            : "cc", "memory");
#else
    do { /* a row has a word at least */
        uint32_t bits = *mask++;
        while (bits) {
            const int at = tp_leading_zeros(bits);
            bits -= 0x80000000u >> at;
            acc += *next++ * x[at];
        }
        x += 32;
    } while (mask != end);
#endif
    *value = next;
    return acc;
}

/* Whether weights `w` walk as bitmask rows of 4-bit table indices (tp_bitmask_lut4_row_dot): TP_KERNEL_LUT4
 * says whether all, none or some of the kernel's table-indexed bitmask matrices have 4-bit indices. */
#define TP_IS_LUT4(w) (TP_IS(w, BITMASK_LUT) && (TP_LUT4_ROWS == 1 || (TP_LUT4_ROWS == 2 && (w)->index_bits == 4)))

/* Where a walk of 4-bit indices stands: the byte after the one last read, and that byte, plus 256 while
 * its high nibble is still to be taken. */
typedef struct {
    const uint8_t *next;
    uint32_t byte;
} tp_nibbles;

/* acc plus a bitmask row of 4-bit table indices (up to 16 values: the common clustered layer) against
 * one contiguous window x: a byte holds two nonzeros' indices, low nibble first. A word whose nonzeros
 * end on a byte's low nibble leaves its high one to the next word or row. 8.5 instructions a nonzero in
 * the assembly. */
static TP_ALWAYS_INLINE int32_t tp_bitmask_lut4_row_dot(const uint32_t *mask, const uint32_t *end,
                                                        const int8_t *table, tp_nibbles *nibbles,
                                                        const int8_t *x, int32_t acc)
{
    const uint8_t *next = nibbles->next;
    uint32_t byte = nibbles->byte, bits;
#if TP_THUMB2
    uint32_t at, value, input;
    /* 1: a word, from a byte's low nibble on; 2: its nonzero from the low nibble of a new byte; 6: from
     * the high one; 4, 5: the next word from a high nibble; 7, 8: the row's end in either state */
    __asm__("   tst %[byte], #256\n"
            "   bne 5f\n"
            "1: ldr %[bits], [%[mask]], #4\n"
            "   cbz %[bits], 3f\n"
            "2: ldrb %[byte], [%[next]], #1\n"
            "   clz %[at], %[bits]\n"
            "   lsr %[value], %[top], %[at]\n"
            "   subs %[bits], %[bits], %[value]\n"
            "   and %[value], %[byte], #15\n"
            "   ldrsb %[value], [%[table], %[value]]\n"
            "   ldrsb %[input], [%[x], %[at]]\n"
            "   mla %[acc], %[value], %[input], %[acc]\n"
            "   beq 4f\n"
            "6: clz %[at], %[bits]\n"
            "   lsr %[value], %[top], %[at]\n"
            "   subs %[bits], %[bits], %[value]\n"
            "   ubfx %[value], %[byte], #4, #4\n"
            "   ldrsb %[value], [%[table], %[value]]\n"
            "   ldrsb %[input], [%[x], %[at]]\n"
            "   mla %[acc], %[value], %[input], %[acc]\n"
            "   bne 2b\n"
            "3: add %[x], %[x], #32\n"
            "   cmp %[mask], %[end]\n"
            "   bne 1b\n"
            "   bic %[byte], %[byte], #256\n"
            "   b 8f\n"
            "4: add %[x], %[x], #32\n"
            "   cmp %[mask], %[end]\n"
            "   beq 7f\n"
            "5: ldr %[bits], [%[mask]], #4\n"
            "   cmp %[bits], #0\n"
            "   bne 6b\n"
            "   b 4b\n"
            "7: orr %[byte], %[byte], #256\n"
            "8:\n"
            : [mask] "+r"(mask), [next] "+r"(next), [byte] "+r"(byte), [x] "+r"(x), [acc] "+r"(acc),
              [bits] "=&l"(bits), [at] "=&r"(at), [value] "=&r"(value), [input] "=&r"(input)
            : [end] "r"(end), [table] "r"(table), [top] "r"(0x80000000u)
            : "cc", "memory");
#else
    do { /* a row has a word at least */
        bits = *mask++;
        int at;
        if (bits && (byte & 256u)) {
            goto high_nibble;
        }
        while (bits) {
            byte = *next++;
            at = tp_leading_zeros(bits);
            bits -= 0x80000000u >> at;
            acc += table[byte & 15u] * x[at];
            if (!bits) {
                byte |= 256u;
                break;
            }
        high_nibble:
            at = tp_leading_zeros(bits);
            bits -= 0x80000000u >> at;
            acc += table[(byte >> 4) & 15u] * x[at];
            byte &= 255u;
        }
        x += 32;
    } while (mask != end);
#endif
    nibbles->next = next;
    nibbles->byte = byte;
    return acc;
}

/* The same against four windows x[0..3]: each nonzero weight is found once and used four times. */
static inline void tp_bitmask_row_dot4(const tp_weights *w, int row, tp_cursor *cursor, int indexed,
                                       const int8_t *const x[4], const tp_tap *taps, int32_t acc[4])
{
    const uint32_t *mask = w->mask + (uint32_t)row * w->row_stride;
    const int8_t *value = cursor->value;
    uint32_t index = cursor->index;
    const int8_t *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    int32_t acc0 = acc[0], acc1 = acc[1], acc2 = acc[2], acc3 = acc[3];
    for (uint32_t word = 0; word < w->row_stride; ++word) {
        uint32_t bits = mask[word];
        const tp_tap *tap = taps + word * 32u; /* inside the table: a word's first position is a row position */
        while (bits) {
            /* shift the zeros before the next nonzero out, then the nonzero's own bit */
            const int skip = tp_leading_zeros(bits);
            tap += skip;
            bits = (bits << skip) << 1;
            const uint32_t offset = *tap++;
            const int32_t weight = tp_take_value(w, indexed, &value, &index);
            acc0 += weight * x0[offset];
            acc1 += weight * x1[offset];
            acc2 += weight * x2[offset];
            acc3 += weight * x3[offset];
        }
    }
    cursor->value = value;
    cursor->index = index;
    acc[0] = acc0;
    acc[1] = acc1;
    acc[2] = acc2;
    acc[3] = acc3;
}

/* A nonzero of a row as the convolutions read it again and again: its tap and its value. */
typedef struct {
    tp_tap offset;
    int8_t weight;
} tp_nonzero;

/* A bitmask row of 4-bit table indices (tp_bitmask_lut4_row_dot's layout) unpacked into `out`, its
 * nonzeros' taps and values in row order, for a kernel that reads the row for many windows: the walk
 * of mask and indices is paid once. Returns how many. */
static inline int tp_bitmask_lut4_row_unpack(const tp_weights *w, int row, tp_cursor *cursor,
                                             const tp_tap *taps, tp_nonzero *out)
{
    const uint32_t *mask = w->mask + (uint32_t)row * w->row_stride, *const end = mask + w->row_stride;
    const int8_t *table = w->values;
    const uint8_t *pair = w->indices + (cursor->index >> 3);
    uint32_t half = cursor->index & 4u; /* 4: the low nibble of *pair is taken */
    tp_nonzero *next = out;
    const tp_tap *tap = taps - 32;
    do { /* a row has a word at least */
        uint32_t bits = *mask++;
        int at;
        tap += 32; /* inside the table: a word's first position is a row position */
        if (!bits) {
            continue;
        }
        if (half) {
            goto high_nibble;
        }
        for (;;) {
            at = tp_leading_zeros(bits);
            bits -= 0x80000000u >> at;
            next->offset = tap[at];
            next++->weight = table[*pair & 15u];
            if (!bits) {
                half = 4u;
                break;
            }
        high_nibble:
            at = tp_leading_zeros(bits);
            bits -= 0x80000000u >> at;
            next->offset = tap[at];
            next++->weight = table[*pair++ >> 4];
            if (!bits) {
                half = 0;
                break;
            }
        }
    } while (mask != end);
    cursor->index = (uint32_t)(pair - w->indices) * 8u + half;
    return (int)(next - out);
}

/* A bitmask row of int8 nonzeros unpacked into `out` as tp_bitmask_lut4_row_unpack does. Returns how many. */
static inline int tp_bitmask_row_unpack(const tp_weights *w, int row, tp_cursor *cursor, const tp_tap *taps,
                                        tp_nonzero *out)
{
    const uint32_t *mask = w->mask + (uint32_t)row * w->row_stride, *const end = mask + w->row_stride;
    const int8_t *value = cursor->value;
    tp_nonzero *next = out;
    for (const tp_tap *word_taps = taps; mask != end; word_taps += 32) {
        uint32_t bits = *mask++;
        const tp_tap *tap = word_taps;
        while (bits) { /* shift the zeros before each nonzero out, then the nonzero's own bit */
            const int skip = tp_leading_zeros(bits);
            tap += skip;
            bits = (bits << skip) << 1;
            next->offset = *tap++;
            next++->weight = *value++;
        }
    }
    cursor->value = value;
    return (int)(next - out);
}

/* acc[k] += the unpacked row's dot product with window x[k], for the first `windows` (1 or 4, a
 * constant where inlined) windows. */
static inline void tp_nonzeros_dot(const tp_nonzero *nonzero, int count, const int8_t *const x[4], int windows,
                                   int32_t acc[4])
{
    const int8_t *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    int32_t acc0 = acc[0], acc1 = acc[1], acc2 = acc[2], acc3 = acc[3];
    for (const tp_nonzero *const end = nonzero + count; nonzero != end; ++nonzero) {
        const uint32_t offset = nonzero->offset;
        const int32_t weight = nonzero->weight;
        acc0 += weight * x0[offset];
        if (windows == 4) { /* spelt out, as in tp_mac, with the accumulators in registers */
            acc1 += weight * x1[offset];
            acc2 += weight * x2[offset];
            acc3 += weight * x3[offset];
        }
    }
    acc[0] = acc0;
    if (windows == 4) {
        acc[1] = acc1;
        acc[2] = acc2;
        acc[3] = acc3;
    }
}

/* A gap-coded row (values int8, or with `indexed` table indices; both constants where inlined) against
 * the first `windows` of x[0..3] (four: `taps` never NULL): the cursor holds the row's first nonzero,
 * decoded ahead, and is left holding the next row's. */
static inline void tp_delta_row_dot(const tp_weights *w, tp_cursor *cursor, int indexed, const int8_t *const x[4],
                                    const tp_tap *taps, int windows, int32_t acc[4])
{
    uint32_t bit = cursor->code;
    int32_t position = cursor->position, weight = cursor->weight;
    const int32_t row_len = w->row_len;
    while (position < row_len) {
        tp_mac(acc, windows, weight, x, windows == 4 || taps ? taps[position] : (uint32_t)position);
        weight = tp_delta_next(w, indexed, &bit, &position);
    }
    cursor->code = bit;
    cursor->position = position - row_len;
    cursor->weight = weight;
}

/* A sparse or LUT row's dot products with the first `windows` (1 or 4, a constant where inlined) of
 * windows x[0..3]: each nonzero is found once and used for every window. */
static inline void tp_sparse_row_dot(const tp_weights *w, int row, tp_cursor *cursor, const int8_t *const x[4],
                                     const tp_tap *taps, int windows, int32_t acc[4])
{
    if (TP_IS(w, BITMASK) || TP_IS(w, BITMASK_LUT)) {
        /* each value form its own loop: `indexed` a constant in both */
        const int indexed = !TP_IS(w, BITMASK);
        if (windows == 4 && indexed) {
            tp_bitmask_row_dot4(w, row, cursor, 1, x, taps, acc);
        } else if (windows == 4) {
            tp_bitmask_row_dot4(w, row, cursor, 0, x, taps, acc);
        } else if (indexed) {
            acc[0] += tp_bitmask_row_dot(w, row, cursor, 1, x[0], taps);
        } else {
            acc[0] += tp_bitmask_row_dot(w, row, cursor, 0, x[0], taps);
        }
        return;
    }
    if (TP_IS(w, DELTA)) {
        tp_delta_row_dot(w, cursor, 0, x, taps, windows, acc);
    } else if (TP_IS(w, DELTA_LUT)) {
        tp_delta_row_dot(w, cursor, 1, x, taps, windows, acc);
    } else if (TP_IS(w, LUT)) {
        const uint8_t *indices = w->indices + (uint32_t)row * w->row_stride;
        for (int position = 0; position < w->row_len; ++position) {
            const int32_t weight = w->values[tp_read_bits(indices, (uint32_t)position * w->index_bits,
                                                          w->index_bits)];
            if (weight) {
                tp_mac(acc, windows, weight, x, taps ? taps[position] : (uint32_t)position);
            }
        }
    }
}

/* The row's dot product with one window, in any format. */
static inline int32_t tp_row_dot(const tp_weights *w, int row, tp_cursor *cursor, const int8_t *x,
                                 const tp_tap *taps)
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
static inline void tp_dense_taps_dot4(const int8_t *w, int n, const int8_t *const x[4], const tp_tap *taps,
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

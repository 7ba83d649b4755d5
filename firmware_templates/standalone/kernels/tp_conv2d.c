/* CONV_2D, int8, per-channel: TFLM's reference ConvPerChannel on an input already padded with its
 * zero point (so every tap is inside and the input offset folds into the bias).
 *
 * With a fused MAX_POOL_2D (pool_h > 0) each stored output is the largest accumulator of the
 * pool_h x pool_w convolution outputs of its window, requantized once: the requantization is monotone
 * non-decreasing, so that equals the largest requantized output (ops.FusedPool has the argument), and
 * the requantization's clamp holds the pool's clamp too. Its output may sit inside the next
 * convolution's zero-point border (border_bytes > 0): the kernel writes the border too, so that no pad
 * step copies it. */
#define TP_KERNEL_FORMATS TP_CONV2D_FORMATS
#include "tp_weights.h"

/* One output channel's requantization: tp_arith.h's short form (the accumulator doubled, three
 * instructions and a clamp) where tp_config.h's TP_CONV2D_DOUBLED says every channel of the model's
 * convolutions takes it (1) or some do (2: decided per channel), TFLM's long form otherwise (0). Every
 * accumulator lies within the bias +- 128 * 128 a row position. */
typedef struct {
    tp_doubled_scale doubled;
    tp_channel_scale plain;
    int short_form;
} channel_scale;

static TP_ALWAYS_INLINE channel_scale scale_of(const tp_conv2d_params *p, const tp_requant *requant, int oc)
{
    channel_scale scale = {{0, 0, 1, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0}, 0};
    const int short_form = TP_CONV2D_DOUBLED && tp_doubled_scale_of(
        requant, oc, tp_accumulator_bound(p->bias[oc], p->weights.row_len, 128 * 128), &scale.doubled);
    scale.short_form = TP_CONV2D_DOUBLED == 1 || short_form;
    if (!scale.short_form) {
        scale.plain = tp_channel(requant, oc);
    }
    return scale;
}

static TP_ALWAYS_INLINE int8_t requantize(const channel_scale *scale, int32_t acc)
{
    return scale->short_form ? tp_scale_doubled(&scale->doubled, 2 * acc) : tp_scale(&scale->plain, acc);
}

/* Dense rows: kernel rows of kernel_w x in_c contiguous bytes (one run when dilation_w is 1). */
static int32_t dense_window_dot(const tp_conv2d_params *p, const int8_t *window, const int8_t *row)
{
    int32_t acc = 0;
    const int run = p->dilation_w == 1 ? p->kernel_w * p->in_c : p->in_c;
    const int runs = p->dilation_w == 1 ? 1 : p->kernel_w;
    for (int ky = 0; ky < p->kernel_h; ++ky) {
        const int8_t *x = window + (uint32_t)ky * p->dilation_h * p->in_w * p->in_c;
        for (int r = 0; r < runs; ++r) {
            acc += tp_dot(x + (uint32_t)r * p->dilation_w * p->in_c, row, run);
            row += run;
        }
    }
    return acc;
}

/* Dense rows against four windows x[0..3], two at a time: kernel rows of kernel_w x in_c contiguous
 * bytes. Window 1 never lies before window 0, nor 3 before 2. */
static void dense_window_dot4(const tp_conv2d_params *p, const int8_t *const x[4], const int8_t *row, int32_t acc[4])
{
    const int run = p->dilation_w == 1 ? p->kernel_w * p->in_c : p->in_c;
    const int runs = p->dilation_w == 1 ? 1 : p->kernel_w;
    const uint32_t first_step = (uint32_t)(x[1] - x[0]), second_step = (uint32_t)(x[3] - x[2]);
    for (int ky = 0; ky < p->kernel_h; ++ky) {
        for (int r = 0; r < runs; ++r) {
            const uint32_t at = ((uint32_t)ky * p->dilation_h * p->in_w + (uint32_t)r * p->dilation_w) * p->in_c;
            tp_dot2(x[0] + at, first_step, row, run, acc);
            tp_dot2(x[2] + at, second_step, row, run, acc + 2);
            row += run;
        }
    }
}

/* A dense row `oc` against four windows x[0..3], through the tap table or kernel row by kernel row. */
static void dense_dot4(const tp_conv2d_params *p, int oc, const int8_t *const x[4], int32_t acc[4])
{
    const int8_t *row = p->weights.values + (uint32_t)oc * p->weights.row_len;
    if (p->taps) {
        tp_dense_taps_dot4(row, p->weights.row_len, x, p->taps, acc);
    } else {
        dense_window_dot4(p, x, row, acc);
    }
}

/* Whether a kernel loop unpacks each row of `w` once for all its windows (tp_weights.h's
 * tp_bitmask_row_unpack, tp_bitmask_lut4_row_unpack): bitmask rows of int8 or of 4-bit table indices,
 * where the model's convolutions have such rows (tp_config.h: TP_CONV2D_UNPACKED, the most nonzeros of
 * such a row; TP_CONV2D_LUT4 1 when every bitmask_lut row of the kernel has 4-bit indices, 2 when some
 * have). */
#define UNPACKED(w) (TP_CONV2D_UNPACKED && (TP_IS(w, BITMASK) || \
    (TP_IS(w, BITMASK_LUT) && (TP_CONV2D_LUT4 == 1 || (w)->index_bits == 4))))

/* Row `oc` unpacked into `nonzeros` where UNPACKED (returns how many), else 0. */
static TP_ALWAYS_INLINE int unpack(const tp_conv2d_params *p, const tp_weights *weights, int oc, tp_cursor *cursor,
                                   tp_nonzero *nonzeros)
{
    if (!UNPACKED(weights)) {
        return 0;
    }
    return TP_IS(weights, BITMASK) ? tp_bitmask_row_unpack(weights, oc, cursor, p->taps, nonzeros)
                                   : tp_bitmask_lut4_row_unpack(weights, oc, cursor, p->taps, nonzeros);
}

/* acc[k] += weight row `oc` . window x[k] for four windows, in any format: from the row's `count`
 * `nonzeros` where it is unpacked (`unpacked`, UNPACKED or 0), else from its stored form at `cursor`. */
static TP_ALWAYS_INLINE void window_dot4(const tp_conv2d_params *p, const tp_weights *weights, int oc,
                                         tp_cursor *cursor, int unpacked, const tp_nonzero *nonzeros, int count,
                                         const int8_t *const x[4], int32_t acc[4])
{
    if (unpacked) {
        tp_nonzeros_dot(nonzeros, count, x, 4, acc);
    } else if (!TP_IS(weights, DENSE)) {
        tp_sparse_row_dot(weights, oc, cursor, x, p->taps, 4, acc);
    } else {
        dense_dot4(p, oc, x, acc);
    }
}

/* The largest accumulator of weight row `oc` (its `count` `nonzeros` where unpacked, else from
 * `row_cursor`) over four windows, `first` + at[0..3]. */
static TP_ALWAYS_INLINE int32_t largest_of4(const tp_conv2d_params *p, const tp_weights *weights, int oc,
                                            tp_cursor *cursor, tp_cursor row_cursor, const tp_nonzero *nonzeros,
                                            int count, int32_t bias, const int8_t *first, const uint32_t *at)
{
    const int8_t *const x[4] = {first + at[0], first + at[1], first + at[2], first + at[3]};
    int32_t acc[4] = {bias, bias, bias, bias};
    *cursor = row_cursor;
    window_dot4(p, weights, oc, cursor, UNPACKED(weights), nonzeros, count, x, acc);
    const int32_t a = acc[0] > acc[1] ? acc[0] : acc[1];
    const int32_t b = acc[2] > acc[3] ? acc[2] : acc[3];
    return a > b ? a : b;
}

/* With a fused pool: each output channel's pooled outputs, their pool_h x pool_w windows four at a time
 * (`offset`: each window from the first, padded to a multiple of four by repeating the last, which
 * cannot change the largest accumulator). */
static TP_NOINLINE void pooled(const tp_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const uint32_t row_step = (uint32_t)p->stride_h * p->in_w * p->in_c;
    const uint32_t column_step = (uint32_t)p->stride_w * p->in_c;
    const int members = p->pool_h * p->pool_w, out_c = p->out_c;
    uint32_t offset[TP_CONV2D_POOL_MEMBERS + 3];
    for (int m = 0; m < members + 3; ++m) {
        const int member = m < members ? m : members - 1;
        offset[m] = (uint32_t)(member / p->pool_w) * row_step + (uint32_t)(member % p->pool_w) * column_step;
    }
    const uint32_t pool_row_step = p->pool_h * row_step, pool_column_step = p->pool_w * column_step;
    const tp_weights weights = p->weights;
    if (p->border_bytes) { /* the output inside the next convolution's padded input: its border first */
        tp_fill_bytes(output, p->border_value, p->border_bytes);
        output += p->border_offset;
    }
    const uint32_t out_row_step = (uint32_t)p->out_w * out_c + p->border_gap;
    const int out_h = p->out_h, out_w = p->out_w; /* read once: the int8 stores below could alias *p */
    const tp_requant requant = p->requant;
    tp_cursor cursor = tp_cursor_start(&weights);
    tp_nonzero nonzeros[TP_CONV2D_UNPACKED ? TP_CONV2D_UNPACKED : 1];
    for (int oc = 0; oc < out_c; ++oc) {
        const channel_scale scale = scale_of(p, &requant, oc);
        const int32_t bias = p->bias[oc];
        const int count = unpack(p, &weights, oc, &cursor, nonzeros);
        const tp_cursor row_cursor = cursor;
        for (int py = 0; py < out_h; ++py) {
            const int8_t *first = input + py * pool_row_step;
            int8_t *out = output + (uint32_t)py * out_row_step + oc;
            for (int px = 0; px < out_w; ++px, first += pool_column_step, out += out_c) {
                int32_t largest = largest_of4(p, &weights, oc, &cursor, row_cursor, nonzeros, count, bias, first,
                                              offset);
                /* windows of more than four outputs (compiled only where the model has one) */
                for (int m = 4; m < TP_CONV2D_POOL_MEMBERS && m < members; m += 4) {
                    const int32_t more = largest_of4(p, &weights, oc, &cursor, row_cursor, nonzeros, count, bias,
                                                     first, offset + m);
                    largest = largest > more ? largest : more;
                }
                *out = requantize(&scale, largest);
            }
        }
    }
}

/* A pointwise convolution writing over its input (ops.py: out_c <= in_c, so output pixel k's bytes lie
 * within input pixels 0..k): four pixels at a time, every channel of them into `staged` (4 x out_c
 * bytes) and then over their input, which no later pixel reads. */
static TP_NOINLINE void in_place_pointwise(const tp_conv2d_params *p, int8_t *staged, int8_t *data)
{
    const tp_weights weights = p->weights;
    const uint32_t in_c = p->in_c, out_c = p->out_c;
    for (int first = 0; first < p->out_w; first += 4) {
        /* a last, partial four repeats its last pixel */
        const int last = p->out_w - first < 4 ? p->out_w - first - 1 : 3;
        const int8_t *window = data + (uint32_t)first * in_c;
        const int8_t *const x[4] = {window, window + (uint32_t)(last < 1 ? last : 1) * in_c,
                                    window + (uint32_t)(last < 2 ? last : 2) * in_c, window + (uint32_t)last * in_c};
        tp_cursor cursor = tp_cursor_start(&weights);
        for (uint32_t oc = 0; oc < out_c; ++oc) {
            const channel_scale scale = scale_of(p, &p->requant, (int)oc);
            const int32_t bias = p->bias[oc];
            int32_t acc[4] = {bias, bias, bias, bias};
            window_dot4(p, &weights, (int)oc, &cursor, 0, 0, 0, x, acc);
            for (int k = 0; k < 4; ++k) {
                if (k <= last) {
                    staged[(uint32_t)k * out_c + oc] = requantize(&scale, acc[k]);
                }
            }
        }
        tp_copy_bytes(data + (uint32_t)first * out_c, staged, (uint32_t)(last + 1) * out_c);
    }
}

void tp_conv2d(const tp_conv2d_params *p, const int8_t *input, int8_t *scratch, int8_t *output)
{
    if (TP_CONV2D_POOLED && (p->pool_h || !TP_CONV2D_PLAIN)) {
        pooled(p, input, output);
        return;
    }
    if (TP_CONV2D_IN_PLACE && output == input) { /* only a pointwise convolution is given its input as output */
        in_place_pointwise(p, scratch, output);
        return;
    }
    const uint32_t row_step = (uint32_t)p->stride_h * p->in_w * p->in_c;
    const uint32_t column_step = (uint32_t)p->stride_w * p->in_c;
    const tp_weights weights = p->weights;
    const tp_requant requant = p->requant;
    const int out_c = p->out_c;
    const int out_w = p->out_w;
    /* four neighbouring output pixels at a time: each weight read (or nonzero found) once for four */
    const int block_end = out_w - out_w % 4;
    tp_cursor cursor = tp_cursor_start(&weights);
    tp_nonzero nonzeros[TP_CONV2D_UNPACKED ? TP_CONV2D_UNPACKED : 1];
    for (int oc = 0; oc < out_c; ++oc) {
        const channel_scale scale = scale_of(p, &requant, oc);
        const int32_t bias = p->bias[oc];
        /* a dense row; the compressed forms find their rows through mask, indices or `cursor` */
        const int8_t *row = TP_IS(&weights, DENSE) ? weights.values + (uint32_t)oc * weights.row_len
                                                       : weights.values;
        const int count = unpack(p, &weights, oc, &cursor, nonzeros);
        const tp_cursor row_cursor = cursor;
        for (int oy = 0; oy < p->out_h; ++oy) {
            /* output pixel ox of this row is out[ox * out_c] (an index, never a pointer past the end) */
            int8_t *out = output + (uint32_t)oy * out_w * out_c + oc;
            int ox = 0;
            for (; ox < block_end; ox += 4) {
                const int8_t *window = input + oy * row_step + ox * column_step;
                const int8_t *const x[4] = {window, window + column_step, window + 2 * column_step,
                                            window + 3 * column_step};
                int32_t acc[4] = {bias, bias, bias, bias};
                cursor = row_cursor;
                window_dot4(p, &weights, oc, &cursor, UNPACKED(&weights), nonzeros, count, x, acc);
                for (int k = 0; k < 4; ++k) {
                    out[(uint32_t)(ox + k) * out_c] = requantize(&scale, acc[k]);
                }
            }
            for (; ox < out_w; ++ox) {
                const int8_t *window = input + oy * row_step + ox * column_step;
                cursor = row_cursor;
                int32_t acc[4] = {bias};
                if (UNPACKED(&weights)) {
                    const int8_t *const x[4] = {window, window, window, window};
                    tp_nonzeros_dot(nonzeros, count, x, 1, acc);
                } else {
                    acc[0] += TP_IS(&weights, DENSE) && !p->taps ? dense_window_dot(p, window, row)
                                                                 : tp_row_dot(&weights, oc, &cursor, window, p->taps);
                }
                out[(uint32_t)ox * out_c] = requantize(&scale, acc[0]);
            }
        }
    }
}

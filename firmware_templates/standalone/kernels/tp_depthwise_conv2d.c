/* DEPTHWISE_CONV_2D, int8, per-channel: TFLM's reference DepthwiseConvPerChannel.
 *
 * Dense weights (a row of taps per output channel) go an input channel at a time, two with depth
 * multiplier 1: each is copied into scratch as a plane of int16 with its padding (the input zero point)
 * around it, so every window lies inside, the input offset of every tap folds into the bias and two
 * horizontally neighbouring pixels are one 32-bit word, which one SMLAD multiplies with a pair of taps
 * packed the same way. Once copied, the channels are dead: the output may be the input itself (depth
 * multiplier 1). A channel's outputs go a line at a time (a column, or a row when rows are longer),
 * their accumulators kept on the stack and requantized together; held doubled wherever the scale takes
 * tp_scale_doubled's short form, else through tp_scale. 3x3 windows go two output rows a pass, the
 * middle input rows serving both; other windows walk a table of tap pairs, two outputs a pass.
 * Pruned or clustered weights (bitmask or LUT rows) multiply only their nonzero taps: with depth
 * multiplier 1 and whole blocks of four channels staged a block at a time as bytes, else pixel by pixel. */
#include <string.h>

#define TP_KERNEL_FORMATS TP_DEPTHWISE_CONV2D_FORMATS
#include "tp_weights.h"

/* A 3x3 window read without dilation across: the two-rows-a-pass path. */
static int three_by_three(const tp_depthwise_conv2d_params *p)
{
    return p->kernel_h == 3 && p->kernel_w == 3 && p->dilation_w == 1;
}

/* Input channels ic and ic + 1 (`count` of them: 1 or 2) written into the insides of their planes;
 * the borders keep the zero point written once. */
static void stage_channels(const tp_depthwise_conv2d_params *p, const int8_t *input, int ic, int count,
                           int16_t *plane, uint32_t plane_size)
{
    const uint32_t in_c = p->in_c, row_bytes = (uint32_t)p->in_w * in_c, skip = (uint32_t)p->padded_w - p->in_w;
    int16_t *to = plane + (uint32_t)p->pad_top * p->padded_w + p->pad_left;
    const int8_t *from = input + ic;
    const int8_t *const end = from + (uint32_t)p->in_h * row_bytes;
    for (; from != end; to += skip) {
        const int8_t *const row_end = from + row_bytes;
        if (count == 2) {
            for (; from != row_end; from += in_c, ++to) {
                to[0] = from[0];
                to[plane_size] = from[1];
            }
        } else {
            for (; from != row_end; from += in_c, ++to) {
                to[0] = from[0];
            }
        }
    }
}

/* A pair of int16 pixels as one word, the first in the low half. */
static inline int32_t pixel_pair(const int16_t *x)
{
    int32_t pair;
    memcpy(&pair, x, 4);
    return pair;
}

/* Two taps packed as int16 halves, the first low. */
static inline int32_t tap_pair(int32_t low, int32_t high)
{
    return (int32_t)((uint32_t)(uint16_t)low | (uint32_t)(uint16_t)high << 16);
}

/* acc + x[0] * w.low + x[1] * w.high (16-bit halves of w). */
static inline int32_t mac_pair(const int16_t *x, int32_t w, int32_t acc)
{
#if TP_SIMD32
    return tp_smlad(pixel_pair(x), w, acc);
#else
    return acc + x[0] * (int16_t)(w & 0xFFFF) + x[1] * (w >> 16);
#endif
}

/* acc + x * w.low, x a pixel already loaded. */
static inline int32_t mac_low(int32_t x, int32_t w, int32_t acc)
{
#if TP_SIMD32
    return tp_smlabb(x, w, acc);
#else
    return acc + x * (int16_t)(w & 0xFFFF);
#endif
}

/* acc + x * w.high, x a pixel already loaded. */
static inline int32_t mac_high(int32_t x, int32_t w, int32_t acc)
{
#if TP_SIMD32
    return tp_smlabt(x, w, acc);
#else
    return acc + x * (w >> 16);
#endif
}

/* acc + one kernel row of three taps at x: the first two the pair w01, the third in the low half of
 * `third`, or in its high half when `high` (a constant where it is called). */
static TP_ALWAYS_INLINE int32_t row3(const int16_t *x, int32_t w01, int32_t third, int high, int32_t acc)
{
    acc = mac_pair(x, w01, acc);
    return high ? mac_high(x[2], third, acc) : mac_low(x[2], third, acc);
}

/* A 3x3 window's taps and bias, each times 2, in six words: the first two taps of rows 0, 1, 2 as
 * pairs; the third taps of rows 0 and 1 as one pair; the third tap of row 2; the bias with the input
 * offset of every tap folded in. Five words of taps leave the registers a pass needs. */
enum { TP_ROW0, TP_ROW1, TP_ROW2, TP_THIRD01, TP_THIRD2, TP_BIAS, TP_PACKED3X3 };

static void pack3x3(const tp_depthwise_conv2d_params *p, int oc, int32_t packed[TP_PACKED3X3])
{
    const int8_t *w = p->weights.values + (uint32_t)oc * p->weights.row_len;
    int32_t sum = 0;
    for (int tap = 0; tap < 9; ++tap) {
        sum += w[tap];
    }
    packed[TP_ROW0] = tap_pair(2 * w[0], 2 * w[1]);
    packed[TP_ROW1] = tap_pair(2 * w[3], 2 * w[4]);
    packed[TP_ROW2] = tap_pair(2 * w[6], 2 * w[7]);
    packed[TP_THIRD01] = tap_pair(2 * w[2], 2 * w[5]);
    packed[TP_THIRD2] = tap_pair(2 * w[8], 0);
    packed[TP_BIAS] = (p->bias[oc] + p->input_offset * sum) * 2;
}

/* One output pixel of a 3x3 window at x (kernel rows `row_step` pixels apart), from packed taps. */
static TP_ALWAYS_INLINE int32_t window3x3(const int16_t *x, uint32_t row_step, int32_t row0, int32_t row1,
                                          int32_t row2, int32_t third01, int32_t third2, int32_t bias)
{
    const int32_t top = row3(x, row0, third01, 0, bias);
    return row3(x + 2 * row_step, row2, third2, 0, row3(x + row_step, row1, third01, 1, top));
}

/* The inner loops below are functions of their own (TP_NOINLINE): inlined into the channel loop, they
 * would share its registers and spill the taps.
 *
 * The doubled accumulators of output rows 0 .. count - 1 of `columns` columns, the first column's window
 * corner at x, the next `column_step` pixels on; stride_h and dilation_h 1: two output rows a pass read
 * four input rows, the middle two for both. */
static TP_NOINLINE void column3x3_unit(const int16_t *x, uint32_t padded_w, const int32_t packed[TP_PACKED3X3],
                                       int32_t *acc, int count, int columns, uint32_t column_step)
{
    const int32_t row0 = packed[TP_ROW0], row1 = packed[TP_ROW1], row2 = packed[TP_ROW2];
    const int32_t third01 = packed[TP_THIRD01], third2 = packed[TP_THIRD2], bias = packed[TP_BIAS];
    for (int column = 0; column < columns; ++column) {
        const int16_t *y = x + column * column_step;
        for (int32_t *end = acc + (count & ~1); acc != end; acc += 2) {
            /* one pointer walks down the four rows and ends on the next pass's first */
            int32_t acc0 = row3(y, row0, third01, 0, bias);
            y += padded_w;
            int32_t acc1 = row3(y, row0, third01, 0, bias);
            acc0 = row3(y, row1, third01, 1, acc0);
            y += padded_w;
            acc1 = row3(y, row1, third01, 1, acc1);
            acc[0] = row3(y, row2, third2, 0, acc0);
            y += padded_w;
            acc[1] = row3(y, row2, third2, 0, acc1);
            y -= padded_w;
        }
        if (count & 1) {
            *acc++ = window3x3(y, padded_w, row0, row1, row2, third01, third2, bias);
        }
    }
}

/* The same for any stride_h and dilation_h: output row 2i + 1's window starts `second` pixels after
 * row 2i's, kernel rows `row_step` pixels apart. */
static TP_NOINLINE void column3x3_any(const int16_t *x, uint32_t second, uint32_t row_step,
                                      const int32_t packed[TP_PACKED3X3], int32_t *acc, int count, int columns,
                                      uint32_t column_step)
{
    const int32_t row0 = packed[TP_ROW0], row1 = packed[TP_ROW1], row2 = packed[TP_ROW2];
    const int32_t third01 = packed[TP_THIRD01], third2 = packed[TP_THIRD2], bias = packed[TP_BIAS];
    for (int column = 0; column < columns; ++column) {
        const int16_t *y = x + column * column_step;
        for (int32_t *end = acc + count; acc != end; ++acc, y += second) {
            *acc = window3x3(y, row_step, row0, row1, row2, third01, third2, bias);
        }
    }
}

/* The same for any window: `table` holds a pair of taps and the offset of its first pixel from the
 * window's corner per entry; two output rows a pass, each pair of taps loaded once for both. */
static TP_NOINLINE void column_any(const int16_t *x, uint32_t second, const int32_t *table, const int32_t *table_end,
                                   int32_t bias, int32_t *acc, int count, int columns, uint32_t column_step)
{
    for (int column = 0; column < columns; ++column) {
        const int16_t *y = x + column * column_step;
        for (int32_t *end = acc + (count & ~1); acc != end; acc += 2, y += 2 * second) {
            const int16_t *z = y + second;
            int32_t acc0 = bias, acc1 = bias;
            for (const int32_t *entry = table; entry != table_end; entry += 2) {
                acc0 = mac_pair(y + entry[1], entry[0], acc0);
                acc1 = mac_pair(z + entry[1], entry[0], acc1);
            }
            acc[0] = acc0;
            acc[1] = acc1;
        }
        if (count & 1) {
            int32_t acc0 = bias;
            for (const int32_t *entry = table; entry != table_end; entry += 2) {
                acc0 = mac_pair(y + entry[1], entry[0], acc0);
            }
            *acc++ = acc0;
        }
    }
}

/* Accumulators of this many output pixels are kept before they are requantized (on the stack). */
#define TP_DEPTHWISE_CHUNK 128

/* `columns` lines of `count` doubled accumulators each requantized, clamped and stored: line c's
 * to[c * out_c], to[c * out_c + out_row], ... Two at a time: SSAT is the whole clamp when the activation
 * leaves the int8 range as it is, else a 16-bit max and min of both at once. */
static TP_ALWAYS_INLINE void store_doubled(const tp_doubled_scale *scale, const int32_t *acc, int count, int columns,
                                      int8_t *to, uint32_t out_c, uint32_t out_row)
{
#if TP_SIMD32
    const int32_t multiplier = scale->multiplier, rounding = scale->rounding, r = scale->right_shift;
    const uint32_t low = (uint16_t)scale->activation_min * 0x10001u, high = (uint16_t)scale->activation_max * 0x10001u;
    const uint32_t pairs = (uint32_t)count / 2;
    if (scale->activation_min == INT8_MIN && scale->activation_max == INT8_MAX) {
        for (int column = 0; column < columns; ++column, to += out_c) {
            int8_t *out = to;
            for (const int32_t *end = acc + 2 * pairs; acc != end; acc += 2, out += 2 * out_row) {
                const int32_t v0 = (tp_smmlar(acc[0], multiplier, rounding) - (int32_t)((uint32_t)acc[0] >> 31)) >> r;
                const int32_t v1 = (tp_smmlar(acc[1], multiplier, rounding) - (int32_t)((uint32_t)acc[1] >> 31)) >> r;
                out[0] = (int8_t)tp_ssat8(v0);
                out[out_row] = (int8_t)tp_ssat8(v1);
            }
            if (count & 1) {
                *out = tp_scale_doubled(scale, *acc++);
            }
        }
    } else {
        for (int column = 0; column < columns; ++column, to += out_c) {
            int8_t *out = to;
            for (const int32_t *end = acc + 2 * pairs; acc != end; acc += 2, out += 2 * out_row) {
                const int32_t v0 = (tp_smmlar(acc[0], multiplier, rounding) - (int32_t)((uint32_t)acc[0] >> 31)) >> r;
                const int32_t v1 = (tp_smmlar(acc[1], multiplier, rounding) - (int32_t)((uint32_t)acc[1] >> 31)) >> r;
                const uint32_t both = tp_min_s16x2(tp_max_s16x2(tp_pkhbt(tp_ssat8(v0), tp_ssat8(v1)), low), high);
                out[0] = (int8_t)both;
                out[out_row] = (int8_t)(both >> 16);
            }
            if (count & 1) {
                *out = tp_scale_doubled(scale, *acc++);
            }
        }
    }
#else
    for (int column = 0; column < columns; ++column, to += out_c) {
        int8_t *out = to;
        for (int i = 0; i < count; ++i, out += out_row) {
            *out = tp_scale_doubled(scale, *acc++);
        }
    }
#endif
}

/* The same for plain accumulators, through tp_scale. */
static void store_plain(const tp_channel_scale *scale, const int32_t *acc, int count, int columns, int8_t *to,
                        uint32_t out_c, uint32_t out_row)
{
    for (int column = 0; column < columns; ++column, to += out_c) {
        int8_t *out = to;
        for (int i = 0; i < count; ++i, out += out_row) {
            *out = tp_scale(scale, *acc++);
        }
    }
}

/* Output channel `oc`'s taps as a table for column_any (a pair of taps, then its first pixel's offset
 * from the window's corner): neighbours two by two, a last odd tap paired with the zero before it, or
 * with dilation one tap an entry, paired with the zero beside it inside the window; taps and the
 * returned bias (its input offset folded in) times `factor`. One-tap-wide windows read the pixel after
 * theirs (the plane's spare pixel). */
static int32_t pack_table(const tp_depthwise_conv2d_params *p, int oc, int32_t factor, int32_t *table)
{
    const int kernel_w = p->kernel_w, dilation = p->dilation_w;
    const uint32_t row_step = (uint32_t)p->dilation_h * p->padded_w;
    const int8_t *row = p->weights.values + (uint32_t)oc * p->weights.row_len;
    int32_t sum = 0;
    for (int ky = 0; ky < p->kernel_h; ++ky, row += kernel_w) {
        for (int kx = 0; kx < kernel_w;) {
            int32_t low, high, first;
            if (dilation == 1 && kx + 1 < kernel_w) { /* two neighbours */
                low = row[kx], high = row[kx + 1], first = kx;
                kx += 2;
            } else if (kx == 0) { /* a one-tap row, or the first of a dilated row: the pixel after is inside */
                low = row[0], high = 0, first = 0;
                kx += 1;
            } else { /* the pixel before is inside */
                low = 0, high = row[kx], first = kx * dilation - 1;
                kx += 1;
            }
            sum += low + high;
            *table++ = tap_pair(low * factor, high * factor);
            *table++ = (int32_t)(ky * row_step) + first;
        }
    }
    return (p->bias[oc] + p->input_offset * sum) * factor;
}

/* Entries pack_table writes for a window. */
static uint32_t table_entries(const tp_depthwise_conv2d_params *p)
{
    const uint32_t per_row = p->dilation_w == 1 ? ((uint32_t)p->kernel_w + 1) / 2 : p->kernel_w;
    return per_row * p->kernel_h;
}

/* How a channel's outputs are computed: kernel functions above. */
enum { TP_UNIT3X3, TP_ANY3X3, TP_ANY_WINDOW };

/* One output channel from its plane, a line of outputs after another (down the columns for
 * column3x3_unit, else along the longer side), as many whole lines (or parts of one) as
 * TP_DEPTHWISE_CHUNK accumulators hold, then requantized together: doubled in the short form, else
 * (doubled 0) plain through tp_scale. `weights`: pack3x3's words, or pack_table's entries up to
 * table_end and their bias. */
static TP_NOINLINE void channel_lines(const tp_depthwise_conv2d_params *p, const int16_t *plane, int kind,
                                      const int32_t *weights, const int32_t *table_end, int32_t bias,
                                      const tp_doubled_scale *doubled, const tp_channel_scale *plain, int8_t *out)
{
    const uint32_t padded_w = p->padded_w, out_c = p->out_c, out_row = (uint32_t)p->out_w * out_c;
    const uint32_t row_step = (uint32_t)p->dilation_h * padded_w, down = (uint32_t)p->stride_h * padded_w;
    const int across_rows = kind != TP_UNIT3X3 && p->out_w > p->out_h;
    /* a line: `length` outputs `along` pixels apart in the plane, `out_along` bytes in the output */
    const int length = across_rows ? p->out_w : p->out_h, lines = across_rows ? p->out_h : p->out_w;
    const uint32_t along = across_rows ? p->stride_w : down, out_along = across_rows ? out_c : out_row;
    const uint32_t next = across_rows ? down : p->stride_w, out_next = across_rows ? out_row : out_c;
    const int lines_a_chunk = length >= TP_DEPTHWISE_CHUNK ? 1 : TP_DEPTHWISE_CHUNK / length;
    int32_t chunk[TP_DEPTHWISE_CHUNK];
    for (int line = 0; line < lines; line += lines_a_chunk) {
        const int count_lines = lines - line < lines_a_chunk ? lines - line : lines_a_chunk;
        const int16_t *x = plane + (uint32_t)line * next;
        int8_t *to = out + (uint32_t)line * out_next;
        for (int first = 0; first < length; first += TP_DEPTHWISE_CHUNK) {
            const int count = length - first < TP_DEPTHWISE_CHUNK ? length - first : TP_DEPTHWISE_CHUNK;
            if (kind == TP_UNIT3X3) {
                column3x3_unit(x, padded_w, weights, chunk, count, count_lines, next);
            } else if (kind == TP_ANY3X3) {
                column3x3_any(x, along, row_step, weights, chunk, count, count_lines, next);
            } else {
                column_any(x, along, weights, table_end, bias, chunk, count, count_lines, next);
            }
            if (doubled) {
                store_doubled(doubled, chunk, count, count_lines, to, out_next, out_along);
            } else {
                store_plain(plain, chunk, count, count_lines, to, out_next, out_along);
            }
            x += (uint32_t)count * along;
            to += (uint32_t)count * out_along;
        }
    }
}

/* Output channel `oc` from its input channel's plane. 3x3 windows take the packed form when their scale
 * takes the short one; `table`: room for pack_table's entries. */
static void dense_channel(const tp_depthwise_conv2d_params *p, const tp_requant *requant, const int16_t *plane,
                          int32_t *table, int oc, int8_t *output)
{
    /* every partial sum: the bias plus (input + offset) * weight, at most 256 * 128 each, a tap */
    tp_doubled_scale doubled;
    if (!tp_doubled_scale_of(requant, oc, tp_accumulator_bound(p->bias[oc], p->kernel_h * p->kernel_w, 256 * 128),
                             &doubled)) {
        const tp_channel_scale plain = tp_channel(requant, oc);
        const int32_t folded_bias = pack_table(p, oc, 1, table);
        channel_lines(p, plane, TP_ANY_WINDOW, table, table + 2 * table_entries(p), folded_bias, 0, &plain,
                      output + oc);
    } else if (three_by_three(p)) {
        int32_t packed[TP_PACKED3X3];
        pack3x3(p, oc, packed);
        channel_lines(p, plane, p->stride_h == 1 && p->dilation_h == 1 ? TP_UNIT3X3 : TP_ANY3X3, packed, 0, 0,
                      &doubled, 0, output + oc);
    } else {
        const int32_t folded_bias = pack_table(p, oc, 2, table);
        channel_lines(p, plane, TP_ANY_WINDOW, table, table + 2 * table_entries(p), folded_bias, &doubled, 0,
                      output + oc);
    }
}

/* Dense weights: input channels staged into int16 planes (two at a time with depth multiplier 1, where
 * their bytes are dead afterwards; else one), then their output channels. scratch: the planes, one
 * spare pixel for one-tap-wide windows, then (but for 3x3 windows, whose table fits the stack) the
 * table of taps. */
static void dense_depthwise(const tp_depthwise_conv2d_params *p, const tp_requant *requant, const int8_t *input,
                            int8_t *scratch, int8_t *output)
{
    const int group = p->depth_multiplier == 1 && p->in_c > 1 ? 2 : 1;
    const uint32_t plane_size = (uint32_t)p->padded_h * p->padded_w;
    const uint32_t filled = group * plane_size + (p->kernel_w == 1 ? 1 : 0);
    int16_t *plane = (int16_t *)(void *)scratch;
    int32_t table3x3[2 * 6];
    int32_t *table = three_by_three(p) ? table3x3 : (int32_t *)(void *)(scratch + 4 * ((2 * filled + 3) / 4));
    const int16_t zero_point = (int16_t)-p->input_offset;
    for (uint32_t i = 0; i < filled; ++i) {
        plane[i] = zero_point;
    }
    int oc = 0;
    for (int ic = 0; ic < p->in_c; ic += group) {
        const int count = p->in_c - ic < group ? 1 : group;
        stage_channels(p, input, ic, count, plane, plane_size);
        for (int k = 0; k < count; ++k) {
            for (int m = 0; m < p->depth_multiplier; ++m, ++oc) {
                dense_channel(p, requant, plane + k * plane_size, table, oc, output);
            }
        }
    }
}

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
    if (TP_IS(&p->weights, DENSE)) {
        dense_depthwise(p, &requant, input, scratch, output);
    } else if (p->staged) {
        const int8_t *nonzeros = p->weights.values;
        for (int oc = 0; oc < p->out_c; oc += 4) {
            stage_block(p, input, oc, scratch);
            sparse_block4(p, &requant, scratch, oc, &nonzeros, output);
        }
    } else {
        sparse_depthwise(p, input, output);
    }
}

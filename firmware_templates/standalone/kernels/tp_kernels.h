/* The standalone kernels: one op a file, int8 NHWC, batch 1, no allocation. Each takes its layer's
 * constant parameters (generated into model.c) and its input and output buffers. */
#ifndef TP_KERNELS_H
#define TP_KERNELS_H

#include <stdint.h>

#include "tp_arith.h"

/* The convolution paths (with a fused pool, without; over its input) the model takes and its largest fused
 * pool window: the generated tp_config.h; every
 * path in a build of several models' kernels at once (TP_EVERY_FORMAT, the tests' host runner). */
#ifdef TP_EVERY_FORMAT
#define TP_CONV2D_POOLED 1
#define TP_CONV2D_PLAIN 1
#define TP_GEMM_POOLED 1
#define TP_GEMM_PLAIN 1
#define TP_CONV2D_IN_PLACE 1
#define TP_CONV2D_POOL_MEMBERS 16 /* ops.POOL_MEMBERS */
#define TP_CONV2D_LUT4 2
#define TP_CONV2D_DOUBLED 2 /* tp_conv2d's short requantization: per channel */
#define TP_FULLY_CONNECTED_DOUBLED 2 /* tp_fully_connected's: per row */
#define TP_CONV2D_UNPACKED 4096 /* nonzeros of a row tp_conv2d unpacks */
#else
#include "tp_config.h"
#endif

/* A convolution's offset of a row position from its window's corner (the tap tables): one byte where
 * the model's tables fit (tp_config.h), two otherwise and in a build of several models at once. */
#if defined(TP_EVERY_FORMAT) || !defined(TP_TAP_BYTES) || TP_TAP_BYTES == 2
typedef uint16_t tp_tap;
#else
typedef uint8_t tp_tap;
#endif

/* n bytes copied a word at a time (a 4-byte memcpy is one load or store where the core reads unaligned
 * words, bytes elsewhere): for short runs, where a call to memcpy costs more than the run. */
static inline void tp_copy_bytes(int8_t *to, const int8_t *from, uint32_t n)
{
    for (; n >= 4; n -= 4, to += 4, from += 4) {
        uint32_t word;
        memcpy(&word, from, 4);
        memcpy(to, &word, 4);
    }
    for (; n > 0; --n) {
        *to++ = *from++;
    }
}

/* A helper a kernel inlines into its loop whatever the compiler's size heuristics say; a loop nest kept
 * out of its caller, so that the caller's values do not crowd its registers. */
#if defined(__GNUC__)
#define TP_ALWAYS_INLINE inline __attribute__((always_inline))
#define TP_NOINLINE __attribute__((noinline))
/* a value the compiler must take as changed here: no library call recognised in a loop around it */
#define TP_OPAQUE(value) __asm__("" : "+r"(value))
#else
#define TP_ALWAYS_INLINE inline
#define TP_NOINLINE
#define TP_OPAQUE(value) ((void)0)
#endif

/* n bytes set to `value`, a word at a time: for the short borders and pads, where newlib's memset (162
 * bytes on an M4) would outweigh the loop. TP_OPAQUE keeps GCC from turning the loop into a memset call. */
static inline void tp_fill_bytes(int8_t *to, int8_t value, uint32_t n)
{
    const uint32_t word = (uint8_t)value * 0x01010101u;
    for (; n >= 4; n -= 4, to += 4) {
        memcpy(to, &word, 4);
        TP_OPAQUE(to);
    }
    for (; n > 0; --n) {
        *to++ = value;
        TP_OPAQUE(to);
    }
}

enum { TP_DENSE = 0, TP_BITMASK = 1, TP_LUT = 2, TP_DELTA = 3, TP_BITMASK_LUT = 4, TP_DELTA_LUT = 5 };

/* A weight matrix stored dense, or sparse with its nonzeros' positions as a bitmask or as gap codes and
 * their values as int8 or as indices into a table, or as indices into a table of k values for every
 * position (formats.py); the kernels compute from the stored form and skip zero weights. */
typedef struct {
    const int8_t *values;   /* dense: rows x row_len; bitmask, delta: the nonzeros in row order; *lut: the table */
    const uint32_t *mask;   /* bitmask*: row_stride words a row, bit 31 - p % 32 of word p / 32 for position p */
    const uint8_t *indices; /* lut: index_bits bits a position, each row from a byte boundary;
                               *_lut: index_bits bits a nonzero, in row order */
    const uint8_t *codes;   /* delta*: code_bits-bit gap codes, in row order */
    uint16_t row_len;
    uint16_t row_stride;    /* bitmask*: mask words a row; lut: index bytes a row */
    uint8_t format;
    uint8_t index_bits;
    uint8_t code_bits;
} tp_weights;

typedef struct {
    tp_weights weights;     /* a row per output channel: kernel_h x kernel_w x in_c */
    const tp_tap *taps;     /* offset of each row position from the window's corner: compressed rows,
                               and dense rows too short for a contiguous dot product */
    const int32_t *bias;    /* bias - input_zero_point * sum(row): the input offset folded in */
    tp_requant requant;
    uint16_t in_w, in_c;    /* of the input as the kernel reads it: already padded */
    uint16_t out_h, out_w, out_c;  /* the output stored: pooled, with a fused pool */
    uint8_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
    uint8_t pool_h, pool_w; /* a fused MAX_POOL_2D's window (= its stride), 0 for none: see tp_conv2d.c */
    /* with a pool, the output inside a border of border_value (0 bytes: none): border_bytes in all, the
     * first pixel at border_offset, border_gap bytes skipped after each row */
    uint32_t border_bytes, border_offset;
    uint16_t border_gap;
    int8_t border_value;
} tp_conv2d_params;

typedef struct {
    tp_weights weights;     /* a row of kernel_h x kernel_w taps per output channel */
    const int32_t *bias;
    tp_requant requant;
    int32_t input_offset;   /* minus the input zero point */
    uint16_t in_h, in_w, in_c;
    uint16_t out_h, out_w, out_c;
    uint8_t depth_multiplier, kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
    uint8_t pad_top, pad_left;
    uint8_t staged;         /* bitmask, lut: multiplier 1, out_c % 4 == 0, four channels at a time padded
                               into scratch (padded_h x padded_w x 4 bytes) */
    uint16_t padded_h, padded_w;  /* the input with its padding; dense: scratch holds one or two planes of
                                     padded_h x padded_w int16 pixels, then a table of taps */
} tp_depthwise_conv2d_params;

/* rows x depth dense weights times `columns` input columns of depth bytes: output pixels or batches,
 * `block` columns a pass. scratch: block x depth bytes for the windows when kernel_h > 0, then
 * block x rows when in_place. */
typedef struct {
    const int8_t *weights;  /* pairs of rows interleaved 4 bytes at a time (row 2i bytes 0-3, row 2i+1
                               bytes 0-3, row 2i bytes 4-7, ...), each pair's last depth % 4 bytes row
                               after row; an odd last row plain */
    const int32_t *bias;    /* bias - input_zero_point * sum(row): the input offset folded in */
    tp_requant requant;
    uint16_t columns, depth, rows;
    uint8_t block;          /* columns a pass */
    uint8_t in_place;       /* outputs staged in scratch: output may be the input */
    /* a convolution's windows (kernel_h 0: the columns lie one after the other in the input) */
    uint8_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, pad_top, pad_left;
    int8_t input_zero_point;  /* the padding's value */
    uint16_t in_h, in_w, in_c, out_w;  /* out_w: of the output stored (pooled, with a fused pool) */
    uint8_t pool_h, pool_w; /* a fused MAX_POOL_2D's window (= its stride), 0 for none: each pool_h x pool_w
                               consecutive columns are one pooled output's windows */
} tp_gemm_params;

typedef struct {
    tp_weights weights;     /* a row per output unit */
    const int32_t *bias;    /* input offset folded in */
    tp_requant requant;
    uint16_t batches, out_depth;
} tp_fully_connected_params;

typedef struct {
    uint16_t in_h, in_w, channels, out_h, out_w;
    uint8_t filter_h, filter_w, stride_h, stride_w, pad_top, pad_left;
    int8_t activation_min, activation_max;
} tp_pool2d_params;

/* The input rows (or columns) the pooling window at output position `o` covers, clipped to the input:
 * [*start, *end). Average pooling divides by the clipped count, as TFLM's reference kernel does. */
static inline void tp_pool_window(int o, int stride, int pad, int filter, int size, int *start, int *end)
{
    const int first = o * stride - pad;
    *start = first < 0 ? 0 : first;
    *end = first + filter > size ? size : first + filter;
}

typedef struct {  /* tp_pad.h: model.c inlines each call, so none of this reaches the flash */
    uint32_t size;          /* output bytes, all set to value first */
    uint32_t first;         /* where the first run goes in the output */
    uint32_t run;           /* input bytes copied at a time: the last padded axis, unpadded ones after it merged in */
    uint32_t runs[3];       /* runs along the axes around it, outermost first (1 where there are fewer) */
    uint32_t strides[3];    /* output bytes from one run to the next along each */
    int8_t value;
} tp_pad_params;

typedef struct {
    int32_t input1_offset, input2_offset, output_offset;
    int32_t input1_multiplier, input2_multiplier, output_multiplier;
    int8_t input1_shift, input2_shift, output_shift, left_shift;
    int8_t activation_min, activation_max;
    uint32_t size;
} tp_add_params;

typedef struct {
    int32_t input1_offset, input2_offset, output_offset, output_multiplier;
    int8_t output_shift, activation_min, activation_max;
    uint32_t size;
} tp_mul_params;

typedef struct {
    uint32_t outer, reduced, inner;
    int32_t input_zero_point, output_zero_point, multiplier;
    int8_t shift;
    uint8_t plain_average;  /* same scale and zero point in and out: TFLM divides the raw sum */
} tp_mean_params;

typedef struct {
    int32_t input_zero_point, output_zero_point, multiplier;
    int8_t shift;
    int8_t activation_min, activation_max;
    uint32_t size;
} tp_requantize_params;

typedef struct {
    int32_t input_multiplier;
    int32_t diff_min;
    int8_t input_left_shift;
    uint16_t rows, depth;
} tp_softmax_params;

typedef struct {
    int32_t input_zero_point, input_multiplier, input_range_radius;
    int8_t input_left_shift;
    uint32_t size;
} tp_activation_params;

typedef struct {
    uint32_t outer;
    uint16_t count;
    const uint32_t *inner;  /* bytes each input contributes per outer step */
} tp_concatenation_params;

typedef struct {
    uint32_t size;
} tp_copy_params;

void tp_conv2d(const tp_conv2d_params *p, const int8_t *input, int8_t *scratch, int8_t *output);
void tp_depthwise_conv2d(const tp_depthwise_conv2d_params *p, const int8_t *input, int8_t *scratch,
                         int8_t *output);
void tp_gemm(const tp_gemm_params *p, const int8_t *input, int8_t *scratch, int8_t *output);
void tp_fully_connected(const tp_fully_connected_params *p, const int8_t *input, int8_t *output);
void tp_max_pool2d(const tp_pool2d_params *p, const int8_t *input, int8_t *output);
void tp_average_pool2d(const tp_pool2d_params *p, const int8_t *input, int8_t *output);
void tp_add(const tp_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output);
void tp_mul(const tp_mul_params *p, const int8_t *input1, const int8_t *input2, int8_t *output);
void tp_mean(const tp_mean_params *p, const int8_t *input, int8_t *output);
void tp_requantize_tensor(const tp_requantize_params *p, const int8_t *input, int8_t *output);
void tp_softmax(const tp_softmax_params *p, const int8_t *input, int8_t *output);
void tp_logistic(const tp_activation_params *p, const int8_t *input, int8_t *output);
void tp_tanh(const tp_activation_params *p, const int8_t *input, int8_t *output);
void tp_concatenation(const tp_concatenation_params *p, const int8_t *const *inputs, int8_t *output);
void tp_copy(const tp_copy_params *p, const int8_t *input, int8_t *output);

#endif /* TP_KERNELS_H */

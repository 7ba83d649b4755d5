/* FULLY_CONNECTED, int8, per-tensor or per-channel: TFLM's reference FullyConnected with the input
 * offset folded into the bias. */
#define TP_KERNEL_FORMATS TP_FULLY_CONNECTED_FORMATS
#define TP_KERNEL_LUT4 TP_FULLY_CONNECTED_LUT4
#include "tp_weights.h"

/* Unit `unit`'s accumulator as an int8 output: tp_arith.h's short form (the accumulator doubled, three
 * instructions and a clamp) where tp_config.h's TP_FULLY_CONNECTED_DOUBLED says every row of the model's
 * fully connected layers takes it (1) or some do (2: decided per row), TFLM's long form otherwise (0).
 * Every accumulator lies within the bias +- 128 * 128 a row position. */
static TP_ALWAYS_INLINE int8_t requantize(const tp_fully_connected_params *p, int unit, int32_t acc)
{
#if TP_FULLY_CONNECTED_DOUBLED == 1
    const tp_doubled_scale scale = tp_doubled_scale_at(&p->requant, unit);
    return tp_scale_doubled(&scale, 2 * acc);
#else
    tp_doubled_scale scale;
    if (TP_FULLY_CONNECTED_DOUBLED && tp_doubled_scale_of(
            &p->requant, unit, tp_accumulator_bound(p->bias[unit], p->weights.row_len, 128 * 128), &scale)) {
        return tp_scale_doubled(&scale, 2 * acc);
    }
    return tp_requantize(&p->requant, unit, acc);
#endif
}

void tp_fully_connected(const tp_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const tp_weights *const weights = &p->weights;
    for (int b = 0; b < p->batches; ++b) {
        tp_cursor cursor = tp_cursor_start(weights);
        tp_nibbles nibbles = {weights->indices, 0};
        const int8_t *value = weights->values;
        const uint32_t *mask = weights->mask;
        for (int unit = 0; unit < p->out_depth; ++unit) {
            int32_t acc = p->bias[unit];
            if (TP_IS_LUT4(weights)) {
                const uint32_t *row_end = mask + weights->row_stride;
                acc = tp_bitmask_lut4_row_dot(mask, row_end, weights->values, &nibbles, input, acc);
                mask = row_end;
            } else if (TP_IS(weights, BITMASK)) {
                const uint32_t *row_end = mask + weights->row_stride;
                acc = tp_bitmask_int8_row_dot(mask, row_end, &value, input, acc);
                mask = row_end;
            } else {
                acc += tp_row_dot(weights, unit, &cursor, input, 0);
            }
            *output++ = requantize(p, unit, acc);
        }
        input += weights->row_len;
    }
}

/* FULLY_CONNECTED, int8, per-tensor or per-channel: TFLM's reference FullyConnected with the input
 * offset folded into the bias. */
#define TP_KERNEL_FORMATS TP_FULLY_CONNECTED_FORMATS
#define TP_KERNEL_LUT4 TP_FULLY_CONNECTED_LUT4
#include "tp_weights.h"

void tp_fully_connected(const tp_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const tp_weights weights = p->weights;
    const tp_requant requant = p->requant;
    tp_channel_scale scale = {0};
    for (int b = 0; b < p->batches; ++b) {
        tp_cursor cursor = tp_cursor_start(&weights);
        for (int unit = 0; unit < p->out_depth; ++unit) {
            if (unit == 0 || requant.per_channel) { /* per tensor: worked out once a batch */
                scale = tp_channel(&requant, unit);
            }
            const int32_t acc = p->bias[unit] + tp_row_dot(&weights, unit, &cursor, input, 0);
            *output++ = tp_scale(&scale, acc);
        }
        input += weights.row_len;
    }
}

/* FULLY_CONNECTED, int8, per-tensor or per-channel: TFLM's reference FullyConnected with the input
 * offset folded into the bias. */
#define TP_KERNEL_FORMATS TP_FULLY_CONNECTED_FORMATS
#include "tp_weights.h"

void tp_fully_connected(const tp_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    const tp_weights weights = p->weights;
    const tp_requant requant = p->requant;
    for (int b = 0; b < p->batches; ++b) {
        tp_cursor cursor = tp_cursor_start(&weights);
        for (int unit = 0; unit < p->out_depth; ++unit) {
            const int32_t acc = p->bias[unit] + tp_row_dot(&weights, unit, &cursor, input, 0);
            *output++ = tp_requantize(&requant, unit, acc);
        }
        input += weights.row_len;
    }
}

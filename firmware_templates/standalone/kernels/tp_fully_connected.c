/* FULLY_CONNECTED, int8, per-tensor or per-channel: TFLM's reference FullyConnected with the input
 * offset folded into the bias. */
#include "tp_weights.h"

void tp_fully_connected(const tp_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    for (int b = 0; b < p->batches; ++b) {
        const int8_t *nonzeros = p->weights.values;
        for (int unit = 0; unit < p->out_depth; ++unit) {
            const int32_t acc = p->bias[unit] + tp_row_dot(&p->weights, unit, &nonzeros, input, 0);
            *output++ = tp_requantize(&p->requant, unit, acc);
        }
        input += p->weights.row_len;
    }
}

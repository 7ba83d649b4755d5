/* CONCATENATION, int8, inputs sharing the output's scale and zero point: interleaved copies. */
#include <string.h>

#include "tp_kernels.h"

void tp_concatenation(const tp_concatenation_params *p, const int8_t *const *inputs, int8_t *output)
{
    for (uint32_t o = 0; o < p->outer; ++o) {
        for (int k = 0; k < p->count; ++k) {
            memcpy(output, inputs[k] + o * p->inner[k], p->inner[k]);
            output += p->inner[k];
        }
    }
}

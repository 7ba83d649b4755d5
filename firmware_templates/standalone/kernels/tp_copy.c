/* RESHAPE where the plan cannot alias the buffers (the graph's input straight to its output). */
#include <string.h>

#include "tp_kernels.h"

void tp_copy(const tp_copy_params *p, const int8_t *input, int8_t *output)
{
    memcpy(output, input, p->size);
}

"""Flash a firmware needs: the model's flatbuffer, the TFLM runtime's code for exactly the model's
operators, and the application around it.

What is measured and what is not:
- the model bytes are exact (the flatbuffer is stored as it is);
- the runtime figure is anchored on one measurement made outside tinyprune (issue 9's statement): a
  bare-metal Cortex-M4 firmware running the digits demo with the Arduino library's TFLM (January 2023,
  CMSIS-NN kernels, GCC 12 -O2, hard float) has 74,344 B of text, 19,064 B of it the model: 55,280 B of
  code for CONV_2D, MAX_POOL_2D, RESHAPE and FULLY_CONNECTED. The per-kernel split below is tinyprune's
  estimate (no build of that library is available offline to measure each kernel), and the core is what
  remains of the measured total, so the demo's op set adds up to the measurement and other op sets are
  estimates. The Arduino application figure (mbed core with Serial) is an estimate too. Where a real
  build exists, pass its `arm-none-eabi-size` text + data figure as `measured_code_bytes` and the
  estimate is replaced by the measurement.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tinyprune.errors import TinypruneError
from tinyprune.graph.ir import Graph

# The measured code of the demo's firmware (see above) and the op set it was measured with.
MEASURED_DEMO_CODE_BYTES = 74_344 - 19_064
MEASURED_DEMO_OPS = ("CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "RESHAPE")

# Per registered kernel (TFLM's kernel file plus the CMSIS-NN functions it calls), Cortex-M4, -Os.
KERNEL_BYTES: dict[str, int] = {
    "CONV_2D": 7_000,
    "DEPTHWISE_CONV_2D": 7_000,
    "FULLY_CONNECTED": 3_500,
    "AVERAGE_POOL_2D": 2_500,
    "MAX_POOL_2D": 2_500,
    "SOFTMAX": 3_000,
    "ADD": 3_000,
    "MUL": 3_000,
    "MEAN": 3_500,
    "CONCATENATION": 2_000,
    "PAD": 1_500,
    "QUANTIZE": 2_000,
    "DEQUANTIZE": 1_500,
    "RESHAPE": 500,
    "EXPAND_DIMS": 500,
    "SQUEEZE": 500,
}
OTHER_KERNEL_BYTES = 2_500

# MicroInterpreter, MicroAllocator, GreedyMemoryPlanner, MicroMutableOpResolver, the flatbuffer
# accessors and parse functions, MicroPrintf/DebugLog, startup: the measurement less its kernels.
RUNTIME_CORE_BYTES = MEASURED_DEMO_CODE_BYTES - sum(KERNEL_BYTES[op] for op in MEASURED_DEMO_OPS)

# The application around the model: Arduino's mbed core (Nano 33 BLE class boards) with Serial, or a
# bare-metal startup with newlib-nano.
APPLICATION_BYTES = {"arduino": 80_000, "tflm": 0}  # bare metal: startup is in the measured core


@dataclass(frozen=True)
class FlashEstimate:
    runtime: str
    model_bytes: int  # exact
    core_bytes: int
    kernel_bytes: dict[str, int]
    application_bytes: int
    measured: bool  # True when the code figure comes from a real build
    basis: str  # what the figures are and where they come from
    notes: tuple[str, ...] = field(default=())

    @property
    def code_bytes(self) -> int:
        return self.core_bytes + sum(self.kernel_bytes.values()) + self.application_bytes

    @property
    def total(self) -> int:
        return self.model_bytes + self.code_bytes


def estimate_flash(graph: Graph, runtime_name: str, measured_code_bytes: int | None = None) -> FlashEstimate:
    """Flash for `graph` on `runtime_name` ("arduino": the Arduino library's TFLM, "tflm": a bare-metal
    TFLM build); any runtime with `measured_code_bytes` (text + data of a real firmware without the
    model, from arm-none-eabi-size)."""
    if measured_code_bytes is not None:
        return FlashEstimate(
            runtime=runtime_name, model_bytes=graph.model_bytes, core_bytes=measured_code_bytes,
            kernel_bytes={}, application_bytes=0, measured=True,
            basis="model bytes plus the measured code of a real build (arm-none-eabi-size)",
        )
    if runtime_name not in APPLICATION_BYTES:
        raise TinypruneError(
            f"no flash estimate for runtime {runtime_name!r}",
            f"use one of {sorted(APPLICATION_BYTES)}, or pass the measured code size of a real build",
        )
    kernels = {opcode: KERNEL_BYTES.get(opcode, OTHER_KERNEL_BYTES) for opcode in graph.op_names}
    unlisted = sorted(op for op in graph.op_names if op not in KERNEL_BYTES)
    return FlashEstimate(
        runtime=runtime_name,
        model_bytes=graph.model_bytes,
        core_bytes=RUNTIME_CORE_BYTES,
        kernel_bytes=kernels,
        application_bytes=APPLICATION_BYTES[runtime_name],
        measured=False,
        basis=("model bytes exact; TFLM code from one external measurement (the demo's op set on a Cortex-M4 "
               "with CMSIS-NN: 55,280 B) split per kernel by estimate; the Arduino core's own code estimated"),
        notes=(f"no per-kernel figure for {', '.join(unlisted)}: {OTHER_KERNEL_BYTES} B each assumed",)
        if unlisted else (),
    )

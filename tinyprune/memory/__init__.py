"""Memory without a board: the TFLM arena emulated allocation by allocation (tflm_arena.py, with the
greedy planner in planner.py and each kernel's allocations in kernels.py) and the flash a firmware
needs (flash.py). Pure Python over the graph IR: no TensorFlow, no TFLM."""
from tinyprune.memory.flash import FlashEstimate, estimate_flash
from tinyprune.memory.tflm_arena import ArenaEstimate, TensorPlacement, emulate_arena, tensor_placements

RUNTIME_ARENA_TARGETS = {"arduino": "arm32", "tflm": "host"}
"""Which emulation models each runtime's build: the Arduino library is a 32-bit build with CMSIS-NN
kernels; the tflite-micro package is the 64-bit host."""


def board_arena(graph, runtime_name: str) -> ArenaEstimate:
    """The arena `graph` needs in the TFLM build of `runtime_name`, emulated."""
    return emulate_arena(graph, RUNTIME_ARENA_TARGETS[runtime_name])


__all__ = ["ArenaEstimate", "FlashEstimate", "RUNTIME_ARENA_TARGETS", "TensorPlacement", "board_arena",
           "emulate_arena", "estimate_flash", "tensor_placements"]

"""Memory without a board: the TFLM arena emulated allocation by allocation (tflm_arena.py, with the
greedy planner in planner.py and each kernel's allocations in kernels.py) and the flash a firmware
needs (flash.py). Pure Python over the graph IR: no TensorFlow, no TFLM."""
from tinyprune.memory.flash import FlashEstimate, estimate_flash
from tinyprune.memory.tflm_arena import ArenaEstimate, TensorPlacement, emulate_arena, tensor_placements

__all__ = ["ArenaEstimate", "FlashEstimate", "TensorPlacement", "emulate_arena", "estimate_flash",
           "tensor_placements"]

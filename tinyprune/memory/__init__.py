"""Memory without a board: the TFLM arena emulated allocation by allocation (tflm_arena.py, planner.py,
kernels.py) and the flash a firmware needs (flash.py)."""

"""TFLM's arena on the board: the emulation for the runtime's build, or the host search's figure where
the emulation cannot model an operator (DECODE)."""
from __future__ import annotations


def tflm_board_arena(graph, runtime_name: str, host_search):
    """(the emulated ArenaEstimate, the 16-byte aligned figure the firmware relies on)."""
    from tinyprune.memory import board_arena

    estimate = board_arena(graph, runtime_name)
    if estimate.target == "host" and not estimate.exact_model:
        return estimate, host_search.aligned16  # an operator the emulation does not model: trust the run
    return estimate, estimate.aligned16

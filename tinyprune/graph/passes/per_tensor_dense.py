"""FULLY_CONNECTED weights with one scale a tensor instead of one a channel, for runtimes that
mis-compute per-channel FULLY_CONNECTED (the Arduino library's TFLM of January 2023). The TFLite
converter applies it (its per-channel-for-dense switch); this module decides when and says why."""
from __future__ import annotations

from tinyprune.graph.passes import PassRecord

NAME = "per-tensor FULLY_CONNECTED"


def per_tensor_dense(runtime) -> PassRecord | None:
    """The pass when `runtime` (tinyprune.graph.runtimes.Runtime) needs it, else None."""
    if runtime.per_channel_fully_connected:
        return None
    return PassRecord(NAME, f"{runtime.title} mis-computes per-channel FULLY_CONNECTED")

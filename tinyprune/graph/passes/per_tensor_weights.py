"""Every layer's weights with one scale a tensor, for clustered models: one scale keeps k weight
clusters as exactly k int8 values (and drops the per-channel scale tables). The TFLite converter
applies it; this module decides when and says why."""
from __future__ import annotations

from tinyprune.graph.passes import PassRecord

NAME = "per-tensor weights"


def per_tensor_weights(clusters: int) -> PassRecord | None:
    """The pass when the weights were clustered into `clusters` values, else None."""
    if not clusters:
        return None
    return PassRecord(NAME, f"one scale a tensor keeps the {clusters} weight clusters as {clusters} int8 values")

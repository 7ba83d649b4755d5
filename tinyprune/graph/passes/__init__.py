"""Named rewrites of the int8 graph, one a file, each recorded in the report when it runs:
per_tensor_dense.py and per_tensor_weights.py (asked of the TFLite converter), tflm_compression.py
(DECODE-compressed constant tensors, rewritten in the flatbuffer)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PassRecord:
    """What a pass did and why it ran, for the report's list of passes."""

    name: str
    why: str
    details: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)

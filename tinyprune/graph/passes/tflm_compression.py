"""TFLM compression (`--tflm-compression`): constant tensors stored as look-up tables or bitmasks and
rebuilt by DECODE operators at run time (tinyprune.compress does the encoding and the identity check)."""
from __future__ import annotations

import numpy as np

from tinyprune.graph.passes import PassRecord

NAME = "TFLM compression"


def tflm_compression(model_bytes: bytes, mode: str, x_verify: np.ndarray) -> tuple[bytes, PassRecord | None]:
    """The compressed flatbuffer and the pass's record (None when mode is "none")."""
    if mode == "none":
        return model_bytes, None
    from tinyprune.compress import compress_for_tflm

    compressed, report = compress_for_tflm(model_bytes, mode, x_verify)
    why = (f"{report['decoded_tensors']} tensors decoded at run time: {report['bytes_before']:,} -> "
           f"{report['bytes_after']:,} B of flatbuffer")
    return compressed, PassRecord(NAME, why, report)

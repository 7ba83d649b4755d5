"""Stage 3b: an int8 flatbuffer -> a smaller one that TFLM decodes at run time (`--tflm-compression`).

TFLM's DECODE operator rebuilds a constant tensor in the arena just before the operator that reads
it, from a look-up table (lut.py, through `tflite_micro.compression`) or a bitmask of kept values
(pruned.py, tinyprune's encoder). auto.py picks per tensor; verify.py checks every compressed model
on TFLM's host interpreter. Flash shrinks; the arena grows by the decoded tensors.
"""
from __future__ import annotations

import numpy as np

from tinyprune.compress.assemble import compress_tensors
from tinyprune.compress.auto import MODES, check_mode, choose
from tinyprune.compress.verify import check_identical
from tinyprune.errors import TinypruneError
from tinyprune.verify.arena import find_arena

DECODE_OPCODE = "TFLM_DECODE"
TFLM_BUILD_WITH_DECODE = (
    "a TFLM built with the DECODE kernel (tflite-micro from 2025 on, resolver.AddDecode(); the "
    "tflite-micro Python package has it); the Arduino_TensorFlowLite library does not"
)


def compress_for_tflm(model_bytes: bytes, mode: str, x_verify: np.ndarray) -> tuple[bytes, dict]:
    """The int8 model with its constant tensors stored as `mode` allows (none|lut|prune|auto), verified
    on TFLM's host interpreter to give byte-identical outputs on every sample of x_verify.

    Returns the bytes (the input itself when nothing shrinks the file) and a report: sizes, the
    choice per tensor, the arena cost, the samples verified and the TFLM build needed."""
    check_mode(mode)
    model_bytes = bytes(model_bytes)
    methods, choices = choose(model_bytes, mode) if mode != "none" else ({}, [])
    compressed = compress_tensors(model_bytes, methods) if methods else model_bytes
    if len(compressed) >= len(model_bytes):
        compressed, methods = model_bytes, {}
    report = {
        "mode": mode,
        "bytes_before": len(model_bytes),
        "bytes_after": len(compressed),
        "flash_saved": len(model_bytes) - len(compressed),
        "decoded_tensors": len(methods),
        "tensors": [choice.as_dict() for choice in choices],
        "tflm_build": TFLM_BUILD_WITH_DECODE if methods else None,
    }
    if methods:
        report["verified_samples"] = check_identical(model_bytes, compressed, x_verify)
        arena_before, arena_after = find_arena(model_bytes).aligned16, find_arena(compressed).aligned16
        # DECODE writes each decoded tensor into the arena: the RAM price of the flash saved
        report.update(arena_before=arena_before, arena_after=arena_after, arena_cost=arena_after - arena_before)
    return compressed, report


def compression_requirement(graph) -> str | None:
    """Which TFLM build a Graph needs because of compression: None for a plain model."""
    if any(op.opcode == DECODE_OPCODE for op in graph.operators):
        return TFLM_BUILD_WITH_DECODE
    return None


def check_compression_support(graph, runtime) -> None:
    """Refuse a TFLM-compressed Graph for a runtime (tinyprune.graph.runtimes.Runtime) without DECODE,
    with the way out; before the op check, whose generic advice does not fit this case."""
    if compression_requirement(graph) and not runtime.supports(DECODE_OPCODE):
        decodes = sum(op.opcode == DECODE_OPCODE for op in graph.operators)
        raise TinypruneError(
            f"the model is TFLM-compressed ({decodes} DECODE operators) but {runtime.title} has no "
            "DECODE kernel",
            "build with --tflm-compression none for this runtime, or target one built with DECODE "
            "(--runtime tflm)",
        )


__all__ = ["MODES", "check_compression_support", "compress_for_tflm", "compression_requirement"]

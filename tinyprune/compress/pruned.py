"""TFLM's pruned-tensor format (DECODE type 2), which upstream's Python compressor leaves unimplemented.

The layout, read from TFLM's decoder (kernels/decode_state_prune.cc):
- the encoded tensor is a bitmask over the elements in memory order, most significant bit first,
  1 where the element differs from its zero point;
- the ancillary tensor is the 16-byte DECODE common metadata (type 2, DCM version 1 in byte 1, pruning
  format version 1 in byte 4) followed by the kept elements in memory order, in the tensor's own type.
The decoder writes the zero point where the bit is 0: the int8 zero point of the element's channel for
per-channel int8 tensors (channel axis 0 or the last axis), otherwise the first zero point (0 when the
tensor has no quantization). A float tensor is copied as 32-bit words, so "zero" means the bit pattern
0 (+0.0) and -0.0 is kept as a value.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tflite_micro.tensorflow.lite.micro.compression import (
    compressor,
    decode,
    model_editor,
    spec,
)

from tinyprune.errors import TinypruneError

PRUNING_FORMAT_VERSION = 1  # DCM byte 4 (decode_state_prune.h: kDcmVersionOffset = 4)

# numpy dtypes the decoder handles, by name (bool is decoded as int8, float32 as int32 words)
SUPPORTED_DTYPES = ("bool", "float32", "int8", "int16", "int32", "int64")


def channel_zero_points(shape: Sequence[int], dtype: np.dtype, zero_points: Sequence[int],
                        axis: int | None) -> np.ndarray:
    """The zero point the decoder writes for each element, broadcast to `shape`.

    Only int8 tensors with several zero points are decoded per channel; the decoder accepts the
    channel axis 0 or the last axis and refuses the others."""
    shape = tuple(int(d) for d in shape)
    zero_points = [int(z) for z in zero_points] or [0]
    if len(zero_points) > 1 and np.dtype(dtype) == np.int8:
        axis = 0 if axis is None else axis
        if axis not in (0, len(shape) - 1):
            raise TinypruneError(
                f"a per-channel tensor quantized along axis {axis} of shape {shape} cannot be pruned-encoded",
                "TFLM's pruning decoder takes channel axis 0 or the last axis; leave this tensor as it is",
            )
        along = [1] * len(shape)
        along[axis] = len(zero_points)
        return np.broadcast_to(np.asarray(zero_points, dtype=np.int8).reshape(along), shape)
    return np.full(shape, zero_points[0], dtype=np.dtype(dtype) if np.dtype(dtype) != bool else np.int8)


def _words(values: np.ndarray) -> np.ndarray:
    """The values as the decoder compares them: floats as their 32-bit patterns, bools as int8."""
    if values.dtype == np.float32:
        return values.view(np.int32)
    if values.dtype == bool:
        return values.view(np.int8)
    return values


def encode_pruned(values: np.ndarray, zero_points: Sequence[int] = (0,),
                  axis: int | None = None) -> tuple[bytes, bytes]:
    """(bitmask, ancillary data) of a tensor in TFLM's pruned format."""
    values = np.ascontiguousarray(values)
    if values.dtype.name not in SUPPORTED_DTYPES:
        raise TinypruneError(f"TFLM's pruning decoder has no {values.dtype.name} tensors",
                             f"pruned-encode only {', '.join(SUPPORTED_DTYPES)} tensors")
    zeros = channel_zero_points(values.shape, values.dtype, zero_points, axis)
    words = _words(values)
    keep = (words != zeros.astype(words.dtype)).ravel()
    bitmask = np.packbits(keep, bitorder="big").tobytes()
    header = decode.DecodeCommonMetadata(
        decode_type=decode.DecodeType.PRUNING, user_data=bytes([PRUNING_FORMAT_VERSION])
    ).to_bytes()
    return bitmask, header + values.ravel()[keep].tobytes()


def decode_pruned(bitmask: bytes, ancillary: bytes, shape: Sequence[int], dtype,
                  zero_points: Sequence[int] = (0,), axis: int | None = None) -> np.ndarray:
    """The tensor back from its pruned encoding, element by element as TFLM's decoder does."""
    dtype = np.dtype(dtype)
    if ancillary[0] != int(decode.DecodeType.PRUNING) or ancillary[4] != PRUNING_FORMAT_VERSION:
        raise ValueError(f"not a version-{PRUNING_FORMAT_VERSION} pruning ancillary tensor "
                         f"(type {ancillary[0]}, format version {ancillary[4]})")
    count = int(np.prod(shape, dtype=np.int64))
    keep = np.unpackbits(np.frombuffer(bitmask, dtype=np.uint8), bitorder="big")[:count].astype(bool)
    kept = np.frombuffer(ancillary[decode.DecodeCommonMetadata.SIZE:], dtype=dtype)[: int(keep.sum())]
    out = channel_zero_points(shape, dtype, zero_points, axis).astype(dtype).ravel().copy()
    out[keep] = kept
    return out.reshape(shape)


class PrunedCompressor:
    """TFLM compression plugin (the `compressor.Compressor` protocol) for `spec.PruningCompression`:
    what upstream's stub `pruning.PruningCompressor` will be."""

    @property
    def decode_type(self) -> decode.DecodeType:
        return decode.DecodeType.PRUNING

    def compress(self, tensor: model_editor.Tensor, method: spec.CompressionMethod) -> compressor.CompressionResult:
        if not isinstance(method, spec.PruningCompression):
            raise compressor.CompressionError(f"PrunedCompressor takes PruningCompression, got {type(method)}")
        if tensor.array is None:
            raise compressor.CompressionError(f"tensor {tensor.name!r} has no data to compress")
        quantization = tensor.quantization
        zero_points = quantization.zero_points if quantization is not None else [0]
        if isinstance(zero_points, int):
            zero_points = [zero_points]
        axis = quantization.axis if quantization is not None else None
        bitmask, ancillary = encode_pruned(tensor.array, zero_points, axis)
        return compressor.CompressionResult(encoded_data=bitmask, ancillary_data=ancillary)

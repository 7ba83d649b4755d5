"""TFLM's look-up-table format (DECODE type 0) through `tflite_micro.compression`.

Which LUT mode a tensor needs is not a choice: TFLM's decoder walks the value tables channel by
channel along the tensor's *quantization* (one table for a per-tensor tensor, one per channel for a
per-channel one). A spec that says otherwise still compresses, and the model then computes with the
wrong weights, silently. So the mode is derived here from the quantization, never asked for.
"""
from __future__ import annotations

import numpy as np
from tflite_micro.tensorflow.lite.micro.compression import lut as upstream_lut
from tflite_micro.tensorflow.lite.micro.compression import model_editor, spec

MAX_INDEX_BITS = upstream_lut.LutAncillaryData.MAX_BITWIDTH  # 7: the DCM's 3-bit field


def lut_mode(tensor: model_editor.Tensor) -> spec.PerTensor | spec.PerChannel:
    """The mode TFLM's decoder applies to this tensor: per channel along the quantized axis exactly
    when the tensor has several scales."""
    quantization = tensor.quantization
    scales = quantization.scales if quantization is not None else []
    if isinstance(scales, list) and len(scales) > 1:
        return spec.PerChannel(axis=quantization.axis or 0)
    return spec.PerTensor()


def largest_table(values: np.ndarray, mode: spec.PerTensor | spec.PerChannel) -> int:
    """Distinct values in the largest value table of `values` in `mode`."""
    if isinstance(mode, spec.PerChannel):
        tables = np.moveaxis(values, mode.axis, 0).reshape(values.shape[mode.axis], -1)
        return max(len(np.unique(table)) for table in tables)
    return len(np.unique(values))


def index_bits(distinct: int) -> int:
    """Bits per index for a table of `distinct` values (at least 1)."""
    return max(1, (distinct - 1).bit_length())


def lut_method(tensor: model_editor.Tensor) -> spec.LookUpTableCompression | str:
    """The LUT spec for this tensor, or why it stays as it is (more distinct values than 7 bits index)."""
    mode = lut_mode(tensor)
    distinct = largest_table(tensor.array, mode)
    bits = index_bits(distinct)
    if bits > MAX_INDEX_BITS:
        where = "in a channel" if isinstance(mode, spec.PerChannel) else "in the tensor"
        return f"{distinct} distinct values {where}, more than a {MAX_INDEX_BITS}-bit index holds"
    return spec.LookUpTableCompression(index_bitwidth=bits, mode=mode)


def decode_lut(encoded: bytes, ancillary: bytes, shape: tuple[int, ...], dtype) -> np.ndarray:
    """The tensor back from its LUT encoding, as TFLM's decoder reads it (for round-trip checks)."""
    dtype = np.dtype(dtype)
    params = ancillary[5]
    bits, axis = params & 0x07, params >> 4
    stride = ancillary[6]
    tables = np.frombuffer(ancillary[16:], dtype=dtype)
    count = int(np.prod(shape, dtype=np.int64))
    bit_rows = np.unpackbits(np.frombuffer(encoded, dtype=np.uint8), bitorder="big")[: count * bits]
    indices = bit_rows.reshape(count, bits) @ (1 << np.arange(bits - 1, -1, -1))
    if axis == upstream_lut.LutAncillaryData.PER_TENSOR_AXIS:
        return tables[indices].reshape(shape)
    channel = np.broadcast_to(
        np.arange(shape[axis]).reshape([-1 if d == axis else 1 for d in range(len(shape))]), shape
    ).ravel()
    return tables[channel * stride + indices].reshape(shape)

"""Writing a compressed flatbuffer: encode the chosen tensors and insert TFLM's DECODE operators.

Upstream's `tflite_micro.compression.compress()` dispatches through a private table whose pruning
entry is a stub, so tinyprune runs the same three steps itself with its own pruning plugin:
encode each tensor with a `Compressor` plugin, `decode_insert.insert_decode_operators`, and the
package's flatbuffer alignment (the Python flatbuffers writer ignores `force_align`). For LUT-only
specs the result differs from upstream's `compress()` in one way: the encoded tensors lose the
quantization of the values they encode (see `_drop_stale_quantization`).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from tflite_micro.tensorflow.lite.micro.compression import (
    constant_inputs,
    decode_insert,
    model_editor,
    spec,
)
from tflite_micro.tensorflow.lite.micro.compression import lut as upstream_lut
from tflite_micro.tensorflow.lite.micro.tools import tflite_flatbuffer_align_wrapper

from tinyprune.compress.pruned import SUPPORTED_DTYPES, PrunedCompressor

PLUGINS = {
    spec.LookUpTableCompression: upstream_lut.LutCompressor(),
    spec.PruningCompression: PrunedCompressor(),
}


@dataclass(frozen=True)
class Candidate:
    """A constant tensor a DECODE operator can produce."""

    index: int
    name: str
    nbytes: int


def candidates(model: model_editor.Model) -> list[Candidate]:
    """Constant tensors of subgraph 0 that TFLM can decode: a dtype the decoders handle, read by some
    operator, not an input a kernel needs constant in Prepare, quantized along an axis the decoders
    accept (0 or the last), and not sharing its buffer with another tensor."""
    subgraph = model.subgraphs[0]
    shared = _shared_buffers(model)
    found = []
    for index, tensor in enumerate(subgraph.tensors):
        if tensor.buffer is None or not tensor.buffer.data or id(tensor.buffer) in shared:
            continue
        if tensor.numpy_dtype.name not in SUPPORTED_DTYPES or not subgraph.consumers_of(tensor):
            continue
        if constant_inputs.find_uses(subgraph, tensor) or not decodable_axis(tensor):
            continue
        found.append(Candidate(index, tensor.name or f"tensor {index}", len(tensor.buffer.data)))
    return found


def decodable_axis(tensor: model_editor.Tensor) -> bool:
    """TFLM's decoders refuse a quantized dimension other than 0, or the last one with several scales."""
    quantization = tensor.quantization
    if quantization is None or not quantization.axis:
        return True
    scales = quantization.scales if isinstance(quantization.scales, list) else [quantization.scales]
    return quantization.axis == len(tensor.shape) - 1 and len(scales) > 1


def _shared_buffers(model: model_editor.Model) -> set[int]:
    seen: dict[int, int] = {}
    for tensor in model_editor.iter_tensors(model):
        if tensor.buffer is not None:
            seen[id(tensor.buffer)] = seen.get(id(tensor.buffer), 0) + 1
    return {buffer for buffer, users in seen.items() if users > 1}


def compress_tensors(model_bytes: bytes, methods: dict[int, spec.CompressionMethod]) -> bytes:
    """The model with each tensor (index in subgraph 0) encoded by its method and decoded by DECODE."""
    model = model_editor.read(model_bytes)
    subgraph = model.subgraphs[0]
    results = {
        (0, index): PLUGINS[type(method)].compress(subgraph.tensors[index], method)
        for index, method in sorted(methods.items())
    }
    if results:
        decode_insert.insert_decode_operators(model, results)
        _drop_stale_quantization(subgraph)
    return align(bytes(model.build()))


def _drop_stale_quantization(subgraph: model_editor.Subgraph) -> None:
    """Make the file agree with the editor where the editor says "no quantization".

    DECODE insertion sets an encoded tensor's quantization to None, but the editor then keeps the
    flatbuffer's original record, so the encoded uint8 bytes would carry the scales of the values
    they encode (per-channel scales along an axis the flat tensor does not have): dead flash, and a
    file that strict readers, tinyprune's included, rightly refuse. The decoded tensor keeps its copy."""
    for tensor in subgraph.tensors:
        if tensor.quantization is None and tensor._fb.quantization is not None:
            tensor._fb.quantization = None


def align(model_bytes: bytes) -> bytes:
    """The flatbuffer re-packed by TFLM's C++ aligner (it works on files only)."""
    with tempfile.TemporaryDirectory() as folder:
        unaligned, aligned = Path(folder, "in.tflite"), Path(folder, "out.tflite")
        unaligned.write_bytes(model_bytes)
        tflite_flatbuffer_align_wrapper.align_tflite_model(str(unaligned), str(aligned))
        return aligned.read_bytes()

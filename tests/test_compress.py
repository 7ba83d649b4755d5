"""TFLM compression: both formats round-trip exactly through TFLM's own DECODE kernel, the LUT mode
follows the quantization, and compressed models give byte-identical outputs on the host runtime."""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tflite_micro import compression
from tflite_micro.python.tflite_micro import runtime
from tflite_micro.tensorflow.lite.micro.compression import (
    model_editor,
    spec,
)
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tflite

import tinyprune  # noqa: F401
from tinyprune.compress import compress_for_tflm, compression_requirement
from tinyprune.compress.assemble import compress_tensors, decodable_axis
from tinyprune.compress.lut import decode_lut, lut_method, lut_mode
from tinyprune.compress.pruned import decode_pruned, encode_pruned
from tinyprune.graph.reader import read_graph
from tinyprune.verify.accuracy import int8_inputs, tflm_outputs

TFLITE_TYPES = {"int8": tflite.TensorType.INT8, "int16": tflite.TensorType.INT16,
                "int32": tflite.TensorType.INT32, "float32": tflite.TensorType.FLOAT32}


def constant_output_model(values: np.ndarray, quantization) -> bytes:
    """A one-tensor model whose output is the constant `values`: after compression TFLM's DECODE
    kernel is all that stands between the encoded bytes and the output."""
    dummy = model_editor.Tensor(shape=(1,), dtype=tflite.TensorType.INT8, name="x")
    constant = model_editor.Tensor(shape=values.shape, dtype=TFLITE_TYPES[values.dtype.name], data=values,
                                   quantization=quantization, name="w")
    subgraph = model_editor.Subgraph(tensors=[dummy, constant], inputs=[dummy], outputs=[constant])
    return bytes(model_editor.Model(subgraphs=[subgraph]).build())


def tflm_decoded(model: bytes) -> np.ndarray:
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 16)
    interpreter.set_input(np.zeros((1,), np.int8), 0)
    interpreter.invoke()
    return np.asarray(interpreter.get_output(0))


@st.composite
def quantized_tensors(draw, max_distinct=None):
    """(values, quantization): a random tensor with a random mask of zero points, quantized per tensor,
    per channel along axis 0 or the last axis, or not at all (float)."""
    dtype = draw(st.sampled_from(["int8", "int16", "int32", "float32"]))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=4)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scheme = "none" if dtype == "float32" else draw(st.sampled_from(["tensor", "axis0", "last"]))
    axis = {"tensor": None, "axis0": 0, "last": len(shape) - 1, "none": None}[scheme]
    channels = 1 if axis is None else shape[axis]
    zero_points = [0] * channels
    if dtype == "int8":
        zero_points = [int(z) for z in rng.integers(-128, 128, size=channels)]
    # the masked elements add each channel's zero point to its values
    palette_size = max_distinct - 1 if max_distinct else draw(st.integers(2, 300))
    palette = (rng.normal(size=palette_size) * 40).astype(dtype) if dtype == "float32" else \
        rng.integers(-128, 128, size=palette_size).astype(dtype)
    values = rng.choice(palette, size=shape)
    zeros = np.broadcast_to(np.asarray(zero_points).reshape(
        [-1 if d == axis else 1 for d in range(len(shape))]), shape)
    mask = rng.random(shape) < draw(st.floats(0.0, 1.0))
    values = np.where(mask, zeros.astype(dtype), values).astype(dtype)
    quantization = None if scheme == "none" else model_editor.Quantization(
        scales=[0.05] * channels, zero_points=zero_points, axis=axis)
    # TFLM's decoders refuse a one-channel quantization along a last axis other than 0 (candidates()
    # leaves such tensors as they are)
    assume(decodable_axis(model_editor.Tensor(shape=shape, quantization=quantization)))
    return values, quantization


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(quantized_tensors())
def test_pruned_format_round_trips_through_tflm(case):
    values, quantization = case
    zero_points = quantization.zero_points if quantization else [0]
    axis = quantization.axis if quantization else None
    bitmask, ancillary = encode_pruned(values, zero_points, axis)
    assert np.array_equal(decode_pruned(bitmask, ancillary, values.shape, values.dtype, zero_points, axis), values)
    model = constant_output_model(values, quantization)
    decoded = tflm_decoded(compress_tensors(model, {1: spec.PruningCompression()}))
    assert decoded.tobytes() == values.tobytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 7).flatmap(lambda bits: st.tuples(st.just(bits), quantized_tensors(max_distinct=max(2, 2**bits)))))
def test_lut_format_round_trips_through_tflm_at_every_index_width(case):
    bits, (values, quantization) = case
    tensor = model_editor.read(constant_output_model(values, quantization)).subgraphs[0].tensors[1]
    method = lut_method(tensor)
    assert method.index_bitwidth <= bits
    result = compression_plugin_result(tensor, method)
    assert np.array_equal(decode_lut(result.encoded_data, result.ancillary_data, values.shape, values.dtype), values)
    model = constant_output_model(values, quantization)
    assert tflm_decoded(compress_tensors(model, {1: method})).tobytes() == values.tobytes()


def compression_plugin_result(tensor, method):
    from tinyprune.compress.assemble import PLUGINS

    return PLUGINS[type(method)].compress(tensor, method)


def snapped(model_bytes: bytes, levels: int, zero_below: int) -> bytes:
    """The model with each int8 weight tensor cut to zero below `zero_below` and snapped to a grid:
    what clustering and pruning leave, without training."""
    model = model_editor.read(model_bytes)
    for tensor in model.subgraphs[0].tensors:
        if tensor.buffer is not None and tensor.buffer.data and tensor.dtype == tflite.TensorType.INT8:
            weights = tensor.array.astype(np.int32)
            weights[np.abs(weights) < zero_below] = 0
            step = 256 // levels
            tensor.array = np.clip(np.round(weights / step) * step, -128, 127).astype(np.int8)
    return bytes(model.build())


def test_lut_mode_follows_the_quantization_and_the_other_mode_is_silently_wrong(demo_int8_per_channel, digits_data):
    model = snapped(demo_int8_per_channel, levels=16, zero_below=0)
    weights = {i: t for i, t in enumerate(model_editor.read(model).subgraphs[0].tensors)
               if t.buffer is not None and t.buffer.data and t.dtype == tflite.TensorType.INT8 and len(t.shape) > 1}
    assert all(isinstance(lut_mode(t), spec.PerChannel) for t in weights.values())
    derived = {i: lut_method(t) for i, t in weights.items()}
    swapped = {i: spec.LookUpTableCompression(7, spec.PerTensor()) for i in weights}
    x = int8_inputs(read_graph(model), digits_data.x_test[:60])
    reference = tflm_outputs(model, x, output=None)
    assert np.array_equal(tflm_outputs(compress_tensors(model, derived), x, output=None), reference)
    assert not np.array_equal(tflm_outputs(compress_tensors(model, swapped), x, output=None), reference)


def test_lut_driver_matches_upstream_compress_without_its_stale_quantization(demo_int8_per_channel, digits_data):
    model = snapped(demo_int8_per_channel, levels=8, zero_below=0)
    tensors = model_editor.read(model).subgraphs[0].tensors
    methods = {i: lut_method(t) for i, t in enumerate(tensors)
               if t.buffer is not None and t.buffer.data and t.dtype == tflite.TensorType.INT8 and len(t.shape) > 1}
    builder = compression.SpecBuilder()
    for index, method in methods.items():
        builder.add_tensor(subgraph=0, tensor=index).with_lut(method.index_bitwidth, method.mode)
    ours, upstream = compress_tensors(model, methods), bytes(compression.compress(model, builder.build()))
    x = int8_inputs(read_graph(model), digits_data.x_test[:50])
    assert tflm_outputs(ours, x, output=None).tobytes() == tflm_outputs(upstream, x, output=None).tobytes()
    # upstream's encoded tensors still carry the per-channel scales of the values they encode
    assert len(ours) < len(upstream)
    encoded = [t for t in read_graph(ours).tensors if t.name.endswith(("MatMul", "Conv2D")) and t.dtype == "uint8"]
    assert len(encoded) == len(methods) and all(t.quantization is None for t in encoded)


def test_tensor_with_too_many_values_stays_as_it_is(demo_int8):
    tensors = model_editor.read(demo_int8).subgraphs[0].tensors
    dense_1 = next(t for t in tensors if t.name.endswith("dense_1/MatMul"))
    reason = lut_method(dense_1)
    assert isinstance(reason, str) and "7-bit index" in reason


@pytest.mark.parametrize("mode", ["lut", "prune", "auto"])
def test_compressed_demo_is_smaller_and_identical_on_tflm(demo_int8, digits_data, mode):
    model = snapped(demo_int8, levels=16, zero_below=24)
    compressed, report = compress_for_tflm(model, mode, digits_data.x_test)
    assert report["verified_samples"] == len(digits_data.x_test)
    assert len(compressed) == report["bytes_after"] < report["bytes_before"] == len(model)
    assert report["arena_cost"] > 0  # DECODE writes the decoded weights into the arena
    encodings = {t["encoding"] for t in report["tensors"]}
    assert encodings <= {"as is", {"lut": "lut", "prune": "pruned", "auto": "lut"}[mode], "pruned"}
    assert compression_requirement(read_graph(compressed)) is not None
    assert compression_requirement(read_graph(model)) is None


def test_auto_is_never_larger_than_either_format(demo_int8, digits_data):
    model = snapped(demo_int8, levels=4, zero_below=40)
    sizes = {mode: compress_for_tflm(model, mode, digits_data.x_test[:20])[1]["bytes_after"]
             for mode in ("lut", "prune", "auto")}
    assert sizes["auto"] <= min(sizes["lut"], sizes["prune"])


def test_unknown_mode_is_refused(demo_int8, digits_data):
    from tinyprune.errors import TinypruneError

    with pytest.raises(TinypruneError, match="huffman"):
        compress_for_tflm(demo_int8, "huffman", digits_data.x_test)


def test_runtime_without_decode_refuses_a_compressed_model(demo_int8, digits_data):
    from tinyprune.compress import check_compression_support
    from tinyprune.errors import TinypruneError
    from tinyprune.graph.runtimes import get_runtime

    compressed, _ = compress_for_tflm(snapped(demo_int8, levels=4, zero_below=0), "lut", digits_data.x_test[:10])
    with pytest.raises(TinypruneError, match="--tflm-compression none"):
        check_compression_support(read_graph(compressed), get_runtime("arduino"))
    check_compression_support(read_graph(demo_int8), get_runtime("arduino"))  # a plain model passes

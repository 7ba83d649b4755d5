"""The flatbuffer reader against LiteRT's view of the same file, on real converter output."""
import struct
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyprune.errors import TinypruneError
from tinyprune.graph.flatbuffer import root_table
from tinyprune.graph.reader import read_graph, read_graph_file

SLOW_FIXTURE = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def litert(model: bytes):
    """LiteRT without the XNNPACK delegate, so its op list is the file's."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    return interpreter


def mixed_ops_model():
    """DEPTHWISE_CONV_2D, CONV_2D, ADD (a residual), AVERAGE_POOL_2D, MUL, CONCATENATION, MEAN,
    FULLY_CONNECTED and SOFTMAX, with options that differ from the schema defaults."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    image = keras.Input((8, 8, 3), name="image")
    depthwise = layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, activation="relu6",
                                       name="depthwise")(image)
    pointwise = layers.Conv2D(6, 1, name="pointwise")(depthwise)
    residual = layers.Add(name="residual")([depthwise, pointwise])
    pooled = layers.AveragePooling2D(3, strides=1, name="avg_pool")(residual)
    joined = layers.Concatenate(name="joined")([pooled, pooled * 0.5])
    mean = layers.GlobalAveragePooling2D(name="gap")(joined)
    probabilities = layers.Dense(4, activation="softmax", name="probs")(mean)
    return keras.Model(image, probabilities)


@pytest.fixture(scope="module")
def mixed_ops_int8():
    from tinyprune.quantize import quantize_int8

    calibration = np.random.default_rng(0).random((20, 8, 8, 3), dtype=np.float32)
    return quantize_int8(mixed_ops_model(), calibration)


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["demo_int8", "demo_int8_per_channel"])
def test_demo_matches_litert(fixture, request):
    model = request.getfixturevalue(fixture)
    graph = read_graph(model)
    interpreter = litert(model)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}

    # LiteRT appends its kernels' temporaries after the file's tensors.
    assert set(range(len(graph.tensors))) <= set(details)
    for tensor in graph.tensors:
        assert tensor.name == details[tensor.index]["name"]
        assert tensor.shape == tuple(details[tensor.index]["shape"])
        assert np.dtype(tensor.dtype) == details[tensor.index]["dtype"]
        if tensor.is_constant:
            assert tensor.data == interpreter.get_tensor(tensor.index).tobytes()
            assert np.array_equal(tensor.numpy(), interpreter.get_tensor(tensor.index))

    ops = interpreter._get_ops_details()
    assert [op.opcode for op in graph.operators] == [op["op_name"] for op in ops]
    assert [op.inputs for op in graph.operators] == [tuple(op["inputs"]) for op in ops]
    assert [op.outputs for op in graph.operators] == [tuple(op["outputs"]) for op in ops]
    assert Counter(op.opcode for op in graph.operators) == {
        "CONV_2D": 2, "MAX_POOL_2D": 2, "RESHAPE": 1, "FULLY_CONNECTED": 2}

    for ours, theirs in [(graph.input_tensors()[0], interpreter.get_input_details()[0]),
                         (graph.output_tensors()[0], interpreter.get_output_details()[0])]:
        assert ours.index == theirs["index"]
        assert ours.dtype == "int8"
        assert ours.quantization.scale == (pytest.approx(theirs["quantization"][0], rel=1e-7),)
        assert ours.quantization.zero_point == (theirs["quantization"][1],)
    assert graph.input_tensors()[0].quantization.zero_point == (-128,)  # inputs scaled to [0, 1]

    assert graph.model_bytes == len(model)
    assert graph.version == 3
    assert graph.subgraph_count == 1
    assert "min_runtime_version" in graph.metadata_names
    assert graph.buffer_count > len([t for t in graph.tensors if t.is_constant])


@pytest.mark.slow
def test_dense_weight_quantization_follows_the_converter_switch(demo_int8, demo_int8_per_channel):
    def dense_weights(model):
        graph = read_graph(model)
        return [graph.tensors[op.inputs[1]] for op in graph.operators
                if op.opcode == "FULLY_CONNECTED"]

    assert [len(w.quantization.scale) for w in dense_weights(demo_int8)] == [1, 1]
    per_channel = dense_weights(demo_int8_per_channel)
    assert [len(w.quantization.scale) for w in per_channel] == [64, 10]
    assert all(w.quantization.axis == 0 and set(w.quantization.zero_point) == {0} for w in per_channel)
    # LiteRT reports per-channel parameters correctly for these: compare them too.
    interpreter = litert(demo_int8_per_channel)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    for weights in per_channel:
        expected = details[weights.index]["quantization_parameters"]["scales"]
        assert np.array(weights.quantization.scale, dtype=np.float32).tolist() == expected.tolist()


@pytest.mark.slow
def test_demo_options(demo_int8):
    graph = read_graph(demo_int8)
    conv_1, pool_1, conv_2, pool_2, reshape, dense_1, logits = graph.operators
    for conv in (conv_1, conv_2):
        assert conv.options["padding"] == "SAME"
        assert (conv.options["stride_w"], conv.options["stride_h"]) == (1, 1)
        assert conv.options["fused_activation_function"] == "RELU"
        assert (conv.options["dilation_w_factor"], conv.options["dilation_h_factor"]) == (1, 1)
    for pool in (pool_1, pool_2):
        assert pool.options == {"padding": "VALID", "stride_w": 2, "stride_h": 2, "filter_width": 2,
                                "filter_height": 2, "fused_activation_function": "NONE"}
    assert dense_1.options["fused_activation_function"] == "RELU"
    assert logits.options["fused_activation_function"] == "NONE"
    assert logits.options["keep_num_dims"] is False
    assert logits.options["weights_format"] == "DEFAULT"
    assert [graph.producer_layer(op) for op in graph.operators] == [
        "conv_1", "pool_1", "conv_2", "pool_2", "flatten", "dense_1", "logits"]


@pytest.mark.slow
def test_demo_lifetimes(demo_int8):
    """A chain: the input lives at step 0, each op's output from its step to the next, the graph
    output to the last step; constants have no lifetime."""
    graph = read_graph(demo_int8)
    activations = [op.outputs[0] for op in graph.operators]
    expected = {graph.inputs[0]: (0, 0)}
    expected.update({tensor: (step, step + 1) for step, tensor in enumerate(activations[:-1])})
    expected[activations[-1]] = (6, 6)
    assert graph.lifetimes() == expected


@pytest.mark.slow
def test_mixed_ops_options_and_lifetimes(mixed_ops_int8):
    graph = read_graph(mixed_ops_int8)
    interpreter = litert(mixed_ops_int8)
    assert [op.opcode for op in graph.operators] == [op["op_name"] for op in interpreter._get_ops_details()]
    assert [op.opcode for op in graph.operators] == [
        "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "AVERAGE_POOL_2D", "MUL", "CONCATENATION", "MEAN",
        "FULLY_CONNECTED", "SOFTMAX"]
    by_name = {op.opcode: op for op in graph.operators}
    assert by_name["DEPTHWISE_CONV_2D"].options == {
        "padding": "VALID", "stride_w": 2, "stride_h": 2, "depth_multiplier": 2,
        "fused_activation_function": "RELU6", "dilation_w_factor": 1, "dilation_h_factor": 1}
    assert by_name["AVERAGE_POOL_2D"].options == {
        "padding": "VALID", "stride_w": 1, "stride_h": 1, "filter_width": 3, "filter_height": 3,
        "fused_activation_function": "NONE"}
    assert by_name["ADD"].options == {"fused_activation_function": "NONE", "pot_scale_int16": True}
    assert by_name["CONCATENATION"].options == {"axis": 3, "fused_activation_function": "NONE"}
    assert by_name["MEAN"].options == {"keep_dims": False}
    assert by_name["SOFTMAX"].options == {"beta": 1.0}
    assert by_name["FULLY_CONNECTED"].inputs[2] == -1  # the softmax Dense lost its zero bias
    assert graph.producer_layer(by_name["ADD"]) == "residual"

    # The depthwise output feeds the pointwise conv (step 1) and the residual ADD (step 2); the
    # pooled tensor feeds MUL (step 4) and CONCATENATION (step 5).
    lifetimes = graph.lifetimes()
    assert lifetimes[by_name["DEPTHWISE_CONV_2D"].outputs[0]] == (0, 2)
    assert lifetimes[by_name["AVERAGE_POOL_2D"].outputs[0]] == (3, 5)
    assert lifetimes[graph.outputs[0]] == (8, 8)
    assert all(not graph.tensors[i].is_constant for i in lifetimes)


@pytest.mark.slow
def test_buffers_stored_after_the_flatbuffer(tmp_path):
    """Models over 2 GB keep buffers outside the flatbuffer (Buffer.offset/size from the file start);
    the converter writes that layout on request, so a small model exercises it."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name="dense")])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter._experimental_use_buffer_offset = True
    flatbuffer = converter.convert()
    path = tmp_path / "offset.tflite"
    path.write_bytes(flatbuffer)

    graph = read_graph_file(path)
    offsets = [b.scalar(1, "Q", 0) for b in root_table(flatbuffer, "Model").tables(4, "buffers")]
    assert max(offsets) > 1  # the layout under test really is used
    weights = [t for t in graph.tensors if t.is_constant]
    assert weights
    interpreter = litert(flatbuffer)
    for tensor in weights:
        assert np.array_equal(tensor.numpy(), interpreter.get_tensor(tensor.index))
    assert tuple(weights[0].shape) == (4, 8)
    assert np.array_equal(weights[0].numpy().T, model.get_layer("dense").kernel.numpy())


@pytest.mark.slow
def test_float_model_dtypes(tmp_path):
    import tensorflow as tf
    import tf_keras as keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    graph = read_graph(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    assert {t.dtype for t in graph.tensors} == {"float32"}
    assert graph.input_tensors()[0].quantization is None


# --- bad input -------------------------------------------------------------------------------


def test_empty_file(tmp_path):
    path = tmp_path / "empty.tflite"
    path.write_bytes(b"")
    with pytest.raises(TinypruneError, match="empty"):
        read_graph_file(path)


def test_not_bytes():
    with pytest.raises(TinypruneError, match="read_graph_file"):
        read_graph("model.tflite")
    with pytest.raises(TinypruneError, match="got a float"):
        read_graph(1.5)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(TinypruneError, match="does not exist"):
        read_graph_file(tmp_path / "nope.tflite")
    with pytest.raises(TinypruneError, match="is a folder"):
        read_graph_file(tmp_path)


@pytest.mark.slow
def test_truncated_file(demo_int8):
    for length in (3, 7, 100, len(demo_int8) // 2, len(demo_int8) - 1000):
        with pytest.raises(TinypruneError, match="truncated|too short") as error:
            read_graph(demo_int8[:length])
        assert "\n" not in str(error.value) and error.value.fix


@pytest.mark.slow
def test_wrong_identifier(demo_int8):
    with pytest.raises(TinypruneError, match=r"not a TFLite flatbuffer .*b'TFL2'"):
        read_graph(demo_int8[:4] + b"TFL2" + demo_int8[8:])
    with pytest.raises(TinypruneError, match="not a TFLite flatbuffer"):
        read_graph(b"PK\x03\x04" + bytes(100))  # a .keras file is a zip


@pytest.mark.slow
def test_absurd_vector_length(demo_int8):
    """A tensor count of 2^31 must be refused before anything is allocated."""
    subgraph = root_table(demo_int8, "Model").tables(2, "subgraphs")[0]
    slot = subgraph._field_position(0, 4)
    vector = slot + struct.unpack_from("<I", demo_int8, slot)[0]
    corrupt = bytearray(demo_int8)
    struct.pack_into("<I", corrupt, vector, 2**31)
    with pytest.raises(TinypruneError, match=r"tensors \(2147483648 elements\)"):
        read_graph(bytes(corrupt))


def _read_or_refuse(model: bytes) -> None:
    """The reader's contract on any bytes: a Graph, or TinypruneError; nothing else escapes."""
    try:
        graph = read_graph(model)
    except TinypruneError as error:
        assert error.problem and error.fix and "\n" not in str(error)
        return
    for tensor in graph.tensors:  # what it accepted is consistent enough for every later stage
        if tensor.is_constant:
            tensor.numpy()
    graph.lifetimes()
    graph.op_names
    for op in graph.operators:
        graph.producer_layer(op)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=SLOW_FIXTURE)
@given(data=st.data())
def test_mutated_bytes_never_crash(demo_int8, data):
    corrupt = bytearray(demo_int8)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(corrupt) - 1))
        corrupt[position] = data.draw(st.integers(0, 255))
    _read_or_refuse(bytes(corrupt))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=SLOW_FIXTURE)
@given(data=st.data())
def test_mutated_offsets_never_crash(demo_int8, data):
    """Offsets and lengths are 4-byte words: set aligned words to extreme or nearby values."""
    corrupt = bytearray(demo_int8)
    for _ in range(data.draw(st.integers(1, 3))):
        position = 4 * data.draw(st.integers(0, len(corrupt) // 4 - 1))
        value = data.draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])
                          | st.integers(0, 2**32 - 1))
        struct.pack_into("<I", corrupt, position, value)
    _read_or_refuse(bytes(corrupt))


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=SLOW_FIXTURE)
@given(length=st.integers(0, 30000))
def test_truncations_never_crash(demo_int8, length):
    _read_or_refuse(demo_int8[:length])

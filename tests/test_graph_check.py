"""The op check against each target runtime, on real converter output; where TFLM can be asked
(the host package), its verdict is compared with TFLM's own."""
import shutil
import subprocess

import numpy as np
import pytest

from tinyprune.errors import TinypruneError
from tinyprune.graph.check import check_graph
from tinyprune.graph.reader import read_graph
from tinyprune.graph.runtimes import (
    ARDUINO_LIBRARY, TFLM_PACKAGE, get_runtime, runtime_names)


def attention_scores_model(projection: str):
    """Keras's Dot layer between two projections of a sequence: BATCH_MATMUL, which TFLM gained
    after January 2023. Dense projections of a 3-D input also bring dynamic-shape ops."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    sequence = keras.Input((6, 4), name="sequence")
    if projection == "conv":
        query = layers.Conv1D(4, 1, name="query")(sequence)
        key = layers.Conv1D(4, 1, name="key")(sequence)
    else:
        query = layers.Dense(4, name="query")(sequence)
        key = layers.Dense(4, name="key")(sequence)
    scores = layers.Dot(axes=(2, 2), name="scores")([query, key])
    logits = layers.Dense(3, name="logits")(layers.Flatten(name="flatten")(scores))
    return keras.Model(sequence, logits)


def int8(model, input_shape):
    from tinyprune.quantize import quantize_int8

    return quantize_int8(model, np.random.default_rng(0).random((20, *input_shape), dtype=np.float32))


def tflm_runs(model: bytes) -> bool:
    """Whether the real TFLM interpreter (the tflite-micro package) allocates and invokes the model."""
    from tflite_micro.python.tflite_micro import runtime

    try:
        interpreter = runtime.Interpreter.from_bytes(model, arena_size=200_000)
    except RuntimeError:
        return False
    interpreter.invoke()
    return True


@pytest.mark.slow
@pytest.mark.parametrize("runtime_name", ["tflm", "arduino"])
def test_demo_passes(demo_int8, runtime_name):
    check = check_graph(read_graph(demo_int8), get_runtime(runtime_name))
    assert check.runtime.name == runtime_name
    assert [(op.name, op.count, op.supported) for op in check.ops] == [
        ("CONV_2D", 2, True), ("FULLY_CONNECTED", 2, True), ("MAX_POOL_2D", 2, True),
        ("RESHAPE", 1, True)]
    assert check.resolver_methods == ["AddConv2D", "AddFullyConnected", "AddMaxPool2D", "AddReshape"]


@pytest.mark.slow
def test_per_channel_dense_rejected_for_the_arduino_library(demo_int8_per_channel):
    graph = read_graph(demo_int8_per_channel)
    with pytest.raises(TinypruneError, match=r"'dense_1' has per-channel FULLY_CONNECTED weights "
                                             r"\(64 scales\)") as error:
        check_graph(graph, get_runtime("arduino"))
    assert "per_channel_dense=False" in error.value.fix
    assert check_graph(graph, get_runtime("tflm")).resolver_methods[1] == "AddFullyConnected"


@pytest.mark.slow
def test_op_added_after_january_2023_rejected_for_the_arduino_library():
    model = int8(attention_scores_model("conv"), (6, 4))
    graph = read_graph(model)
    assert "BATCH_MATMUL" in graph.op_names

    with pytest.raises(TinypruneError, match=r"lacks BATCH_MATMUL \(from layer 'scores'\)") as error:
        check_graph(graph, get_runtime("arduino"))
    assert "January 2023" in error.value.problem
    assert "tflm" in error.value.fix  # the runtime that has it

    check = check_graph(graph, get_runtime("tflm"))
    assert {op.name: op.resolver_method for op in check.ops}["BATCH_MATMUL"] == "AddBatchMatMul"
    assert tflm_runs(model)  # and current TFLM agrees


@pytest.mark.slow
def test_op_no_tflm_has_is_rejected_for_both_and_tflm_agrees():
    """Dense on a 3-D input converts with dynamic-shape ops; TFLM has no REDUCE_PROD."""
    model = int8(attention_scores_model("dense"), (6, 4))
    graph = read_graph(model)
    for runtime_name in runtime_names():
        with pytest.raises(TinypruneError, match=r"REDUCE_PROD \(from layer 'key'\)") as error:
            check_graph(graph, get_runtime(runtime_name))
        assert "runtimes: none" in error.value.fix
    assert not tflm_runs(model)


@pytest.mark.slow
def test_float_model_rejected():
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,), name="features"), keras.layers.Dense(4, name="dense")])
    graph = read_graph(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    for runtime_name in runtime_names():
        with pytest.raises(TinypruneError, match="input .* is float32, not int8") as error:
            check_graph(graph, get_runtime(runtime_name))
        assert error.value.fix.startswith("convert with full-integer quantization")
        assert "tinyprune targets full-integer" in error.value.problem


@pytest.mark.slow
def test_hybrid_model_rejected():
    """Dynamic-range quantization: int8 weights, float activations; TFLM has no hybrid kernels."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, name="dense")])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    graph = read_graph(converter.convert())
    with pytest.raises(TinypruneError, match=r"'dense' is a hybrid FULLY_CONNECTED"):
        check_graph(graph, TFLM_PACKAGE)


def test_unknown_runtime_lists_the_names():
    with pytest.raises(TinypruneError, match="unknown target runtime 'esp32'") as error:
        get_runtime("esp32")
    assert "arduino" in error.value.fix and "tflm" in error.value.fix


def test_runtime_tables():
    assert set(ARDUINO_LIBRARY.ops) < set(TFLM_PACKAGE.ops)
    assert set(TFLM_PACKAGE.ops) - set(ARDUINO_LIBRARY.ops) == {
        "BATCH_MATMUL", "EMBEDDING_LOOKUP", "REDUCE_MIN", "REVERSE_V2", "TFLM_DECODE"}
    assert not ARDUINO_LIBRARY.per_channel_fully_connected and TFLM_PACKAGE.per_channel_fully_connected
    assert "mbed_nano" in ARDUINO_LIBRARY.arduino_architectures
    assert TFLM_PACKAGE.arduino_architectures == ()
    from tinyprune.graph.reader import BUILTIN_OPERATORS

    for runtime in (TFLM_PACKAGE, ARDUINO_LIBRARY):
        assert set(runtime.ops) - {"TFLM_DECODE"} <= set(BUILTIN_OPERATORS)  # DECODE: a custom operator
        assert all(method.startswith("Add") for method in runtime.ops.values())


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs binutils' nm")
def test_tflm_package_has_a_kernel_for_every_op_we_claim():
    """Our 'tflm' table against the installed package: each op has its Register_<OP> kernel."""
    from importlib.util import find_spec
    from pathlib import Path

    library = next(Path(find_spec("tflite_micro").origin).parent.rglob("_runtime*.so"))
    symbols = subprocess.run(["nm", "-C", str(library)], capture_output=True, text=True,
                             check=True).stdout
    kernel = {"TFLM_DECODE": "DECODE"}  # the custom operator's registration
    missing = [op for op in TFLM_PACKAGE.ops if f"Register_{kernel.get(op, op)}()" not in symbols]
    assert missing == []

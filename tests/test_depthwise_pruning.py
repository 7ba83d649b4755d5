"""Every prunable layer is pruned or named: depthwise and separable convolutions through our own
PrunableLayer (TF-MOT 0.8.1's registry prunes no depthwise weight), layers TF-MOT cannot prune named in
the prune line, a --layer-sparsity that cannot apply refused; the standalone depthwise kernel computes
from the sparse form, byte-identical to TFLM."""
import numpy as np
import pytest

from tinyprune.config import BuildConfig
from tinyprune.errors import TinypruneError


def _small_dataset(shape, classes, samples=96, seed=0):
    from tinyprune.io.data import Dataset

    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(samples,) + shape).astype(np.float32)
    y = rng.integers(0, classes, samples)
    split = 2 * samples // 3
    return Dataset("random", x[:split], y[:split], x[split:], y[split:])


def _mixed_model():
    """A convolution, a depthwise and a separable convolution, a layer TF-MOT cannot prune, a dense head."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    inputs = keras.Input((12, 12, 3))
    x = layers.Conv2D(8, 3, name="conv")(inputs)
    x = layers.DepthwiseConv2D(3, name="dw")(x)
    x = layers.SeparableConv2D(8, 3, name="sep")(x)
    x = layers.Flatten()(x)
    x = layers.EinsumDense("ab,bc->ac", output_shape=16, name="einsum")(x)
    return keras.Model(inputs, layers.Dense(4, activation="softmax", name="head")(x))


@pytest.mark.slow
def test_depthwise_and_separable_kernels_reach_their_target_and_the_rest_is_named():
    from tinyprune.prune.magnitude import magnitude_prune
    from tinyprune.stages import Pruned, describe_prune
    from tinyprune.verify.accuracy import Score

    model, data = _mixed_model(), _small_dataset((12, 12, 3), 4)
    result = magnitude_prune(model, data, 0.75, {"conv": 0.0, "dw": 0.9}, epochs=2)
    achieved = result.details["achieved_sparsity"]
    assert achieved["dw"] == pytest.approx(0.9, abs=0.02)  # 72 weights: 65 zeros
    assert achieved["sep"] == pytest.approx(0.75, abs=0.01)  # both of its kernels
    assert achieved["head"] == pytest.approx(0.75, abs=0.01)
    assert achieved["conv"] == 0.0 and achieved["einsum"] == 0.0
    assert result.details["not_pruned"] == {"einsum": "TF-MOT cannot prune EinsumDense", "conv": "--layer-sparsity 0"}
    # the pruned model holds plain tf_keras layers again: it saves and loads without tinyprune
    assert [type(layer).__name__ for layer in result.model.layers[1:4]] == ["Conv2D", "DepthwiseConv2D",
                                                                           "SeparableConv2D"]
    assert type(result.model.get_layer("dw")).__module__.startswith("tf_keras")
    line = describe_prune(Pruned(result, Score("pruned", "accuracy", 0.25, 32), data))
    assert "; not pruned: einsum (TF-MOT cannot prune EinsumDense), conv (--layer-sparsity 0);" in line
    with pytest.raises(TinypruneError, match="einsum, which magnitude pruning cannot prune") as error:
        magnitude_prune(model, data, 0.5, {"einsum": 0.5}, epochs=1)
    assert "prunable layers: conv, dw, sep, head" in error.value.fix
    two_of_four = magnitude_prune(model, data, 0.5, m_by_n=(2, 4), epochs=1)
    assert "dw" in two_of_four.details["not_pruned"]


def test_layer_sparsity_is_refused_where_no_magnitude_pruning_runs():
    for options in ({"method": "lottery"}, {"method": "lassonet"}, {"m_by_n": "2:4"}):
        with pytest.raises(TinypruneError, match="--layer-sparsity does not apply"):
            BuildConfig(layer_sparsity={"dense_1": 0.9}, **options).validate()
    BuildConfig(layer_sparsity={"dense_1": 0.9}, method="structured").validate()


@pytest.mark.slow
def test_ds_cnn_at_75_percent_prunes_every_depthwise_layer_and_equals_tflm(tmp_path):
    """The issue's acceptance test: a DS-CNN built with --sparsity 0.75 --backend standalone, its weights
    stored smallest (the default `fast` keeps a pruned depthwise layer dense, which is faster: the
    committed ds_cnn_kws_pruned fixture's figures)."""
    import tinyprune.api as tp
    from tinyprune.graph.reader import read_graph
    from tinyprune.zoo import ds_cnn_kws, _keras

    _keras().utils.set_random_seed(0)
    ds_cnn_kws().save(tmp_path / "ds_cnn.keras")
    data = _small_dataset((49, 10, 1), 12)
    np.savez(tmp_path / "data.npz", x_train=data.x_train, y_train=data.y_train, x_test=data.x_test,
             y_test=data.y_test)
    result = tp.build(model=str(tmp_path / "ds_cnn.keras"), data=str(tmp_path / "data.npz"), backend="standalone",
                      sparsity=0.75, fine_tune_epochs=2, calibration_samples=32, weight_storage="smallest",
                      out=str(tmp_path / "out"))
    report = result.report
    achieved = report["prune"]["details"]["achieved_sparsity"]
    depthwise = [name for name in achieved if name.startswith("dw_")]
    assert len(depthwise) == 4 and report["prune"]["details"]["not_pruned"] == {}
    for name in depthwise:
        assert achieved[name] == pytest.approx(0.75, abs=0.02)
    graph = read_graph((tmp_path / "out" / "model.tflite").read_bytes())
    filters = [graph.tensors[op.inputs[1]].numpy() for op in graph.operators if op.opcode == "DEPTHWISE_CONV_2D"]
    assert len(filters) == 4
    for weights in filters:  # the int8 weights the board stores
        assert np.count_nonzero(weights == 0) / weights.size == pytest.approx(0.75, abs=0.02)
    standalone = report["standalone"]
    layers = [layer for layer in standalone["model"]["layers"] if layer["op"] == "DEPTHWISE_CONV_2D"]
    assert len(layers) == 4
    for layer in layers:
        assert layer["format"] == "bitmask" and layer["stored_bytes"] < layer["dense_bytes"]
        assert layer["macs_skipped"] == pytest.approx(0.75 * layer["macs"], rel=0.03)
    assert standalone["host_differing_bytes"] == 0
    assert standalone["qemu"]["differing_bytes"] == 0 and standalone["qemu"]["samples"] > 0

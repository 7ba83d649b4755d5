"""Structured pruning and compaction: the rebuilt model computes what the masked original computes,
through BatchNorm, Flatten, DepthwiseConv2D, residual ADD and Concatenate; and on digits it really
shrinks the int8 model."""
import numpy as np
import pytest

import tinyprune  # noqa: F401
from tinyprune.errors import TinypruneError


def _keras():
    import tf_keras as keras

    return keras, keras.layers


def _randomise_batchnorm(model, rng):
    """Trained-looking BatchNorm statistics, so that BN is no identity and its slicing is tested."""
    _, layers = _keras()
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.3, beta.shape),
                               rng.normal(0, 0.3, mean.shape), rng.uniform(0.5, 1.5, variance.shape)])
    return model


def residual_model(rng):
    """Conv-BN-ReLU, a two-conv branch added back (residual ADD), a Concatenate with a third conv,
    global pooling and two Dense layers."""
    keras, layers = _keras()
    keras.utils.set_random_seed(1)
    image = keras.Input((8, 8, 3))
    stem = layers.Conv2D(8, 3, padding="same", name="stem")(image)
    stem = layers.ReLU()(layers.BatchNormalization(name="bn_stem")(stem))
    branch = layers.Conv2D(6, 3, padding="same", activation="relu", name="branch_a")(stem)
    branch = layers.Conv2D(8, 3, padding="same", name="branch_b")(branch)
    added = layers.Add(name="add")([stem, branch])
    side = layers.Conv2D(5, 1, activation="relu", name="side")(added)
    joined = layers.Concatenate(name="concat")([added, side])
    pooled = layers.GlobalAveragePooling2D()(layers.Conv2D(7, 3, name="head_conv")(joined))
    hidden = layers.Dense(12, activation="relu", name="hidden")(pooled)
    return _randomise_batchnorm(keras.Model(image, layers.Dense(4, name="out")(hidden)), rng)


def depthwise_model(rng):
    """Conv-BN, a depthwise conv with channel multiplier 2, BN, a pointwise conv, Flatten, Dense."""
    keras, layers = _keras()
    keras.utils.set_random_seed(2)
    image = keras.Input((6, 6, 2))
    x = layers.BatchNormalization(name="bn_1")(layers.Conv2D(8, 3, padding="same", name="conv")(image))
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="depthwise")(layers.ReLU()(x))
    x = layers.ReLU()(layers.BatchNormalization(name="bn_2")(x))
    x = layers.Conv2D(10, 1, activation="relu", name="pointwise")(x)
    x = layers.Flatten()(layers.MaxPooling2D(2)(x))
    return _randomise_batchnorm(keras.Model(image, layers.Dense(3, name="out")(x)), rng)


def _random_half(graph, rng) -> dict:
    return {group: np.sort(rng.choice(graph.groups[group].size, graph.groups[group].size // 2, replace=False))
            for group in graph.prunable_groups()}


def _compare(model, rng, input_shape):
    from tinyprune.prune.compaction import channel_graph, compact, masked_copy

    graph = channel_graph(model)
    keep = _random_half(graph, rng)
    smaller, masked = compact(model, graph, keep), masked_copy(model, graph, keep)
    x = rng.normal(size=(16, *input_shape)).astype(np.float32)
    np.testing.assert_allclose(smaller(x).numpy(), masked(x).numpy(), rtol=1e-5, atol=1e-5)
    assert np.abs(masked(x).numpy() - model(x).numpy()).max() > 1e-2  # the mask did remove something
    return graph, keep, smaller


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_residual_add_and_concatenate_compact_to_the_masked_model(rng):
    model = residual_model(rng)
    graph, keep, smaller = _compare(model, rng, (8, 8, 3))
    tied = {tuple(sorted(graph.groups[g].producers)) for g in graph.prunable_groups()}
    assert ("branch_b", "stem") in tied  # the ADD makes both lose the same channels
    stem_kept = len(keep[graph.group_of("stem")])
    assert smaller.get_layer("stem").filters == smaller.get_layer("branch_b").filters == stem_kept
    assert smaller.get_layer("bn_stem").get_weights()[0].shape == (stem_kept,)
    side_kept = len(keep[graph.group_of("side")])
    # the conv after the Concatenate reads the kept stem channels, then the kept side channels
    assert smaller.get_layer("head_conv").kernel.shape[2] == stem_kept + side_kept
    assert smaller.count_params() < model.count_params() / 2


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_depthwise_conv_compacts_with_its_input_channels(rng):
    model = depthwise_model(rng)
    graph, keep, smaller = _compare(model, rng, (6, 6, 2))
    kept = len(keep[graph.group_of("conv")])
    assert smaller.get_layer("depthwise").depthwise_kernel.shape == (3, 3, kept, 2)
    assert smaller.get_layer("bn_2").get_weights()[0].shape == (2 * kept,)
    assert smaller.get_layer("pointwise").kernel.shape[2] == 2 * kept
    pointwise_kept = len(keep[graph.group_of("pointwise")])
    assert smaller.get_layer("out").kernel.shape[0] == 3 * 3 * pointwise_kept  # Flatten: 3x3 positions


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_flatten_keeps_rows_at_every_position_in_a_sequential_model(rng):
    from tinyprune.demo import demo_cnn
    from tinyprune.prune.compaction import channel_graph, compact

    model = demo_cnn()
    graph, keep, smaller = _compare(model, rng, (8, 8, 1))
    assert type(smaller) is type(model)
    conv_kept = keep[graph.group_of("conv_2")]
    rows = [position * 32 + channel for position in range(4) for channel in conv_kept]
    kept_units = keep[graph.group_of("dense_1")]
    np.testing.assert_array_equal(smaller.get_layer("dense_1").kernel.numpy(),
                                  model.get_layer("dense_1").kernel.numpy()[rows][:, kept_units])
    assert compact(model, channel_graph(model), {}).count_params() == model.count_params()


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_channels_the_input_output_or_an_unknown_layer_touch_stay_whole():
    keras, layers = _keras()
    from tinyprune.prune.compaction import channel_graph

    features = keras.Input((8, 4))
    same_width = layers.Conv1D(4, 3, padding="same", name="tied_to_input")(features)
    x = layers.Add()([features, same_width])
    x = layers.Conv1D(6, 3, name="before_reshape")(x)
    x = layers.Reshape((6, 6))(x)
    x = layers.Conv1D(5, 3, name="free")(x)
    x = layers.Dense(3, name="out")(layers.Flatten()(x))
    graph = channel_graph(keras.Model(features, x))
    prunable = {p for g in graph.prunable_groups() for p in graph.groups[g].producers}
    assert prunable == {"free"}
    assert graph.groups[graph.group_of("tied_to_input")].frozen_by == "the model input"
    assert "Reshape" in graph.groups[graph.group_of("before_reshape")].frozen_by
    assert graph.groups[graph.group_of("out")].frozen_by == "the model output"


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_count_macs_and_sparsity_follow_the_layers():
    keras, layers = _keras()
    from tinyprune.demo import demo_cnn
    from tinyprune.prune.result import count_macs, kernel_weight_counts, weight_sparsity

    assert count_macs(demo_cnn()) == 8 * 8 * 9 * 16 + 4 * 4 * 9 * 16 * 32 + 128 * 64 + 64 * 10 == 91_776
    signal = keras.Input((20, 3))
    x = layers.Conv1D(4, 5, strides=2, name="c1d")(signal)  # 8 positions
    image = layers.Reshape((8, 4, 1))(x)
    y = layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(image)  # 6x2 positions, 1 -> 2 channels
    y = layers.SeparableConv2D(3, (1, 2), name="sep")(y)  # 6x1 positions
    model = keras.Model(signal, layers.Dense(2, name="d")(layers.Flatten()(y)))
    expected = 8 * 5 * 3 * 4 + 12 * 9 * 2 + 6 * (1 * 2 * 2 + 2 * 3) + 18 * 2
    assert count_macs(model) == expected
    kernel = model.get_layer("d").kernel
    kernel.assign(np.where(np.arange(36).reshape(18, 2) % 4 == 0, 0.0, 1.0))
    assert weight_sparsity(model)["d"] == pytest.approx(9 / 36)
    nonzero, total = kernel_weight_counts(model)
    assert total == 5 * 3 * 4 + 9 * 2 + 2 * 2 + 2 * 3 + 36 and nonzero == total - 9


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_l1_ranking_keeps_the_strongest_filters(trained_demo, digits_data):
    from tinyprune.prune.structured import structured_prune

    result = structured_prune(trained_demo, digits_data, layer_ratios={"conv_2": 0.5, "dense_1": 0.75},
                              fine_tune_epochs=0)
    layers = result.details["layers"]
    assert (layers["conv_1"]["units_after"], layers["conv_2"]["units_after"], layers["dense_1"]["units_after"]) \
        == (16, 16, 16)
    norms = np.abs(trained_demo.get_layer("conv_2").kernel.numpy()).reshape(-1, 32).sum(axis=0)
    kept_norms = np.abs(result.model.get_layer("conv_2").kernel.numpy()).reshape(-1, 16).sum(axis=0)
    np.testing.assert_allclose(np.sort(kept_norms), np.sort(norms)[16:], rtol=1e-6)
    assert result.details["macs_after"] == 8 * 8 * 9 * 16 + 4 * 4 * 9 * 16 * 16 + 64 * 16 + 16 * 10
    assert trained_demo.get_layer("conv_2").filters == 32  # the caller's model is untouched


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_sensitivity_scan_prunes_robust_layers_harder(trained_demo, digits_data):
    from tinyprune.prune.structured import SCAN_RATIOS, structured_prune

    result = structured_prune(trained_demo, digits_data, ratio=0.5, sensitivity_scan=True, fine_tune_epochs=0)
    layers, curves = result.details["layers"], result.details["sensitivity"]
    removed = sum(v["units_before"] - v["units_after"] for v in layers.values())
    assert removed >= 0.5 * (16 + 32 + 64) - 1
    assert all(len(curve) == len(SCAN_RATIOS) for curve in curves.values())
    drop_at_half = {name: curve[0][1] - curve[5][1] for name, curve in curves.items()}
    robust, fragile = min(drop_at_half, key=drop_at_half.get), max(drop_at_half, key=drop_at_half.get)
    assert layers[robust]["ratio"] > layers[fragile]["ratio"]


@pytest.mark.parametrize("arguments, message", [
    ({"ratio": 0.5, "layer_ratios": {"conv_1": 0.5}}, "either one global ratio"),
    ({}, "either one global ratio"),
    ({"layer_ratios": {"conv_1": 0.5}, "sensitivity_scan": True}, "spreads one global ratio"),
    ({"ratio": 1.0}, "outside [0, 1)"),
    ({"ratio": 0.5, "criterion": "l2"}, "unknown structured pruning criterion"),
    ({"layer_ratios": {"logits": 0.5}}, "logits keeps all units because of the model output"),
    ({"layer_ratios": {"pool_1": 0.5}}, "cannot prune layer(s) pool_1"),
])
@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_bad_arguments_are_refused_with_a_fix(trained_demo, digits_data, arguments, message):
    from tinyprune.prune.structured import structured_prune

    with pytest.raises(TinypruneError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        structured_prune(trained_demo, digits_data, fine_tune_epochs=0, **arguments)


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_subclassed_models_are_refused():
    keras, layers = _keras()
    from tinyprune.prune.compaction import channel_graph

    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    model = Tiny()
    model(np.zeros((1, 4), np.float32))
    with pytest.raises(TinypruneError, match="not a functional or Sequential model"):
        channel_graph(model)


@pytest.mark.slow
def test_digits_structured_halves_bytes_and_macs_within_a_point_in_tflm(digits_data):
    """The issue's bar: >= 2x fewer int8 TFLite bytes and MACs than the dense model, <= 1 point of
    TFLM accuracy lost."""
    from tinyprune.demo import DEMO_EPOCHS, demo_cnn
    from tinyprune.graph.reader import read_graph
    from tinyprune.prune.result import count_macs
    from tinyprune.prune.structured import structured_prune
    from tinyprune.quantize import quantize_int8, representative_samples
    from tinyprune.train import compile_for_task, fit, seed_everything
    from tinyprune.verify.accuracy import int8_inputs, int8_outputs_to_float, score, tflm_outputs
    from tinyprune.verify.arena import find_arena

    def tflm(model) -> tuple[int, float, int]:
        tflite = quantize_int8(model, representative_samples(digits_data.x_train, 100, seed=0))
        graph, arena = read_graph(tflite), find_arena(tflite).aligned16
        outputs = tflm_outputs(tflite, int8_inputs(graph, digits_data.x_test), arena)
        accuracy = score(int8_outputs_to_float(graph, outputs), digits_data.y_test, "classification", "tflm")
        return len(tflite), accuracy.value, arena

    seed_everything(0)
    dense = compile_for_task(demo_cnn(), "classification")
    fit(dense, digits_data.x_train, digits_data.y_train, DEMO_EPOCHS, 32, "train")
    pruned = structured_prune(dense, digits_data, ratio=0.5, fine_tune_epochs=30, seed=0).model
    (dense_bytes, dense_accuracy, dense_arena), (bytes_, accuracy, arena) = tflm(dense), tflm(pruned)
    assert dense_bytes >= 2 * bytes_
    assert count_macs(dense) >= 2 * count_macs(pruned)
    assert accuracy >= dense_accuracy - 0.01
    assert arena < dense_arena

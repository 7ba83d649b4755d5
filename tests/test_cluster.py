"""Clustering keeps k values per kernel, through per-tensor int8 conversion, into TFLM's LUT format."""
import numpy as np
import pytest

import tinyprune  # noqa: F401
from tinyprune.errors import TinypruneError
from tinyprune.graph.reader import read_graph
from tinyprune.prune.cluster import cluster, int8_distinct_values
from tinyprune.quantize import quantize_int8
from tinyprune.quantize import representative_samples


@pytest.fixture(scope="module")
def clustered_demo(trained_demo, digits_data):
    return cluster(trained_demo, digits_data, clusters=4, epochs=1, layer_clusters={"logits": 8})


@pytest.mark.slow
def test_clustering_keeps_k_values_per_kernel(clustered_demo, trained_demo):
    assert clustered_demo.method == "cluster"
    assert clustered_demo.details["kernel_clusters"] == {"conv_1": 4, "conv_2": 4, "dense_1": 4, "logits": 8}
    assert not any("cluster" in w.name for w in clustered_demo.model.weights)  # wrappers stripped
    assert len(np.unique(trained_demo.get_layer("dense_1").kernel.numpy())) > 1000  # caller's model untouched


@pytest.mark.slow
def test_per_tensor_int8_keeps_exactly_k_values_and_per_channel_does_not(clustered_demo, digits_data):
    calibration = representative_samples(digits_data.x_train, 100, seed=0)
    per_tensor = int8_distinct_values(read_graph(quantize_int8(clustered_demo.model, calibration, per_channel=False)))
    per_channel = int8_distinct_values(read_graph(quantize_int8(clustered_demo.model, calibration)))
    expected = {"conv_1": 4, "conv_2": 4, "dense_1": 4, "logits": 8}
    assert {row["tensor"].split("/")[1]: row["distinct"] for row in per_tensor} == expected
    assert all(not row["per_channel"] for row in per_tensor)
    layer = {row["tensor"]: row["tensor"].split("/")[1] for row in per_channel}
    assert all(row["max_distinct_per_channel"] <= expected[layer[row["tensor"]]] for row in per_channel)
    # each channel's own scale maps the same centroids to different int8 values
    assert any(row["distinct"] > expected[layer[row["tensor"]]] for row in per_channel if row["per_channel"])


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_cluster_count_beyond_a_lut_index_is_refused(trained_demo, digits_data):
    with pytest.raises(TinypruneError, match="outside 2..128"):
        cluster(trained_demo, digits_data, clusters=256)
    with pytest.raises(TinypruneError, match="pool_1"):
        cluster(trained_demo, digits_data, clusters=4, layer_clusters={"pool_1": 4})


@pytest.mark.slow
def test_sparsity_preserving_clustering_keeps_every_pruned_zero_and_frozen_layers(trained_demo, digits_data):
    from tinyprune.prune.magnitude import magnitude_prune

    pruned = magnitude_prune(trained_demo, digits_data, 0.5, epochs=1).model
    result = cluster(pruned, digits_data, clusters=4, epochs=1, preserve_sparsity=True,
                     layer_clusters={"dense_1": 0})
    for layer in ("conv_1", "conv_2", "logits"):
        before = pruned.get_layer(layer).kernel.numpy()
        after = result.model.get_layer(layer).kernel.numpy()
        assert np.all(after[before == 0] == 0), layer
        assert len(np.unique(after)) <= 4, layer
    np.testing.assert_array_equal(result.model.get_layer("dense_1").kernel.numpy(),
                                  pruned.get_layer("dense_1").kernel.numpy())
    assert result.model.get_layer("dense_1").trainable
    assert "dense_1" not in result.details["clusters"]


@pytest.mark.slow
def test_digits_within_one_point_in_at_most_0_4x_the_dense_int8_bytes(trained_demo, digits_data, demo_int8_per_channel):
    """The issue's bar: prune the big Dense, cluster the rest to 4 values, per-tensor int8, TFLM auto
    compression; verified identical on TFLM, within 1 point of the dense int8 model's TFLM accuracy."""
    from tinyprune.compress import compress_for_tflm
    from tinyprune.graph.reader import read_graph
    from tinyprune.prune.magnitude import magnitude_prune
    from tinyprune.verify.accuracy import int8_inputs, tflm_outputs

    def tflm_accuracy(model_bytes):
        x_int8 = int8_inputs(read_graph(model_bytes), digits_data.x_test)
        return float(np.mean(tflm_outputs(model_bytes, x_int8).argmax(1) == digits_data.y_test))

    pruned = magnitude_prune(trained_demo, digits_data, 0.0, layer_sparsity={"dense_1": 0.95}, epochs=4).model
    clustered = cluster(pruned, digits_data, clusters=4, epochs=10, learning_rate=3e-4, preserve_sparsity=True,
                        layer_clusters={"conv_1": 0, "dense_1": 32}).model
    int8 = quantize_int8(clustered, representative_samples(digits_data.x_train, 100, seed=0), per_channel=False)
    compressed, report = compress_for_tflm(int8, "auto", digits_data.x_test)
    assert report["verified_samples"] == len(digits_data.x_test)
    assert len(compressed) <= 0.4 * len(demo_int8_per_channel), (len(compressed), len(demo_int8_per_channel))
    assert tflm_accuracy(compressed) >= tflm_accuracy(demo_int8_per_channel) - 0.01

"""2:4 sparsity survives int8 conversion exactly, and pruning-preserving QAT keeps the zeros (and
cluster-preserving QAT the clusters) through quantization, measured on the flatbuffer."""
import numpy as np
import pytest

import tinyprune  # noqa: F401
from tinyprune.errors import TinypruneError
from tinyprune.graph.reader import read_graph
from tinyprune.prune.m_by_n import group_nonzeros, hold_int8_nonzeros, prune_m_by_n
from tinyprune.prune.result import weight_sparsity
from tinyprune.qat import int8_sparsity, quantize_aware
from tinyprune.quantize import quantize_int8, representative_samples

PRUNED_2_4 = ("conv_2", "dense_1", "logits")  # conv_1 has one input channel: nothing to group


def layer_of(tensor_name: str) -> str:
    return tensor_name.split(";")[0].split("/")[1].removeprefix("quant_")


def groups_per_layer(model_bytes: bytes) -> dict[str, np.ndarray]:
    """Per 2:4-pruned layer: nonzero count of every group of 4 int8 weights along the input channels."""
    return {layer_of(t.name): group_nonzeros(t.numpy()) for t in read_graph(model_bytes).tensors
            if t.is_constant and t.dtype == "int8" and len(t.shape) > 1 and layer_of(t.name) in PRUNED_2_4}


@pytest.fixture(scope="module")
def calibration(digits_data):
    return representative_samples(digits_data.x_train, 100, seed=0)


@pytest.fixture(scope="module")
def pruned_2_4(trained_demo, digits_data):
    return prune_m_by_n(trained_demo, digits_data, epochs=1)


@pytest.mark.slow
@pytest.mark.parametrize("per_channel_dense", [True, False])
def test_2_4_models_have_exactly_two_nonzeros_in_every_group_of_four_after_conversion(
        pruned_2_4, calibration, per_channel_dense):
    groups = groups_per_layer(quantize_int8(pruned_2_4.model, calibration, per_channel_dense))
    assert sorted(groups) == sorted(PRUNED_2_4)
    for layer, counts in groups.items():
        assert np.all(counts == 2), f"{layer}: {np.bincount(counts, minlength=5)} groups with 0..4 nonzeros"


@pytest.mark.slow
def test_pqat_keeps_the_sparsity_through_quantization(pruned_2_4, digits_data, calibration):
    before = weight_sparsity(pruned_2_4.model)
    qat = quantize_aware(pruned_2_4.model, digits_data, preserve="sparsity", epochs=1)
    model_bytes = quantize_int8(qat.model, calibration)
    after = {layer_of(name): value for name, value in int8_sparsity(read_graph(model_bytes)).items()}
    for layer in PRUNED_2_4:
        assert abs(after[layer] - before[layer]) <= 0.01, (layer, before[layer], after[layer])
    assert all(np.all(counts == 2) for counts in groups_per_layer(model_bytes).values())
    assert qat.details["sparsity_before_qat"] == before


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_hold_int8_nonzeros_lifts_only_sub_step_weights():
    import tf_keras as keras

    layer = keras.layers.Dense(4, use_bias=False)
    layer.build((None, 4))
    kernel = np.array([[1.27, 0.0, 0.004, -0.004]] * 4, dtype=np.float32)  # step = 1.27 / 127 = 0.01
    layer.kernel.assign(kernel)
    model = keras.Sequential([keras.Input((4,)), layer])
    assert hold_int8_nonzeros(model) == 8
    lifted = layer.kernel.numpy()
    np.testing.assert_allclose(lifted[0], [1.27, 0.0, 0.01, -0.01], rtol=1e-6)


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_unknown_preservation_is_refused(trained_demo, digits_data):
    with pytest.raises(TinypruneError, match="huffman"):
        quantize_aware(trained_demo, digits_data, preserve="huffman")


@pytest.mark.slow
@pytest.mark.parametrize("preserve", ["clusters", "clusters+sparsity"])
def test_cqat_keeps_the_clusters_through_quantization(trained_demo, digits_data, calibration, preserve):
    from tinyprune.prune.cluster import cluster, int8_distinct_values

    clustered = cluster(trained_demo, digits_data, clusters=4, epochs=1)
    qat = quantize_aware(clustered.model, digits_data, preserve=preserve, epochs=1)
    rows = int8_distinct_values(read_graph(quantize_int8(qat.model, calibration)))
    assert len(rows) == 4
    assert all(row["max_distinct_per_channel"] <= 4 for row in rows), rows

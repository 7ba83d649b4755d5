"""Magnitude pruning with TF-MOT: the achieved sparsity, measured on the stripped weights."""
import numpy as np
import pytest

from tinyprune.errors import TinypruneError
from tinyprune.prune.magnitude import magnitude_prune, prunable_layer_names


@pytest.mark.slow
def test_reaches_target_per_layer_and_leaves_the_original(trained_demo, digits_data):
    before = [w.copy() for w in trained_demo.get_weights()]
    result = magnitude_prune(trained_demo, digits_data, 0.75, {"dense_1": 0.9}, epochs=2)
    achieved = result.details["achieved_sparsity"]
    assert set(achieved) == set(prunable_layer_names(trained_demo))
    assert abs(achieved["dense_1"] - 0.9) < 0.01
    for layer in ("conv_1", "conv_2", "logits"):
        assert abs(achieved[layer] - 0.75) < 0.01
    assert len(result.history) == 2 and "accuracy" in result.history[-1]
    assert not any(type(layer).__name__.startswith("PruneLowMagnitude") for layer in result.model.layers)
    assert all(np.array_equal(a, b) for a, b in zip(before, trained_demo.get_weights()))


@pytest.mark.slow
def test_constant_schedule_and_two_of_four(trained_demo, digits_data):
    constant = magnitude_prune(trained_demo, digits_data, 0.5, schedule="constant", epochs=1)
    assert abs(constant.details["achieved_sparsity"]["dense_1"] - 0.5) < 0.01
    two_of_four = magnitude_prune(trained_demo, digits_data, 0.5, m_by_n=(2, 4), epochs=1)
    kernel = two_of_four.model.get_layer("dense_1").kernel.numpy()  # (inputs, units): groups along inputs
    groups = np.count_nonzero(kernel.T.reshape(-1, 4), axis=1)
    assert np.all(groups <= 2)


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_refuses_unknown_layers_and_bad_targets(trained_demo, digits_data):
    with pytest.raises(TinypruneError, match="not a prunable layer"):
        magnitude_prune(trained_demo, digits_data, 0.5, {"pool_1": 0.5})
    with pytest.raises(TinypruneError, match="outside"):
        magnitude_prune(trained_demo, digits_data, 1.0)

"""Each graph pass runs when its condition holds and says why (no TensorFlow needed to decide)."""
import numpy as np

from tinyprune.graph.passes.per_tensor_dense import per_tensor_dense
from tinyprune.graph.passes.per_tensor_weights import per_tensor_weights
from tinyprune.graph.passes.tflm_compression import tflm_compression
from tinyprune.graph.runtimes import get_runtime


def test_per_tensor_dense_only_for_the_runtime_that_needs_it():
    arduino = per_tensor_dense(get_runtime("arduino"))
    assert arduino.name == "per-tensor FULLY_CONNECTED" and "mis-computes" in arduino.why
    assert per_tensor_dense(get_runtime("tflm")) is None


def test_per_tensor_weights_only_when_clustered():
    assert per_tensor_weights(0) is None
    assert "8 int8 values" in per_tensor_weights(8).why


def test_tflm_compression_none_leaves_the_bytes_alone():
    model = b"\x00" * 64
    assert tflm_compression(model, "none", np.zeros((1, 1))) == (model, None)

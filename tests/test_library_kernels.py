"""The Arduino library's (TFLM of January 2023) kernels that compute otherwise than today's TFLM, emulated
on the host (tinyprune/verify/library_kernels.py): their arithmetic on crafted values, and the first such
operator named for a model. That the emulation is the library's own arithmetic is checked on qemu in
tests/test_tflm_qemu.py."""
import numpy as np

from single_op import mean
from tinyprune.graph.reader import read_graph
from tinyprune.verify.layers import tflm_tensors
from tinyprune.verify.library_kernels import first_kernel_difference, january_2023_mean


def test_old_mean_truncates_where_quantized_alike_and_rounds_half_away_in_float_otherwise():
    alike = read_graph(mean(0, 1, 2, 1, (0.1, 0), (0.1, 0)))
    pairs = np.array([[3, 4], [-3, -4]], dtype=np.int8).reshape(2, 1, 1, 2, 1)
    assert january_2023_mean(alike, alike.operators[0], pairs).reshape(-1).tolist() == [3, -3]  # 3.5, -3.5
    today = tflm_tensors(mean(0, 1, 2, 1, (0.1, 0), (0.1, 0)), alike, pairs)[alike.outputs[0]]
    assert today.reshape(-1).tolist() == [4, -3]  # fixed point rounds 3.5 up
    halving = read_graph(mean(0, 1, 1, 1, (0.25, 0), (0.5, 1)))
    singles = np.array([5, -5, 3], dtype=np.int8).reshape(3, 1, 1, 1, 1)
    # 2.5, -2.5 and 1.5 in float, half away from zero, then the output zero point
    assert january_2023_mean(halving, halving.operators[0], singles).reshape(-1).tolist() == [4, -2, 3]


def test_the_first_operator_the_library_computes_otherwise_is_named_with_its_count():
    model = mean(3, 6, 6, 8)
    graph = read_graph(model)
    x = np.random.default_rng(1).integers(-128, 128, size=(10, 6, 6, 8)).astype(np.int8)
    difference = first_kernel_difference(model, graph, x, "arduino")
    tensors = tflm_tensors(model, graph, x)
    expected = np.count_nonzero(january_2023_mean(graph, graph.operators[0], tensors[graph.inputs[0]])
                                != tensors[graph.outputs[0]])
    assert difference is not None and (difference.operator, difference.opcode) == (0, "MEAN")
    assert 0 < difference.differing_bytes == expected and difference.total_bytes == 80 and difference.samples == 10
    assert "averages in float" in difference.describe() and f"changes {expected} of its 80 output bytes" in (
        difference.describe())
    assert first_kernel_difference(model, graph, x, "tflm") is None  # today's TFLM: nothing to explain

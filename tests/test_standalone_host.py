"""The generated C compiled on the host (gcc -Wall -Wextra -Werror -> shared library -> ctypes): its
outputs must be byte-identical to the TFLM interpreter's on every input."""
import numpy as np
import pytest

from tinyprune.errors import TinypruneError
from tinyprune.backends.standalone import STANDALONE_OPS, generate_standalone
from tinyprune.backends.standalone.formats import FORMATS
from tinyprune.backends.standalone.host import build_host_library, run_host
from tinyprune.graph.reader import read_graph
from tinyprune.verify.accuracy import int8_inputs, tflm_outputs


def run_both(model_bytes, x_int8, out_dir, **options):
    """(the generated model, our outputs, TFLM's outputs) for int8 inputs."""
    model = generate_standalone(read_graph(model_bytes), out_dir, "test_model", **options)
    ours = run_host(build_host_library(model), x_int8)
    reference = tflm_outputs(model_bytes, x_int8, arena_size=1 << 22).reshape(len(x_int8), -1)
    return model, ours, reference


def random_inputs(model_bytes, count, seed=0):
    shape = read_graph(model_bytes).input_tensors()[0].shape
    return np.random.default_rng(seed).integers(-128, 128, size=(count,) + tuple(shape[1:])).astype(np.int8)


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["demo_int8", "demo_int8_per_channel"])
def test_digits_demo_is_byte_identical_to_tflm_on_the_test_set(fixture, request, digits_data, tmp_path):
    model_bytes = request.getfixturevalue(fixture)
    x = int8_inputs(read_graph(model_bytes), digits_data.x_test)
    model, ours, reference = run_both(model_bytes, x, tmp_path)
    assert ours.shape == reference.shape == (len(digits_data.x_test), 10)
    assert np.array_equal(ours, reference)
    assert [layer.format for layer in model.layers] == ["dense"] * 4
    assert model.macs == 91_776


@pytest.mark.slow
@pytest.mark.parametrize("formats, expected", [(("dense", "bitmask", "lut"), "bitmask"), (("dense", "lut"), "lut"),
                                              (FORMATS, "smallest")])
def test_pruned_demo_computes_from_compressed_weights(formats, expected, demo_int8_pruned, digits_data, tmp_path):
    x = int8_inputs(read_graph(demo_int8_pruned), digits_data.x_test)
    model, ours, reference = run_both(demo_int8_pruned, x, tmp_path, formats=formats)
    assert np.array_equal(ours, reference)
    chosen = [layer.format for layer in model.layers]
    if expected == "bitmask":
        assert chosen == ["bitmask"] * 4
        assert model.weight_bytes_stored < 0.45 * model.weight_bytes_dense
        assert model.macs_skipped >= 0.7 * model.macs
        assert model.arena_bytes <= 1476
    elif expected == "smallest":  # gap codes below the bitmask's bit a position (75 %: 3.4 bits a nonzero)
        # where a kernel's delta path costs more code than it saves (formats_worth_compiling) a layer keeps
        # the bitmask: since its inline walk, the fully connected kernel's bitmask path is the smaller
        assert "delta" in chosen and set(chosen) <= {"bitmask", "delta", "bitmask_lut", "delta_lut"}
        assert model.weight_bytes_stored < 0.38 * model.weight_bytes_dense, (chosen, model.weight_bytes_stored)
    else:  # a LUT index needs 8 bits where a layer has more than 128 distinct values: dense then
        assert "lut" in chosen and set(chosen) <= {"lut", "dense"}
        assert model.weight_bytes_stored < model.weight_bytes_dense


@pytest.mark.slow
@pytest.mark.parametrize("name, ops", [
    ("mlp", {"FULLY_CONNECTED"}),
    ("conv1d_sensor", {"CONV_2D", "MAX_POOL_2D", "MEAN", "SOFTMAX"}),
    ("residual_block", {"ADD", "MEAN"}),
    ("avgpool_mean", {"AVERAGE_POOL_2D", "DEPTHWISE_CONV_2D", "MEAN", "SOFTMAX"}),
    ("softmax_mean_head", {"MEAN", "SOFTMAX"}),
    ("ds_cnn_kws", {"DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D"}),
    ("op_mix", {"RELU6", "PAD", "CONCATENATION", "MUL"}),
    ("gated_mlp", {"LOGISTIC", "TANH"}),
])
def test_zoo_models_are_byte_identical_to_tflm(name, ops, tmp_path):
    from tinyprune.zoo import zoo_int8

    model_bytes = zoo_int8(name)
    model, ours, reference = run_both(model_bytes, random_inputs(model_bytes, 40), tmp_path)
    assert ops <= set(model.ops)
    assert np.array_equal(ours, reference)


def test_an_op_without_a_kernel_is_refused_by_name(tmp_path):
    import single_op

    graph = read_graph(single_op.unary(0, "LEAKY_RELU", [1, 6]))
    with pytest.raises(TinypruneError) as error:
        generate_standalone(graph, tmp_path, "leaky_model")
    assert "LEAKY_RELU" in error.value.problem and "(layer '" in error.value.problem
    assert "--backend tflm" in error.value.fix


def test_generation_is_deterministic_and_lists_its_ops(tmp_path):
    import single_op

    graph = read_graph(single_op.fully_connected(0, 1, 6, 4, sparsity=0.5))
    first = generate_standalone(graph, tmp_path / "a", "same")
    second = generate_standalone(graph, tmp_path / "b", "same")
    assert [p.name for p in first.files] == [p.name for p in second.files]
    for a, b in zip(first.files, second.files):
        assert a.read_bytes() == b.read_bytes()
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SOFTMAX", "MEAN", "LOGISTIC"} <= set(STANDALONE_OPS)


@pytest.mark.slow
def test_every_zoo_model_passes_the_sanitizers_and_equals_tflm(zoo_model, tmp_path):
    """The host proof's C under AddressSanitizer and UBSan (-fno-sanitize-recover) on every zoo model
    TFLM runs (the uncalibrated MobileNet is the zoo's model TFLM refuses)."""
    from tinyprune.backends.standalone.host import build_host_runner, run_host_runner
    from tinyprune.zoo import ZOO

    names = [name for name in ZOO if name != "mobilenet_v1_uncalibrated"]
    models = {name: zoo_model(name) for name in names}
    generated = [generate_standalone(read_graph(models[name]), tmp_path / name, name) for name in names]
    runner = build_host_runner(generated, tmp_path / "runner", sanitize=True)
    for name in names:
        x = random_inputs(models[name], 2)
        reference = tflm_outputs(models[name], x, arena_size=1 << 22).reshape(len(x), -1)
        assert np.array_equal(run_host_runner(runner, name, x), reference), name

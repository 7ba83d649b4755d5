"""Each standalone C kernel against TFLM's reference kernel, one operator a model, on random shapes and
options (seeded): the models are built without TensorFlow (tests/single_op.py), all compiled into one
host runner under AddressSanitizer and UBSan (-Wpedantic, warnings as errors), and every output byte
compared with the tflite-micro interpreter's."""
import subprocess

import numpy as np
import pytest

import single_op
from tinyprune.backends.standalone import generate_standalone
from tinyprune.backends.standalone.codegen import _lower, lower, write_standalone
from tinyprune.backends.standalone.formats import FORMATS
from tinyprune.backends.standalone.host import build_host_runner, run_host_runner
from tinyprune.graph.reader import read_graph
from tinyprune.verify.accuracy import tflm_outputs

SEEDS = (0, 1)
ACTIVATIONS = ("NONE", "RELU", "RELU6")


def _window(rng, size: int) -> tuple[int, int, int]:
    """A kernel size, stride and dilation that fit an input axis of `size` without padding."""
    kernel = int(rng.integers(1, min(size, 4) + 1))
    dilation = int(rng.integers(1, 3)) if (kernel - 1) * 2 + 1 <= size else 1
    return kernel, int(rng.integers(1, 4)), dilation


def _convolution_case(rng, depthwise: bool, weights: str) -> bytes:
    height, width = (int(v) for v in rng.integers(3, 11, size=2))
    (kh, sh, dh), (kw, sw, dw) = _window(rng, height), _window(rng, width)
    options = dict(stride=(sh, sw), dilation=(dh, dw), padding=str(rng.choice(["SAME", "VALID"])),
                   activation=str(rng.choice(ACTIVATIONS)), sparsity=0.75 if weights == "sparse" else 0.0,
                   clusters=5 if weights == "clustered" else 0)
    seed = int(rng.integers(1 << 30))
    if depthwise:
        channels = int(rng.choice([1, 3, 4, 8, 9]))
        return single_op.depthwise_conv2d(seed, height, width, channels, int(rng.integers(1, 3)), (kh, kw), **options)
    # pruned rows long enough that their nonzeros take more than 128 values: a bitmask, not a LUT, is smallest
    low, high = (12, 17) if weights == "sparse" else (1, 10)
    in_c, out_c = (int(v) for v in rng.integers(low, high, size=2))
    return single_op.conv2d(seed, height, width, in_c, out_c, (kh, kw), **options)


def depthwise_cases(count: int = 24) -> dict[str, bytes]:
    """Depthwise layers of random shapes around the kernel's paths: 3x3 windows (two output rows a pass,
    stride 1 or 2, an odd last row, dilation), other windows, channel counts that are and are not a
    multiple of 2 or 4, depth multiplier 1 and 2, SAME and VALID padding, dense and pruned weights."""
    rng = np.random.default_rng(19)
    # as DS-CNN's (odd height, stride 1) and MobileNet's (stride 2, VALID and SAME) 3x3 layers
    models = {f"depthwise_3x3_{i}": single_op.depthwise_conv2d(i, height, width, channels, 1, (3, 3),
                                                                 stride=stride, padding=padding, activation=activation)
              for i, (height, width, channels, stride, padding, activation) in enumerate([
                  (25, 5, 8, (1, 1), "SAME", "RELU"), (9, 7, 6, (2, 2), "SAME", "RELU6"),
                  (10, 9, 4, (2, 2), "VALID", "NONE"), (4, 3, 3, (1, 1), "VALID", "RELU6")])}
    # a rescaling that shifts left: the requantization's long form, on 3x3 and other windows
    for i, kernel in enumerate([(3, 3), (2, 3)]):
        models[f"depthwise_left_shift_{i}"] = single_op.depthwise_conv2d(i, 7, 6, 4, 1, kernel, output_scale=0.002)
    # one channel (a single plane), a one-tap-wide window (the plane's spare pixel)
    models["depthwise_one_channel"] = single_op.depthwise_conv2d(5, 6, 5, 1, 1, (3, 1), activation="RELU")
    for i in range(count):
        kernel = (3, 3) if i % 3 else tuple(int(v) for v in rng.integers(1, 6, size=2))
        stride = tuple(int(v) for v in rng.choice([1, 1, 2, 3], size=2))
        dilation = (int(rng.choice([1, 1, 2])), int(rng.choice([1, 1, 1, 2])))
        height, width = (int(v) for v in rng.integers(max(kernel) * max(dilation), 12, size=2))
        weights = str(rng.choice(["dense", "dense", "dense", "sparse", "clustered"]))
        models[f"depthwise_shape_{weights}_{i}"] = single_op.depthwise_conv2d(
            int(rng.integers(1 << 30)), height, width, int(rng.choice([1, 2, 3, 4, 5, 8, 12])),
            int(rng.choice([1, 1, 2])), kernel, stride=stride, dilation=dilation,
            padding=str(rng.choice(["SAME", "VALID"])), activation=str(rng.choice(ACTIVATIONS)),
            sparsity=0.75 if weights == "sparse" else 0.0, clusters=5 if weights == "clustered" else 0)
    return models


POOLS = ((2, 2), (2, 2), (2, 2), (1, 2), (3, 2), (3, 3))  # max pool windows: mostly the common 2 x 2


def _conv_pool_case(rng, weights: str, tiled: bool = True, dilated: bool = False) -> bytes:
    """CONV_2D + MAX_POOL_2D of random shapes. `tiled`: the pool's windows tile the convolution's output
    (window = stride, VALID, or SAME on a multiple of the window), which the backend fuses; else the
    windows overlap or SAME pads them, which it does not. `dilated` along the width: a dense convolution
    goes through tp_conv2d instead of tp_gemm."""
    pool = POOLS[int(rng.integers(len(POOLS)))]
    height, width = (int(p * rng.integers(1, 4) + rng.integers(0, p)) for p in pool)
    options = dict(activation=str(rng.choice(("NONE", "RELU"))), pool_activation=str(rng.choice(("NONE", "RELU"))),
                   sparsity=0.75 if weights == "sparse" else 0.0, clusters=5 if weights == "clustered" else 0,
                   dilation=(1, 2) if dilated else (1, 1))
    if tiled:
        options["pool_padding"] = "VALID" if height % pool[0] or width % pool[1] else str(rng.choice(["SAME", "VALID"]))
    else:  # overlapping windows, or SAME windows padded at the edge
        pool, height, width = (3, 3), height | 1, width | 1
        options.update(pool_stride=(2, 2), pool_padding=str(rng.choice(["SAME", "VALID"])))
    low, high = (12, 17) if weights == "sparse" else (1, 10)
    in_c, out_c = (int(v) for v in rng.integers(low, high, size=2))
    kernel = tuple(int(v) for v in rng.integers(1, 4, size=2))
    return single_op.conv2d_max_pool(int(rng.integers(1 << 30)), height, width, in_c, out_c, kernel, pool, **options)


def fully_connected_lut4_cases() -> dict[str, bytes]:
    """FULLY_CONNECTED layers of 16 clusters (4-bit indices, which bitmask_lut's walk reads two a byte)
    around that walk's edges: rows of one to seven mask words, the last one partly used; words and whole
    rows without a nonzero (90 % and 95 % zeros); odd counts of nonzeros, so that a word or a row ends on
    a byte's low nibble and the next starts on its high one; per-tensor and per-channel scales, with and
    without a clamp; the last a rescaling that shifts left (the requantization's long form)."""
    shapes = [  # depth, units, per channel, sparsity, activation, output scale factor
        (9, 40, False, 0.75, "NONE", 1.0), (90, 9, False, 0.75, "NONE", 1.0), (200, 13, True, 0.75, "RELU", 1.0),
        (33, 40, False, 0.95, "NONE", 1.0), (64, 16, True, 0.9, "RELU6", 1.0), (47, 7, True, 0.5, "NONE", 1.0),
        (40, 12, False, 0.75, "NONE", 0.001)]
    return {f"fully_connected_lut4_{i}": single_op.fully_connected(
        i, 1, depth, units, per_channel=per_channel, activation=activation, sparsity=sparsity, clusters=16,
        output_scale=output_scale)
        for i, (depth, units, per_channel, sparsity, activation, output_scale) in enumerate(shapes)}


def cases() -> dict[str, bytes]:
    """name -> single-operator model, for every kernel and weight storage, per seed."""
    models = depthwise_cases() | fully_connected_lut4_cases()
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        pool_rng = np.random.default_rng(100 + seed)
        for weights in ("dense", "sparse", "clustered"):
            models[f"conv_{weights}_{seed}"] = _convolution_case(rng, False, weights)
            models[f"depthwise_{weights}_{seed}"] = _convolution_case(rng, True, weights)
            depth, units = int(rng.integers(1, 70)), int(rng.integers(1, 20))
            models[f"fully_connected_{weights}_{seed}"] = single_op.fully_connected(
                int(rng.integers(1 << 30)), 1, depth, units, per_channel=bool(rng.integers(2)),
                activation=str(rng.choice(ACTIVATIONS)), sparsity=0.75 if weights == "sparse" else 0.0,
                clusters=5 if weights == "clustered" else 0)
            for variant in range(2):  # their own generator: the other cases stay as they were
                models[f"conv_pool_{weights}_{seed}_{variant}"] = _conv_pool_case(
                    pool_rng, weights, dilated=weights == "dense" and variant == 1)
        models[f"conv_overlapping_pool_{seed}"] = _conv_pool_case(pool_rng, "sparse", tiled=False)
        # 16 clusters: 4-bit indices, each row unpacked once for all its windows (rows of 1 to 5 mask words),
        # pooled and plain (blocks of four pixels and a tail)
        models[f"conv_lut4_{seed}"] = single_op.conv2d(seed, 7, 6 + seed, 16, 12, (3, 3), sparsity=0.75, clusters=16)
        for i, (in_c, kernel, pool) in enumerate([(1, (3, 3), (2, 2)), (16, (3, 3), (2, 2)), (12, (1, 1), (1, 2)),
                                                 (9, (2, 3), (3, 3))]):
            models[f"conv_pool_lut4_{seed}_{i}"] = single_op.conv2d_max_pool(
                10 * seed + i, 2 * pool[0] + seed, 3 * pool[1], in_c, 6 + 4 * i, kernel, pool, sparsity=0.75,
                clusters=16)
        # a pooled convolution writing into the next one's zero-point border (no pad step)
        models[f"conv_pool_conv_sparse_{seed}"] = single_op.conv2d_max_pool(
            seed, 6 + 2 * seed, 8, 12, 16, (3, 3), (2, 2), sparsity=0.75, then=(24, 3))
        # pointwise layers that write over their input (channels not rising), pixels not a multiple of four
        models[f"conv_pointwise_chain_{seed}"] = single_op.conv2d_chain(
            seed, 5, 3 + seed, [3, 64, 64, 48], [3, 1, 1], sparsity=0.75)
        height, width, channels = (int(v) for v in rng.integers(2, 10, size=3))
        for kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            (fh, sh, _), (fw, sw, _) = _window(rng, height), _window(rng, width)
            models[f"{kind.lower()}_{seed}"] = single_op.pool2d(
                seed, kind, height, width, channels, (fh, fw), (sh, sw), str(rng.choice(["SAME", "VALID"])),
                str(rng.choice(ACTIVATIONS)))
        shape = [1, height, width, channels]
        for kind in ("ADD", "MUL"):
            models[f"{kind.lower()}_{seed}"] = single_op.elementwise(seed, kind, shape, str(rng.choice(ACTIVATIONS)))
        for kind in ("LOGISTIC", "TANH", "RELU", "RELU6", "QUANTIZE"):
            models[f"{kind.lower()}_{seed}"] = single_op.unary(seed, kind, shape)
        models[f"softmax_{seed}"] = single_op.unary(seed, "SOFTMAX", [1, int(rng.integers(2, 40))])
        models[f"mean_{seed}"] = single_op.mean(seed, height, width, channels)
        before, after = (tuple(int(v) for v in rng.integers(0, 3, size=2)) for _ in range(2))
        models[f"pad_{seed}"] = single_op.pad(seed, shape, [(0, 0), (before[0], after[0]), (before[1], after[1]),
                                                            (0, 0)])
        # tp_pad's other loop shapes: every axis padded (three levels of runs), only channels (runs of C),
        # a rank-2 tensor
        models[f"pad_every_axis_{seed}"] = single_op.pad(seed, shape, [(1, 2), (2, 0), (seed, 1), (1, 3)])
        models[f"pad_channels_{seed}"] = single_op.pad(seed, shape, [(0, 0), (0, 0), (0, 0), (seed + 1, 2)])
        models[f"pad_rank2_{seed}"] = single_op.pad(seed, [1, height * width * channels], [(1, seed), (0, 2)])
        models[f"concatenation_{seed}"] = single_op.concatenation(seed, height, width, channels,
                                                                  int(rng.integers(2, 4)))
    return models


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(models, generated C, the sanitized runner) for every case."""
    work = tmp_path_factory.mktemp("kernels")
    models = cases()
    generated = {name: generate_standalone(read_graph(model), work / name, name) for name, model in models.items()}
    # the sparse and clustered layers again in each format their kernel computes from, whatever its code costs
    for name in [n for n in models if n.startswith(("conv_", "depthwise_", "fully_connected_")) and "dense" not in n]:
        forms = ("bitmask", "lut") if name.startswith("depthwise_") else FORMATS[1:]
        for form in forms:
            models[f"{name}_{form}"] = models[name]
            generated[f"{name}_{form}"] = generate_standalone(read_graph(models[name]), work / f"{name}_{form}",
                                                              f"{name}_{form}", formats=("dense", form),
                                                              weigh_code=False)
    # the fused dense pools again with tp_gemm's widest passes (chosen only where an arena has room)
    for name in [n for n in models if n.startswith("conv_pool_dense_")]:
        graph = read_graph(models[name])
        gemms = frozenset(step.name for step in lower(graph).steps if step.kernel == "tp_gemm")
        models[f"{name}_wide"] = models[name]
        generated[f"{name}_wide"] = write_standalone(_lower(graph, FORMATS, gemms), work / f"{name}_wide",
                                                     f"{name}_wide")
    return models, generated, build_host_runner(list(generated.values()), work / "runner", sanitize=True)


def test_every_kernel_equals_tflm_under_the_sanitizers(built):
    models, generated, runner = built
    differing = {}
    for name, model_bytes in models.items():
        shape = read_graph(model_bytes).input_tensors()[0].shape
        x = np.random.default_rng(7).integers(-128, 128, size=(4,) + tuple(shape[1:])).astype(np.int8)
        ours = run_host_runner(runner, name, x)
        reference = tflm_outputs(model_bytes, x, output=None)  # all of it: a pad may grow the batch axis
        assert len(np.unique(reference)) > 1 or reference.size == len(x), f"{name}: a constant output tests little"
        if not np.array_equal(ours, reference):
            differing[name] = int(np.count_nonzero(ours != reference))
    assert differing == {}


def test_the_cases_cover_every_weight_storage_and_kernel(built):
    from tinyprune.backends.standalone import STANDALONE_OPS

    _, generated, _ = built
    formats = {(layer.op, layer.format) for model in generated.values() for layer in model.layers}
    for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        assert {(op, storage) for storage in ("dense", "bitmask", "lut")} <= formats
    for op in ("CONV_2D", "FULLY_CONNECTED"):
        assert {(op, storage) for storage in ("delta", "bitmask_lut", "delta_lut")} <= formats
    covered = {op for model in generated.values() for op in model.ops}
    assert covered >= set(STANDALONE_OPS) - {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}


def test_a_max_pool_is_fused_into_the_convolution_whose_output_its_windows_tile(built):
    """Tiled windows: one step (tp_conv2d or tp_gemm) computes both, the layer report names the pool;
    overlapping or padded windows: the pool keeps its own step. Both byte-exact (test above)."""
    _, generated, _ = built
    fused_kernels = set()
    for name, model in generated.items():
        if not name.startswith(("conv_pool_", "conv_overlapping_pool_")):
            continue
        kinds = [step.kind for step in model.steps]
        if name.startswith("conv_pool_"):
            assert "max_pool2d" not in kinds and model.layers[0].fused == "MAX_POOL_2D (?)", name
            fused_kernels |= {step.kernel for step in model.steps if step.kind == "conv2d + max_pool2d"}
        else:
            assert kinds[-1] == "max_pool2d" and model.layers[0].fused == "", name
    assert fused_kernels == {"tp_conv2d", "tp_gemm"}
    blocks = {dict(step.fields)["block"] for model in generated.values() for step in model.steps
              if step.kernel == "tp_gemm" and dict(step.fields).get("pool_h")}
    assert len(blocks) > 1  # narrow and wide passes


@pytest.mark.parametrize("conv_scale, fused", [(2e-5, True), (1e-8, False)])
def test_a_pool_is_fused_only_where_the_requantization_cannot_wrap(tmp_path, conv_scale, fused):
    """A convolution scaled up (multiplier > 1) shifts its accumulator left first: fused only while the
    largest accumulator it can reach, so shifted, stays inside int32 (TFLM's shift would wrap otherwise,
    and the largest wrapped value is not the largest accumulator's)."""
    model = single_op.conv2d_max_pool(5, 4, 4, 8, 4, (3, 3), (2, 2), conv_scale=conv_scale)
    graph = read_graph(model)
    shifts = next(a.values for step in lower(graph).steps for a in step.arrays if a.name.endswith("_shift"))
    assert min(shifts) > 0  # a left shift for every channel
    generated = generate_standalone(graph, tmp_path / "model", "model")
    assert ("max_pool2d" not in [step.kind for step in generated.steps]) is fused
    runner = build_host_runner([generated], tmp_path / "runner", sanitize=True)
    x = np.random.default_rng(1).integers(-128, 128, size=(8, 4, 4, 8)).astype(np.int8)
    assert np.array_equal(run_host_runner(runner, "model", x), tflm_outputs(model, x).reshape(len(x), -1))


@pytest.mark.parametrize("conv_scale, short", [(None, 1), (2e-5, 2)])
def test_a_convolution_compiles_the_short_requantization_where_every_channel_takes_it(tmp_path, conv_scale, short):
    """tp_config.h's TP_CONV2D_DOUBLED: 1 where every channel's scale shifts right (tp_arith.h's short form
    alone is compiled), 2 where the first convolution's shifts left (each step's form chosen per channel);
    built as the firmware is (the model's own tp_config.h), 4-bit LUT rows pooled and plain, equal TFLM."""
    from tinyprune.backends.standalone.host import build_host_library, run_host

    model = single_op.conv2d_max_pool(4, 6, 6, 12, 8, (3, 3), (2, 2), sparsity=0.75, clusters=16,
                                      conv_scale=conv_scale, then=(6, 3))
    generated = generate_standalone(read_graph(model), tmp_path / "model", "model", formats=("dense", "bitmask_lut"),
                                    weigh_code=False)
    assert [step.kernel for step in generated.steps if step.kernel == "tp_conv2d"] == ["tp_conv2d"] * 2
    assert f"#define TP_CONV2D_DOUBLED {short}\n" in (tmp_path / "model" / "tp_config.h").read_text()
    x = np.random.default_rng(3).integers(-128, 128, size=(4, 6, 6, 12)).astype(np.int8)
    assert np.array_equal(run_host(build_host_library(generated), x), tflm_outputs(model, x).reshape(len(x), -1))


@pytest.mark.parametrize("in_c, unpacked", [(16, True), (64, False)])
def test_a_convolution_unpacks_its_rows_only_where_the_stack_array_stays_small(tmp_path, in_c, unpacked):
    """tp_conv2d unpacks its bitmask rows (TP_CONV2D_UNPACKED > 0) unless the longest one's nonzeros
    would take more than codegen.UNPACKED_STACK_BYTES of stack; then it walks the stored rows. Built as
    the firmware is (the model's own tp_config.h), both equal TFLM."""
    import re

    from tinyprune.backends.standalone.codegen import UNPACKED_STACK_BYTES
    from tinyprune.backends.standalone.host import build_host_library, run_host

    model = single_op.conv2d_max_pool(6, 6, 6, in_c, 8, (3, 3), (2, 2), sparsity=0.5)
    generated = generate_standalone(read_graph(model), tmp_path / "model", "model", formats=("dense", "bitmask"),
                                    weigh_code=False)
    assert [layer.format for layer in generated.layers] == ["bitmask"]
    config = (tmp_path / "model" / "tp_config.h").read_text()
    nonzeros, tap_bytes = (int(re.search(rf"#define {name} (\d+)", config)[1])
                           for name in ("TP_CONV2D_UNPACKED", "TP_TAP_BYTES"))
    assert (nonzeros > 0) is unpacked and nonzeros * 2 * tap_bytes <= UNPACKED_STACK_BYTES
    x = np.random.default_rng(4).integers(-128, 128, size=(4, 6, 6, in_c)).astype(np.int8)
    assert np.array_equal(run_host(build_host_library(generated), x), tflm_outputs(model, x).reshape(len(x), -1))


@pytest.mark.parametrize("in_c, tap_bytes", [(4, 1), (40, 2)])
def test_tap_tables_take_one_byte_where_every_offset_fits(tmp_path, in_c, tap_bytes):
    """A sparse convolution's tap table is uint8_t when the padded window's farthest tap is below 256
    (tp_config.h's TP_TAP_BYTES), uint16_t otherwise; built as the firmware is (the model's own
    tp_config.h), both equal TFLM."""
    from tinyprune.backends.standalone.host import build_host_library, run_host

    model = single_op.conv2d_max_pool(3, 6, 6, in_c, 64, (3, 3), (2, 2), sparsity=0.75)
    generated = generate_standalone(read_graph(model), tmp_path / "model", "model")
    conv = next(step for step in generated.steps if step.kernel == "tp_conv2d")
    taps = next(array for array in conv.arrays if array.name.endswith("_taps"))
    assert taps.ctype == "tp_tap" and (max(taps.values) < 256) == (tap_bytes == 1)
    assert f"#define TP_TAP_BYTES {tap_bytes}" in (tmp_path / "model" / "tp_config.h").read_text()
    x = np.random.default_rng(2).integers(-128, 128, size=(4, 6, 6, in_c)).astype(np.int8)
    assert np.array_equal(run_host(build_host_library(generated), x), tflm_outputs(model, x).reshape(len(x), -1))


def test_a_pad_of_a_batch_of_two_along_every_axis_equals_tflm(tmp_path):
    """Runs along all three outer levels of tp_pad's loops (the batch too: the cases above have one), and
    the parameters folded into model.c's code: no tp_pad_params object is left in it."""
    from tinyprune.backends.standalone.host import build_host_library, run_host
    from tflite_micro.python.tflite_micro import runtime

    model = single_op.pad(4, [2, 3, 4, 5], [(1, 2), (2, 0), (0, 1), (1, 3)])
    generated = generate_standalone(read_graph(model), tmp_path / "model", "model")
    pad = next(step for step in generated.steps if step.kernel == "tp_pad")
    assert dict(pad.fields)["runs"] == [2, 3, 4] and dict(pad.fields)["run"] == 5
    x = np.random.default_rng(4).integers(-128, 128, size=(3, 2, 3, 4, 5)).astype(np.int8)
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    reference = []
    for sample in x:
        interpreter.set_input(sample, 0)
        interpreter.invoke()
        reference.append(np.asarray(interpreter.get_output(0)).ravel().copy())
    library = build_host_library(generated)
    assert np.array_equal(run_host(library, x.reshape(3, -1)), np.stack(reference))
    symbols = subprocess.run(["nm", str(library.path)], capture_output=True, text=True, check=True).stdout
    assert "model_invoke" in symbols and pad.name not in symbols and "tp_pad" not in symbols


def test_a_pooled_convolution_writes_the_next_ones_padded_input(built):
    """conv + pool -> SAME conv: the first writes its pooled output inside the second's zero-point border
    (byte-exact above), so there is no pad step and no unpadded copy in the arena."""
    _, generated, _ = built
    for name in [f"conv_pool_conv_sparse_{seed}" for seed in SEEDS]:
        steps = generated[name].steps
        assert [step.kernel for step in steps] == ["tp_pad", "tp_conv2d", "tp_conv2d"], name
        first, second = steps[1:]
        assert first.output is second.inputs[0] and dict(first.fields)["border_bytes"] == first.output.size


def test_a_pruned_pointwise_convolution_writes_over_its_input(built):
    """Its input dies with it and holds at least its output's bytes: the output takes the input's bytes,
    four pixels' outputs staged in scratch at a time (byte-exact above, in every sparse format)."""
    _, generated, _ = built
    for name in [f"conv_pointwise_chain_{seed}" for seed in SEEDS]:
        pointwise = [step for step in generated[name].steps if step.kind == "conv2d 1x1"]
        assert len(pointwise) == 2, name
        first, last = pointwise
        assert first.output is first.inputs[0] and first.inputs[1].size == 4 * dict(first.fields)["out_c"], name
        assert last.inputs[1].binding == "none", name  # the caller's output buffer: not its input's bytes
        assert "#define TP_CONV2D_IN_PLACE 1" in (generated[name].out_dir / "tp_config.h").read_text()


def test_a_scale_tflm_cannot_compute_is_refused_at_export():
    """SOFTMAX of an input scaled 1e-9: TFLM aborts in Prepare (a negative input shift); the generator
    refuses it by name instead of writing C that shifts by a negative amount."""
    from tinyprune.errors import TinypruneError

    with pytest.raises(TinypruneError, match=r"rescaling shift of -\d+ is outside \[0, 31\]"):
        lower(read_graph(single_op.unary(0, "SOFTMAX", [1, 10], input_scale=1e-9)))


def test_the_generator_checks_what_the_kernels_assume():
    """A compressed convolution row without its tap table, or a LUT index stream of the wrong length,
    is a lowering bug caught at export, never C that reads out of bounds."""
    from tinyprune.backends.standalone.contracts import ContractError, check_steps

    for weights, broken in (("sparse", "taps"), ("clustered", "indices")):
        step = next(s for s in lower(read_graph(_convolution_case(np.random.default_rng(3), False, weights)),
                                     weigh_code=False).steps
                    if s.kernel == "tp_conv2d")
        check_steps([step])
        if broken == "taps":
            step.fields = [(path, value) for path, value in step.fields if path != "taps"]
        else:
            indices = next(a for a in step.arrays if a.name.endswith("_indices"))
            indices.values = indices.values + [0]  # the padding byte the kernel no longer needs
        with pytest.raises(ContractError):
            check_steps([step])


def test_every_shift_a_kernel_takes_has_a_checked_range(built):
    """A new shift field cannot slip past the export-time range check unnoticed."""
    from tinyprune.backends.standalone.contracts import SHIFT_FIELDS

    _, generated, _ = built
    shifts = {path for model in generated.values() for step in model.steps for path, _ in step.fields
              if "shift" in path}
    assert shifts and shifts <= set(SHIFT_FIELDS)


def test_a_kernel_compiles_only_the_weight_formats_its_model_uses(built, tmp_path):
    """tp_config.h lists, per weighted kernel, the formats its steps store; the kernel built with it is
    smaller than the one keeping every format's path (the host runner's build)."""
    import re
    import subprocess

    _, generated, _ = built
    model = generated["conv_sparse_0_bitmask"]
    config = (model.out_dir / "tp_config.h").read_text()
    assert re.findall(r"#define (TP_\w+_FORMATS) (.*)", config) == [("TP_CONV2D_FORMATS", "((1u << TP_BITMASK))")]

    def text_bytes(*flags: str) -> int:
        obj = tmp_path / "tp_conv2d.o"
        subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *flags, "-c",
                        str(model.out_dir / "tp_conv2d.c"), "-o", str(obj)], check=True)
        sizes = subprocess.run(["size", str(obj)], capture_output=True, text=True, check=True).stdout
        return int(sizes.splitlines()[1].split()[0])

    assert text_bytes() < 0.7 * text_bytes("-DTP_EVERY_FORMAT")


@pytest.mark.parametrize("name, walk", [*((f"fully_connected_lut4_{i}_bitmask_lut", 1) for i in range(7)),
                                        ("fully_connected_clustered_0_bitmask_lut", 0)])
def test_fully_connected_compiles_the_4_bit_index_walk_where_its_rows_have_4_bit_indices(built, name, walk):
    _, generated, _ = built
    config = (generated[name].out_dir / "tp_config.h").read_text()
    assert f"#define TP_FULLY_CONNECTED_LUT4 {walk}\n" in config


def test_4_bit_rows_are_unpacked_once_a_channel(built):
    """A convolution of 4-bit-index bitmask_lut rows unpacks them (tp_config.h sizes the array by its
    longest row); the cases have rows over several mask words and rows whose nonzeros end on a byte's
    low nibble (the next row starts on its high one)."""
    from tinyprune.backends.standalone.codegen import unpacked_nonzeros

    _, generated, _ = built
    counts, strides = [], set()
    for name in [n for n in generated
                 if n.startswith(("conv_pool_lut4_", "conv_lut4_")) and n.endswith("_bitmask_lut")]:
        steps = generated[name].steps
        conv = dict(next(step for step in steps if step.kernel == "tp_conv2d").fields)
        assert f"#define TP_CONV2D_UNPACKED {unpacked_nonzeros(steps)}\n" in (
            generated[name].out_dir / "tp_config.h").read_text()
        if conv["weights.index_bits"] != 4:  # a row of few nonzeros may cluster into fewer values
            assert unpacked_nonzeros(steps) == 0
            continue
        mask = next(array.values for step in steps for array in step.arrays if array.name == conv["weights.mask"])
        stride = conv["weights.row_stride"]
        counts += [sum(bin(word).count("1") for word in mask[row:row + stride]) for row in range(0, len(mask), stride)]
        strides.add(stride)
    assert max(strides) >= 3 and min(strides) == 1
    assert any(count % 2 for count in counts) and max(counts) > 32


@pytest.mark.parametrize("name, short", [("fully_connected_lut4_2_bitmask", 1), ("fully_connected_lut4_6_bitmask", 0)])
def test_fully_connected_requantizes_in_the_short_form_where_it_is_exact(built, name, short):
    """tp_config.h's TP_FULLY_CONNECTED_DOUBLED: 1 where every row's right shift and accumulator bound suit
    tp_scale_doubled (the qemu walk test runs it; the host runner decides per row), 0 for a rescaling that
    shifts left."""
    _, generated, _ = built
    shifts = next(a.values for step in generated[name].steps for a in step.arrays if a.name.endswith("_shift"))
    assert (max(shifts) < 0) == bool(short)
    config = (generated[name].out_dir / "tp_config.h").read_text()
    assert f"#define TP_FULLY_CONNECTED_DOUBLED {short}\n" in config


@pytest.mark.parametrize("allowed", [("dense", "bitmask"), ("dense", "bitmask_lut"), ("dense", "delta_lut")])
def test_formats_given_per_kernel_are_the_ones_a_layer_is_stored_in(allowed):
    """lower(..., per_kernel=) forces each weighted kernel's formats (bench/firmware.py --layer-formats
    measures a per-layer mix with it): a pruned, clustered convolution takes the one sparse form allowed."""
    graph = read_graph(single_op.conv2d(5, 6, 6, 16, 8, (3, 3), sparsity=0.75, clusters=5))
    lowered = lower(graph, FORMATS, per_kernel={"tp_conv2d": allowed})
    assert [layer.format for layer in lowered.layers] == [allowed[1]]

"""Writes the int8 .tflite fixtures in tests/data/zoo/ and their expected figures (expected.json), so that
the fast tests read, plan, emulate and compile real converter output without TensorFlow.

    PYTHONPATH=. python tests/data/make_fixtures.py                  # TensorFlow and tflite-micro; minutes
    PYTHONPATH=. python tests/data/make_fixtures.py --figures-only   # expected.json only, no TensorFlow

The models are the small ones of tinyprune.zoo (seeded random weights, seeded calibration), plus a DS-CNN
with every kernel but the classifier's 75 % zero (bitmask storage, the sparse kernels), the digits CNN with 6 values per
kernel (LUT storage), and the trained digits demo (per-tensor and per-channel), which conftest.py serves
as demo_int8 and demo_int8_per_channel. The figures come from the real TFLM interpreter (outputs, the smallest
arena that runs, found by bisection in separate processes) and from tinyprune's own code (the emulated arenas and
the standalone C's figures): the tests hold the emulation to TFLM's figure and the rest to its value here.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE.parent)]

import tinyprune  # noqa: E402,F401  (TF_USE_LEGACY_KERAS before TensorFlow)
from fixture_models import FIXTURES, sample_inputs, train_digits_demo  # noqa: E402

SMALL_ZOO = ("mlp", "conv1d_sensor", "digits_cnn", "softmax_mean_head", "strided_conv", "residual_block",
             "avgpool_mean", "op_mix", "gated_mlp", "ds_cnn_kws")


def _zeroed(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """The kernel with its smallest-magnitude fraction `sparsity` set to zero (magnitude pruning's mask),
    the rest scaled to keep the kernel's energy (as fine-tuning would: without it the activations of a
    deep model shrink until TFLM refuses SOFTMAX's near-zero input scale)."""
    threshold = np.quantile(np.abs(kernel), sparsity)
    pruned = np.where(np.abs(kernel) <= threshold, 0.0, kernel)
    return (pruned * np.sqrt(np.sum(kernel**2) / np.sum(pruned**2))).astype(kernel.dtype)


def _clustered(kernel: np.ndarray, values: int) -> np.ndarray:
    """The kernel snapped to `values` evenly spaced levels (weight sharing's outcome, without training)."""
    levels = np.linspace(kernel.min(), kernel.max(), values)
    return levels[np.abs(kernel[..., None] - levels).argmin(axis=-1)].astype(kernel.dtype)


def _edited(name: str, edit) -> bytes:
    """A zoo model with `edit` applied to every kernel but the output layer's (random-weight logits are
    small already: pruned further, TFLM refuses SOFTMAX's input scale), then calibrated as zoo_int8."""
    from tinyprune.prune.result import kernels_of
    from tinyprune.quantize import quantize_int8
    from tinyprune.zoo import ZOO, _keras

    keras = _keras()
    builder, per_channel_dense = ZOO[name]
    keras.utils.set_random_seed(0)
    model = builder()
    for layer in model.layers[:-1]:
        for kernel in kernels_of(layer):
            kernel.assign(edit(kernel.numpy()))
    shape = (32,) + tuple(model.input_shape[1:])
    calibration = np.random.default_rng(0).uniform(0.0, 1.0, size=shape).astype(np.float32)
    return quantize_int8(model, calibration, per_channel_dense=per_channel_dense)


def fixtures() -> dict[str, bytes]:
    from tinyprune.zoo import zoo_int8

    models = {name: zoo_int8(name) for name in SMALL_ZOO}
    models["ds_cnn_kws_pruned"] = _edited("ds_cnn_kws", lambda k: _zeroed(k, 0.75))
    models["digits_cnn_clustered"] = _edited("digits_cnn", lambda k: _clustered(k, 6))
    models.update(digits_demo())
    return models


def digits_demo() -> dict[str, bytes]:
    """The trained digits demo as int8 with per-tensor and per-channel FULLY_CONNECTED weights:
    conftest's demo_int8 and demo_int8_per_channel."""
    from tinyprune.io.data import digits
    from tinyprune.quantize import quantize_int8, representative_samples

    data = digits(seed=0)
    model = train_digits_demo(data)
    calibration = representative_samples(data.x_train, 100, seed=0)
    return {"digits_demo_int8": quantize_int8(model, calibration, per_channel_dense=False),
            "digits_demo_int8_per_channel": quantize_int8(model, calibration, per_channel_dense=True)}


def figures(model_bytes: bytes, work_dir: Path) -> dict:
    from tinyprune.backends.standalone import generate_standalone
    from tinyprune.graph.reader import read_graph
    from tinyprune.memory import board_arena, emulate_arena
    from tinyprune.verify.accuracy import tflm_outputs
    from tinyprune.verify.arena import find_arena

    graph = read_graph(model_bytes)
    host, board = emulate_arena(graph, "host"), board_arena(graph, "arduino")
    standalone = generate_standalone(graph, work_dir, "fixture")
    x = sample_inputs(graph)
    return {
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "bytes": len(model_bytes),
        "ops": [op.opcode for op in graph.operators],
        "tensors": len(graph.tensors),
        "input_shape": list(graph.input_tensors()[0].shape),
        "output_shape": list(graph.output_tensors()[0].shape),
        "tflm_host_arena": find_arena(model_bytes).exact,
        "emulated_host_arena": host.exact,
        "emulated_host_lower_bound": host.lower_bound,
        "emulated_board_arena": board.exact,
        "standalone": {"arena_bytes": standalone.arena_bytes, "macs": standalone.macs,
                       "macs_skipped": standalone.macs_skipped,
                       "weight_bytes_stored": standalone.weight_bytes_stored,
                       "formats": [layer.format for layer in standalone.layers]},
        "tflm_outputs": [row.tobytes().hex() for row in tflm_outputs(model_bytes, x, output=None)],
    }


def main(figures_only: bool = False) -> None:
    """Write the fixtures and expected.json; with `figures_only` recompute expected.json from the committed
    fixtures (no TensorFlow), as after a change to the emulation or the standalone backend."""
    import tempfile

    FIXTURES.mkdir(exist_ok=True)
    if figures_only:
        models = {path.stem: path.read_bytes() for path in sorted(FIXTURES.glob("*.tflite"))}
    else:
        models = fixtures()
        for name, model_bytes in models.items():
            (FIXTURES / f"{name}.tflite").write_bytes(model_bytes)
    expected = {}
    with tempfile.TemporaryDirectory() as work:
        for name, model_bytes in models.items():
            expected[name] = figures(model_bytes, Path(work) / name)
            print(f"{name}: {len(model_bytes):,} B, arena {expected[name]['tflm_host_arena']:,} B")
    (FIXTURES / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(figures_only="--figures-only" in sys.argv[1:])

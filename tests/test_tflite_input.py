"""An int8 .tflite as it is: `tinyprune build model.tflite` checks, verifies and exports it without
training, pruning or quantizing; five zoo architectures build, in a venv without TensorFlow, into the
sketch and the standalone C with the arena `inspect` gives; a float .tflite is one true line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyprune.cli import main

ROOT = Path(__file__).resolve().parent.parent
ZOO_MODELS = ("ds_cnn_kws", "resnet8", "mobilenet_v1_vww", "fc_autoencoder", "conv1d_sensor")


def _int8(model, seed: int = 0) -> bytes:
    """Full int8 with per-tensor FULLY_CONNECTED, as the Arduino library needs (a user's converter setting)."""
    from tinyprune.quantize import quantize_int8

    calibration = np.random.default_rng(seed).uniform(0, 1, size=(32, *model.input_shape[1:])).astype(np.float32)
    return quantize_int8(model, calibration, per_channel_dense=False)


@pytest.fixture(scope="module")
def zoo_tflite(tmp_path_factory):
    from tinyprune.zoo import ZOO, _keras

    folder = tmp_path_factory.mktemp("zoo_tflite")
    for name in ZOO_MODELS:
        _keras().utils.set_random_seed(0)
        (folder / f"{name}.tflite").write_bytes(_int8(ZOO[name][0]()))
    return folder


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory):
    """A venv with tinyprune's light install: no TensorFlow, tf-keras or TF-MOT."""
    venv = tmp_path_factory.mktemp("light") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(ROOT)], capture_output=True,
                             text=True)
    assert install.returncode == 0, install.stderr[-2000:]
    listed = subprocess.run([str(venv / "bin" / "pip"), "list"], capture_output=True, text=True).stdout.lower()
    assert "tflite" in listed and not any(name in listed for name in ("tensorflow", "tf-keras", "tf_keras"))
    return venv / "bin" / "tinyprune"


def _run(tinyprune: Path, *argv) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS")}
    return subprocess.run([str(tinyprune), *argv], capture_output=True, text=True, env=environment, cwd="/")


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_tflite_builds_without_tensorflow(light_venv, zoo_tflite, tmp_path, name):
    model = zoo_tflite / f"{name}.tflite"
    inspected = _run(light_venv, "inspect", str(model), "--board", "nano33ble", "--json")
    assert inspected.returncode == 0, inspected.stderr
    arena = json.loads(inspected.stdout)["arena"]
    sketch = _run(light_venv, "build", str(model), "--board", "nano33ble", "--out", str(tmp_path / "tflm"))
    assert sketch.returncode == 0, sketch.stderr
    assert [line.split()[0] for line in sketch.stdout.splitlines()] == [
        "load", "train", "prune", "quantize", "check", "verify", "export", "report"]
    assert "prune     did not apply" in sketch.stdout
    report = json.loads((tmp_path / "tflm" / "report.json").read_text())
    assert (report["memory"]["arena_aligned16"], report["memory"]["board_aligned16"]) == (
        arena["host_aligned16"], arena["board_aligned16"])
    assert report["memory"]["emulation_matches_search"]
    assert (tmp_path / "tflm" / "model.tflite").read_bytes() == model.read_bytes()  # taken as it is
    assert (tmp_path / "tflm" / "arduino" / name / f"{name}.ino").is_file()
    assert report["agreement"]["total_bytes"] > 0 and report["accuracy"] is None  # LiteRT vs TFLM counted
    standalone = _run(light_venv, "build", str(model), "--board", "nano33ble", "--backend", "standalone",
                      "--out", str(tmp_path / "standalone"))
    assert standalone.returncode == 0, standalone.stderr
    assert (tmp_path / "standalone" / "standalone" / "model.c").is_file()
    figures = json.loads((tmp_path / "standalone" / "report.json").read_text())["standalone"]
    assert figures is not None


@pytest.mark.slow
def test_float_tflite_is_refused_without_tensorflow(light_venv, tmp_path):
    import tensorflow as tf

    from tinyprune.zoo import ZOO, _keras

    _keras().utils.set_random_seed(0)
    converter = tf.lite.TFLiteConverter.from_keras_model(ZOO["mlp"][0]())
    (tmp_path / "float.tflite").write_bytes(converter.convert())
    run = _run(light_venv, "build", str(tmp_path / "float.tflite"), "--board", "nano33ble", "--out",
               str(tmp_path / "out"))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "is not a full-integer int8 model" in run.stderr and "tinyprune targets int8" in run.stderr
    assert "full-integer quantization" in run.stderr and "TFLITE_BUILTINS_INT8" in run.stderr
    assert not (tmp_path / "out").exists()


def test_int8_tflite_with_data_reports_tflm_accuracy(demo_int8, digits_data, tmp_path, capfd):
    """The conftest's trained digits CNN as a .tflite, with the digits as data: the accuracy is TFLM's."""
    d = digits_data
    (tmp_path / "digits.tflite").write_bytes(demo_int8)
    np.savez(tmp_path / "digits.npz", x_train=d.x_train, y_train=d.y_train, x_test=d.x_test, y_test=d.y_test)
    code = main(["build", str(tmp_path / "digits.tflite"), "--data", str(tmp_path / "digits.npz"),
                 "--board", "nano33ble", "--out", str(tmp_path / "out")])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["accuracy"]["tflm_int8"] > 0.9 and report["accuracy"]["samples"] == 360
    assert set(report["not_applied"]) == {"train", "prune", "quantize"}
    assert "digits: 360 test samples, classification" in captured.out
    assert "| prune | did not apply" in (tmp_path / "out" / "report.md").read_text()

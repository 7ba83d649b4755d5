"""`tinyprune build model.tflite` on committed int8 fixtures, in a process where TensorFlow, tf-keras,
Keras and TF-MOT cannot be imported: the light install's path, fast (the venv test is slow)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "zoo"
WITHOUT_TENSORFLOW = """
import sys
for name in ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization"):
    sys.modules[name] = None  # importing any of them fails
from tinyprune.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_without_tensorflow(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW, *argv], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_int8_tflite_with_data_builds_without_tensorflow(tmp_path):
    model = FIXTURES / "digits_demo_int8.tflite"
    run = run_without_tensorflow("build", str(model), "--data", "digits", "--board", "nano33ble",
                                 "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["accuracy"]["tflm_int8"] > 0.9 and report["accuracy"]["samples"] == 360
    assert report["not_applied"].keys() == {"train", "prune", "quantize"}
    assert (tmp_path / "out" / "model.tflite").read_bytes() == model.read_bytes()
    assert (tmp_path / "out" / "arduino" / "digits_demo_int8" / "digits_demo_int8.ino").is_file()
    inspected = json.loads(run_without_tensorflow("inspect", str(model), "--json").stdout)["arena"]
    assert report["memory"]["arena_aligned16"] == inspected["host_aligned16"]
    assert report["memory"]["board_aligned16"] == inspected["board_aligned16"]


def test_self_test_without_data_is_deterministic(tmp_path):
    model = FIXTURES / "mlp.tflite"
    sketches = []
    for out in ("a", "b"):
        run = run_without_tensorflow("build", str(model), "--board", "nano33ble", "--out", str(tmp_path / out))
        assert run.returncode == 0, run.stderr
        assert "no data: the self-test is a deterministic input and TFLM's output" in run.stdout
        sketches.append((tmp_path / out / "arduino" / "mlp" / "mlp.ino").read_text())
    assert sketches[0] == sketches[1]
    assert json.loads((tmp_path / "a" / "report.json").read_text())["accuracy"] is None
    page = (tmp_path / "a" / "report.html").read_text()
    assert "prune</td><td>did not apply" in page and "no data given" in page


def test_device_measurements_join_an_as_it_is_report(tmp_path):
    from tinyprune.report import add_device_section

    run = run_without_tensorflow("build", str(FIXTURES / "mlp.tflite"), "--board", "nano33ble", "--out",
                                 str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    report = add_device_section(tmp_path / "out", "flash", {"tool": "arduino-cli"})
    assert report["device"]["flash"]["tool"] == "arduino-cli"
    assert "device flash" in (tmp_path / "out" / "report.md").read_text()


def test_keras_build_on_the_light_install_says_what_to_install(tmp_path):
    run = run_without_tensorflow("demo", "--out", str(tmp_path / "demo"))
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "needs TensorFlow and tf-keras" in run.stderr and 'pip install "tinyprune[keras]"' in run.stderr
    assert not (tmp_path / "demo").exists()


def test_sweep_over_a_tflite_is_refused(tmp_path):
    run = run_without_tensorflow("sweep", str(FIXTURES / "mlp.tflite"), "--over", "sparsity=0.5,0.8",
                                 "--out", str(tmp_path / "sweep"))
    assert run.returncode == 2 and "built as it is" in run.stderr and not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("name, board", [
    ("digits_demo_int8_per_channel", "pico"),  # no Arduino library for the Pico: the standalone C alone
    ("mlp", "nano33ble"),  # the standalone C, and TFLM beside it
])
def test_inspect_chooses_the_firmware_build_chooses(tmp_path, name, board):
    model = FIXTURES / f"{name}.tflite"
    run = run_without_tensorflow("build", str(model), "--board", board, "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    built = json.loads((tmp_path / "out" / "report.json").read_text())["builds"]
    inspected = run_without_tensorflow("inspect", str(model), "--board", board, "--json")
    assert inspected.returncode == 0, inspected.stderr
    chosen = json.loads(inspected.stdout)["firmware"]["builds"]
    assert [(b["backend"], b["why"], b["arena_firmware"]) for b in built] == [
        (b["backend"], b["why"], b["arena_bytes"]) for b in chosen]


@pytest.mark.parametrize("backend", ["auto", "tflm"])
def test_model_card_shows_what_the_recommended_firmware_stores(tmp_path, backend):
    """The standalone C stores weights sparse or clustered where smaller, so its card is its stored weights
    (the flatbuffer beside it); a TFLM firmware stores the flatbuffer itself."""
    model = FIXTURES / "digits_cnn_clustered.tflite"
    run = run_without_tensorflow("build", str(model), "--board", "nano33ble", "--backend", backend,
                                 "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    stored, flatbuffer = report["builds"][0]["stored_model"], model.stat().st_size
    page = (tmp_path / "out" / "report.md").read_text()
    if backend == "auto":
        summary = report["standalone"]["model"]
        assert stored["weight_bytes"] == summary["weight_bytes_stored"] < summary["weight_bytes_dense"]
        assert stored["model_bytes"] == summary["constant_bytes"] == report["fit"]["flash_items"]["model constants"]
        assert (f"model in the firmware | {stored['weight_bytes']:,} B: weights as the standalone firmware stores "
                f"them ({stored['model_bytes']:,} B of constants in all); TFLite flatbuffer {flatbuffer:,} B") in page
    else:
        assert stored["weight_bytes"] is None and stored["model_bytes"] == flatbuffer
        assert f"model in the firmware | {flatbuffer:,} B: the TFLite flatbuffer the tflm firmware stores" in page


def test_an_as_it_is_report_names_where_litert_and_tflm_part_ways(tmp_path):
    """LiteRT and TFLM part ways on this model's self-test (their kernels round differently): the report of
    the model taken as it is says at which operator, as a Keras build's does."""
    model = FIXTURES / "digits_demo_int8_per_channel.tflite"
    run = run_without_tensorflow("build", str(model), "--board", "nano33ble", "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    agreement = json.loads((tmp_path / "out" / "report.json").read_text())["agreement"]
    assert agreement["differing_bytes"] > 0
    assert agreement["first_difference"].startswith("first difference at operator ")
    assert agreement["first_difference"] in (tmp_path / "out" / "report.md").read_text()

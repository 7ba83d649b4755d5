"""`tinyprune inspect`: the int8 model's costs from the file alone, checked against the real TFLM."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tinyprune.cli import main


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory, demo_int8):
    path = tmp_path_factory.mktemp("inspect") / "demo.tflite"
    path.write_bytes(demo_int8)
    return path


def test_json_figures_match_the_real_interpreter(capfd, demo_file, demo_int8):
    from tinyprune.verify.arena import find_arena

    assert main(["inspect", str(demo_file), "--board", "nano33ble", "--json"]) == 0
    result = json.loads(capfd.readouterr().out)
    searched = find_arena(demo_int8)
    arena = result["arena"]
    assert (arena["host_aligned16"], arena["host_exact"]) == (searched.aligned16, searched.exact)
    assert arena["lower_bound"] <= arena["board_aligned16"] < arena["host_aligned16"]
    assert [op["opcode"] for op in result["operators"]] == [
        "CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "FULLY_CONNECTED"]
    assert result["flash"]["model"] == len(demo_int8) < result["flash"]["total"]
    assert result["fit"]["fits"] and result["fit"]["ram_limit"] == 262144
    for a in result["tensors"]:  # buffers alive at the same step never overlap in the plan
        for b in result["tensors"]:
            if a is not b and a["first"] <= b["last"] and b["first"] <= a["last"]:
                assert a["offset"] + a["size"] <= b["offset"] or b["offset"] + b["size"] <= a["offset"]


def test_text_output_names_every_figure(capfd, demo_file):
    assert main(["inspect", str(demo_file), "--board", "uno_r4_minima"]) == 0
    text = capfd.readouterr().out
    for words in ("operators", "host (tflite-micro package, 64-bit)", "board (arm32)", "lower bound",
                  "uno_r4_minima: fits", "flash"):
        assert words in text


def test_a_model_that_does_not_fit_exits_1_so_a_firmware_ci_can_gate_on_it(capfd, demo_file, tmp_path):
    board = (tmp_path / "tiny.toml")
    text = (Path(__file__).parents[1] / "boards" / "nano33ble.toml").read_text()
    board.write_text(text.replace('name = "nano33ble"', 'name = "tiny"').replace("262_144", "8_192"))
    assert main(["inspect", str(demo_file), "--board", str(board)]) == 1
    assert "tiny: DOES NOT FIT" in capfd.readouterr().out


def test_per_channel_model_is_marked_not_runnable_on_the_arduino_library(capfd, tmp_path, demo_int8_per_channel):
    path = tmp_path / "pc.tflite"
    path.write_bytes(demo_int8_per_channel)
    assert main(["inspect", str(path)]) == 1  # what it prints and its exit code say the same
    assert "NOT RUNNABLE there: layer 'dense_1' has per-channel FULLY_CONNECTED" in capfd.readouterr().out
    assert main(["inspect", str(path), "--runtime", "tflm"]) == 0


def test_board_gets_the_firmware_build_would_choose(capfd, tmp_path, demo_int8_per_channel):
    """The Pico: the Arduino library does not build for it and the model's per-channel dense layer is wrong
    there anyway; the standalone C runs it, so that is the firmware, and its fit is the verdict."""
    from tinyprune.backends.standalone.codegen import lower
    from tinyprune.graph.reader import read_graph

    path = tmp_path / "pc.tflite"
    path.write_bytes(demo_int8_per_channel)
    assert main(["inspect", str(path), "--board", "pico", "--json"]) == 0
    result = json.loads(capfd.readouterr().out)
    firmware = result["firmware"]
    assert firmware["backend"] == "standalone" and [b["backend"] for b in firmware["builds"]] == ["standalone"]
    assert "'mbed_rp2040' is not among" in firmware["refused"]["tflm"]
    plan = lower(read_graph(demo_int8_per_channel))
    assert result["fit"]["backend"] == "standalone" and result["fit"]["fits"]
    assert result["fit"]["flash_items"] == {"model constants": plan.constant_bytes}
    assert result["fit"]["ram_items"] == {"arena": plan.arena_bytes, "sketch buffers": 64 + 10 + (2 + 64) + 10,
                                         "headroom": 16384}
    assert main(["inspect", str(path), "--board", "pico"]) == 0
    text = capfd.readouterr().out
    assert "NOT RUNNABLE" not in text and "pico: fits with the standalone firmware" in text
    assert "firmware for Raspberry Pi Pico: standalone (--backend auto)" in text


def test_no_backend_runs_it_exits_1(capfd, tmp_path, demo_int8_per_channel):
    path = tmp_path / "pc.tflite"
    path.write_bytes(demo_int8_per_channel)
    assert main(["inspect", str(path), "--board", "nano33ble", "--backend", "tflm", "--json"]) == 1
    result = json.loads(capfd.readouterr().out)
    assert result["firmware"]["builds"] == [] and "fit" not in result
    assert "per-channel FULLY_CONNECTED" in result["firmware"]["refused"]["tflm"]
    assert main(["inspect", str(path), "--board", "nano33ble", "--backend", "tflm"]) == 1
    assert "nano33ble: CANNOT RUN" in capfd.readouterr().out
    assert main(["inspect", str(path), "--board", "nano33ble", "--backend", "tflm", "--runtime", "tflm"]) == 0
    assert "nano33ble: fits with the tflm firmware" in capfd.readouterr().out


def test_a_backend_that_cannot_target_the_board_is_bad_input(capfd, demo_file):
    """As in build: the option cannot work on that board whatever the model, so exit 2, one line."""
    assert main(["inspect", str(demo_file), "--board", "pico", "--backend", "tflm"]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "does not build for Raspberry Pi Pico" in err


@pytest.mark.parametrize("content, words", [
    (b"", "empty"),
    (b"garbage file", "not a TFLite flatbuffer"),
])
def test_corrupt_files_are_one_line_errors(capfd, tmp_path, content, words):
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    assert main(["inspect", str(path)]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_truncated_model(capfd, tmp_path, demo_int8):
    path = tmp_path / "cut.tflite"
    path.write_bytes(demo_int8[: len(demo_int8) // 2])
    assert main(["inspect", str(path)]) == 2
    assert "fix:" in capfd.readouterr().err


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_float_model_is_refused(capfd, tmp_path, trained_demo):
    import tensorflow as tf

    path = tmp_path / "float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(trained_demo).convert())
    assert main(["inspect", str(path)]) == 2
    assert "not a full-integer int8 model" in capfd.readouterr().err


def test_inspect_never_imports_tensorflow(demo_file):
    """What keeps it under a second: the reader and the emulation are pure Python."""
    code = ("import sys; from tinyprune.cli import main; main(['inspect', sys.argv[1], '--json']); "
            "assert 'tensorflow' not in sys.modules and 'tf_keras' not in sys.modules, 'TF imported'")
    result = subprocess.run([sys.executable, "-c", code, str(demo_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

"""The CLI on bad input: one line naming the problem and the fix, exit code 2, no traceback, and no
output folder left behind. Each case runs the real stages up to the one that must refuse."""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import pytest

from tinyprune.cli import main
from tinyprune.graph.reader import read_graph_file
from tinyprune.resources import boards_dir


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory, digits_data):
    """A small untrained CNN on digits and its data, saved the way users save them."""
    import tf_keras as keras

    folder = tmp_path_factory.mktemp("inputs")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(folder / "small.keras")
    d = digits_data
    np.savez(folder / "digits.npz", x_train=d.x_train[:200], y_train=d.y_train[:200], x_test=d.x_test[:50],
             y_test=d.y_test[:50])
    return folder


def run_cli(capfd, *argv):
    code = main(list(argv))
    captured = capfd.readouterr()
    return code, captured.out, captured.err


def assert_refused(code, err, out_dir: Path, *words):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyprune: error:"), err
    assert "Traceback" not in err and "fix:" in err
    for word in words:
        assert word in err
    assert not out_dir.exists()
    assert not list(out_dir.parent.glob(f".{out_dir.name}.*")), "a staging folder was left behind"


def build_args(inputs, out, *extra, model="small.keras", data="digits.npz"):
    return ["build", str(inputs / model), "--data", str(inputs / data), "--out", str(out),
            "--fine-tune-epochs", "1", "--calibration-samples", "20", *extra]


def test_build_without_a_model_is_an_error_with_the_fix(capfd, tmp_path):
    code, _, err = run_cli(capfd, "build", "--out", str(tmp_path / "out"))
    assert_refused(code, err, tmp_path / "out", "needs a model", "tinyprune demo")


@pytest.mark.parametrize("argv, words", [
    (["build", "m.keras", "--weight-storage", "tiny"], ["--weight-storage", "'tiny'", "tinyprune build --help"]),
    (["demo", "--bogus"], ["--bogus"]), (["bogus"], ["'bogus'", "device-eval"])])
def test_a_bad_command_line_is_one_line_with_the_fix(capfd, tmp_path, argv, words):
    """argparse's own refusals too: one line naming the problem and where to look, not the usage block."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv + ["--out", str(tmp_path / "out")])
    err = capfd.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1 and "usage:" not in err, err
    assert err.startswith("tinyprune") and "error:" in err and "fix: see `tinyprune" in err
    assert all(word in err for word in words), err
    assert not (tmp_path / "out").exists()


def test_help_shows_the_defaults(capfd):
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    text = " ".join(capfd.readouterr().out.split())
    assert "(default: 0.75)" in text and "(default: nano33ble)" in text and "(default: 16384)" in text


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_missing_model(capfd, small_inputs, tmp_path):
    code, _, err = run_cli(capfd, *build_args(small_inputs, tmp_path / "out", model="nothing.keras"))
    assert_refused(code, err, tmp_path / "out", "does not exist")


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_corrupt_model(capfd, small_inputs, tmp_path):
    (small_inputs / "corrupt.keras").write_bytes(b"PK\x03\x04 truncated")
    code, _, err = run_cli(capfd, *build_args(small_inputs, tmp_path / "out", model="corrupt.keras"))
    assert_refused(code, err, tmp_path / "out", "corrupt.keras")


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_data_shape_mismatch(capfd, small_inputs, tmp_path):
    x = np.zeros((10, 64), np.float32)
    np.savez(small_inputs / "flat.npz", x_train=x, y_train=np.zeros(10, int), x_test=x, y_test=np.zeros(10, int))
    code, _, err = run_cli(capfd, *build_args(small_inputs, tmp_path / "out", data="flat.npz"))
    assert_refused(code, err, tmp_path / "out", "(64,)", "(8, 8, 1)")


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_nan_in_data(capfd, small_inputs, tmp_path, digits_data):
    x = digits_data.x_train[:20].copy()
    x[0, 0, 0, 0] = np.nan
    np.savez(small_inputs / "nan.npz", x_train=x, y_train=digits_data.y_train[:20], x_test=x,
             y_test=digits_data.y_train[:20])
    code, _, err = run_cli(capfd, *build_args(small_inputs, tmp_path / "out", data="nan.npz"))
    assert_refused(code, err, tmp_path / "out", "NaN")


@pytest.mark.slow  # imports TensorFlow (a Keras model)
@pytest.mark.parametrize("problem", ["one class", "text feature", "no target column"])
def test_data_as_users_keep_it_refused(capfd, small_inputs, tmp_path, problem):
    """An image folder with one class, a CSV with a text feature or without the named label column."""
    from PIL import Image

    if problem == "one class":
        (tmp_path / "images" / "cat").mkdir(parents=True)
        Image.new("L", (8, 8)).save(tmp_path / "images" / "cat" / "0.png")
        data, extra, words = tmp_path / "images", [], ("1 class subfolder: cat",)
    else:
        data = tmp_path / "table.csv"
        data.write_text("colour,size,label\nred,1,0\nblue,2,1\n" if problem == "text feature"
                        else "size,label\n1,0\n2,1\n")
        extra = ["--target", "label" if problem == "text feature" else "class"]
        words = ("'colour'", "not numeric") if problem == "text feature" else ("no column 'class'", "size, label")
    code, _, err = run_cli(capfd, *build_args(small_inputs, tmp_path / "out", *extra, data=data))
    assert_refused(code, err, tmp_path / "out", *words)


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_unknown_board_lists_near_names(capfd, small_inputs, tmp_path):
    code, _, err = run_cli(capfd, *build_args(small_inputs, tmp_path / "out", "--board", "nano33"))
    assert_refused(code, err, tmp_path / "out", "unknown board 'nano33'", "nano33ble")


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_board_the_arduino_library_does_not_build_for(capfd, small_inputs, tmp_path):
    code, _, err = run_cli(capfd, *build_args(small_inputs, tmp_path / "out", "--board", "uno_r4_minima",
                                              "--backend", "tflm"))
    assert_refused(code, err, tmp_path / "out", "renesas_uno", "mbed_nano")


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_tflm_compression_for_the_arduino_library_is_refused(capfd, small_inputs, tmp_path):
    code, _, err = run_cli(capfd, *build_args(small_inputs, tmp_path / "out", "--tflm-compression", "lut"))
    assert_refused(code, err, tmp_path / "out", "DECODE", "--runtime tflm")


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_existing_output_folder_is_refused_without_force(capfd, small_inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous build")
    code, _, err = run_cli(capfd, *build_args(small_inputs, out))
    assert code == 2 and "already exists" in err and "--force" in err
    assert (out / "keep.txt").read_text() == "previous build"


@pytest.mark.slow
def test_model_too_big_for_the_board(capfd, small_inputs, tmp_path):
    board = (boards_dir() / "nano33ble.toml").read_text().replace("flash_bytes = 1_048_576", "flash_bytes = 20_000")
    (tmp_path / "tiny.toml").write_text(board.replace('name = "nano33ble"', 'name = "tiny"'))
    code, _, err = run_cli(capfd, *build_args(small_inputs, tmp_path / "out", "--board", str(tmp_path / "tiny.toml"),
                                              "--backend", "tflm"))
    assert_refused(code, err, tmp_path / "out", "does not fit", "20,000 B", "TFLM runtime and kernels",
                   "--backend standalone")
    assert "--sparsity" not in err  # magnitude sparsity shrinks no part of a TFLM firmware
    code, _, err = run_cli(capfd, *build_args(small_inputs, tmp_path / "auto", "--board", str(tmp_path / "tiny.toml")))
    assert code == 0, err  # the default (--backend auto: the standalone C) fits where the interpreter cannot


@pytest.mark.slow
def test_op_the_target_runtime_lacks(capfd, tmp_path, digits_data):
    """An op missing from the Arduino library's January-2023 TFLM is named with its Keras layer."""
    import tf_keras as keras

    from tinyprune.graph.runtimes import get_runtime

    inputs = keras.Input((8, 8, 1))
    rows = keras.layers.Reshape((8, 8))(inputs)
    scores = keras.layers.Dot(axes=2, name="scores")([rows, rows])  # BATCH_MATMUL: newer than January 2023
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(scores))
    keras.Model(inputs, outputs).save(tmp_path / "dot.keras")
    assert "BATCH_MATMUL" not in get_runtime("arduino").ops and "BATCH_MATMUL" in get_runtime("tflm").ops
    np.savez(tmp_path / "d.npz", x_train=digits_data.x_train[:100], y_train=digits_data.y_train[:100],
             x_test=digits_data.x_test[:20], y_test=digits_data.y_test[:20])
    code, _, err = run_cli(capfd, *build_args(tmp_path, tmp_path / "out", model="dot.keras", data="d.npz"))
    assert_refused(code, err, tmp_path / "out", "BATCH_MATMUL", "'scores'")


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_keras_model_with_a_custom_layer(capfd, small_inputs, tmp_path):
    import tf_keras as keras

    class Doubling(keras.layers.Layer):  # not registered: a user's own layer class
        def call(self, inputs):
            return inputs * 2.0

    model = keras.Sequential([keras.Input((8, 8, 1)), Doubling(name="doubling"), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    model.save(tmp_path / "custom.keras")
    code, _, err = run_cli(capfd, "build", str(tmp_path / "custom.keras"), "--data", str(small_inputs / "digits.npz"),
                           "--out", str(tmp_path / "out"))
    assert_refused(code, err, tmp_path / "out", "custom layer")


@pytest.mark.slow
def test_lstm_that_does_not_convert_to_int8_builtins(capfd, small_inputs, tmp_path):
    import tf_keras as keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Reshape((8, 8)), keras.layers.LSTM(8, name="lstm"),
                              keras.layers.Dense(10)])
    model.save(tmp_path / "lstm.keras")
    code, _, err = run_cli(capfd, *build_args(small_inputs, tmp_path / "out", model="../" + tmp_path.name + "/lstm.keras"))
    assert_refused(code, err, tmp_path / "out", "does not convert to full-integer int8", "recurrent layers")


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_output_location_that_cannot_be_written(capfd, small_inputs):
    out = Path("/sys/tinyprune-output")  # read-only even for root
    code, _, err = run_cli(capfd, *build_args(small_inputs, out))
    assert_refused(code, err, out, "cannot write in /sys")


@pytest.mark.slow
def test_pipeline_file_with_flag_overrides(capfd, small_inputs, tmp_path):
    """One reproducible command: every option in tinyprune.toml, a flag overriding one of them."""
    out = tmp_path / "from_file"
    (tmp_path / "tinyprune.toml").write_text(
        f'model = "{small_inputs / "small.keras"}"\ndata = "{small_inputs / "digits.npz"}"\n'
        f'out = "{out}"\nsparsity = 0.5\nm_by_n = "2:4"\nfine_tune_epochs = 1\ncalibration_samples = 20\n')
    code, _, err = run_cli(capfd, "build", "-c", str(tmp_path / "tinyprune.toml"), "--seed", "3", "--quiet")
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["seed"] == 3 and report["config"]["m_by_n"] == "2:4"
    assert report["prune"]["method"] == "2:4"
    graph = read_graph_file(out / "model.tflite")
    dense = next(op for op in graph.operators if op.opcode == "FULLY_CONNECTED")
    groups = np.count_nonzero(graph.tensors[dense.inputs[1]].numpy().reshape(-1, 4), axis=1)
    assert np.all(groups == 2)  # exactly 2:4 in the flatbuffer


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_console_script_prints_one_line_without_traceback(tmp_path):
    """The installed entry point, in its own process: native TensorFlow noise stays hidden."""
    result = subprocess.run([sys.executable, "-m", "tinyprune", "build", str(tmp_path / "none.keras"),
                             "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "does not exist" in result.stderr


def test_boards_table_and_json(capfd):
    code, out, _ = run_cli(capfd, "boards")
    assert code == 0 and "nano33ble" in out and "nRF52840" in out
    code, out, _ = run_cli(capfd, "boards", "--json")
    boards = {b["name"]: b for b in json.loads(out)}
    assert boards["nano33ble"]["ram_bytes"] == 262144 and len(boards) >= 8


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped one
def test_a_ctrl_c_that_python_drops_in_a_finalizer_stops_the_next_epoch():
    """Ctrl-C landing while Python runs a finalizer (TensorFlow's, during training) is printed as
    "Exception ignored" and dropped; the console raises it again at the next epoch's report."""
    import io
    import os
    import signal

    from tinyprune.console import ConsoleListener, CtrlC

    ctrl_c = CtrlC()
    listener = ConsoleListener(io.StringIO(), io.StringIO(), verbose=True, ctrl_c=ctrl_c)
    listener.progress("fine-tune", 1, 3, {"loss": 1.0})

    class Finalized:
        def __del__(self):
            ctrl_c(signal.SIGINT, None)  # the handler, as Python calls it when the signal lands here

    Finalized()  # its KeyboardInterrupt is dropped
    listener.stage("prune", "a stage line still prints")
    with pytest.raises(KeyboardInterrupt):
        listener.progress("fine-tune", 2, 3, {"loss": 1.0})
    before = signal.getsignal(signal.SIGINT)
    with CtrlC().installed() as installed, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    assert installed.pressed and signal.getsignal(signal.SIGINT) is before

"""Keras 3 in: models saved by today's `import keras` (built in a process without the legacy-Keras
switch), translated to tf-keras, proven equal on data, and built into firmware."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tinyprune.cli import main
from tinyprune.errors import TinypruneError

pytestmark = pytest.mark.slow  # every test here runs Keras 3 in a separate TensorFlow process

EVERY_LAYER = """
import keras
from keras import layers
keras.utils.set_random_seed(0)  # fixed weights: the one-weight-off check below needs outputs it moves
inputs = keras.Input((12, 12, 3), name="image")
x = layers.Rescaling(1 / 255.0, offset=-0.5)(inputs)
x = layers.Normalization(mean=[0.1, 0.0, -0.1], variance=[1.0, 2.0, 0.5])(x)
x = layers.ZeroPadding2D(1)(x)
x = layers.Conv2D(6, 3, activation="relu")(x)
x = layers.BatchNormalization()(x)
x = layers.ReLU(max_value=6.0)(x)
a = layers.SeparableConv2D(6, 3, padding="same")(x)
b = layers.DepthwiseConv2D(3, padding="same")(x)
b = layers.LeakyReLU(negative_slope=0.2)(b)
x = layers.Add()([a, b])
x = layers.Multiply()([x, layers.Activation("sigmoid")(x)])
x = layers.Subtract()([layers.ELU()(x), a])
x = layers.Concatenate()([layers.MaxPooling2D()(x), layers.AveragePooling2D(2)(x)])
x = layers.Cropping2D(1)(x)
x = layers.UpSampling2D()(x)
x = layers.PReLU()(x)
x = layers.SpatialDropout2D(0.1)(x)
x = layers.Permute((2, 1, 3))(x)
pooled = layers.GlobalAveragePooling2D()(x)
peak = layers.GlobalMaxPooling2D()(x)
x = layers.Average()([pooled, peak])
x = layers.Reshape((6, 2))(x)
x = layers.Conv1D(8, 3, padding="same", activation="tanh")(x)
x = layers.LayerNormalization()(x)
x = layers.MaxPooling1D()(x)
x = layers.GlobalAveragePooling1D()(x)
x = keras.Sequential([layers.Dense(8, activation="relu"), layers.Dense(8)], name="block")(x)  # a nested model
x = layers.Dropout(0.2)(x)
x = layers.Dense(5, name="logits")(x)
outputs = layers.Softmax()(x)
model = keras.Model(inputs, outputs)
for layer in model.layers:  # non-trivial statistics, so a mis-copied weight shows in the outputs
    if isinstance(layer, layers.BatchNormalization):
        layer.set_weights([w + 0.3 for w in layer.get_weights()])
model.get_layer("logits").set_weights([w * 20 for w in model.get_layer("logits").get_weights()])
model.save("every_layer.keras"); model.save("every_layer.h5")
lstm = keras.Sequential([keras.Input((6, 2)), layers.LSTM(4, name="memory"), layers.Dense(2)])
lstm.save("lstm.keras")
"""

DIGITS_CNN = """
import json
import keras
import numpy as np
from keras import layers
data = np.load("digits.npz")
keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((8, 8, 1)),
    layers.Conv2D(16, 3, padding="same"), layers.BatchNormalization(), layers.ReLU(),
    layers.MaxPooling2D(),
    layers.Conv2D(32, 3, padding="same", activation="relu"),
    layers.MaxPooling2D(),
    layers.Flatten(), layers.Dropout(0.1), layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(data["x_train"], data["y_train"], epochs=20, batch_size=32, verbose=0)
accuracy = float(model.evaluate(data["x_test"], data["y_test"], verbose=0)[1])
model.save("digits_k3.keras"); model.save("digits_k3.h5"); model.export("digits_k3_export")
json.dump({"accuracy": accuracy}, open("keras3.json", "w"))
"""


def run_keras3(script: str, folder) -> None:
    """Run `script` with Keras 3 as a user has it: no TF_USE_LEGACY_KERAS."""
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    run = subprocess.run([sys.executable, "-c", script], cwd=folder, env=environment, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


@pytest.fixture(scope="module")
def keras3_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras3")
    run_keras3(EVERY_LAYER, folder)
    return folder


@pytest.mark.parametrize("file", ["every_layer.keras", "every_layer.h5"])
def test_every_standard_layer_translates_and_agrees(keras3_files, file):
    from tinyprune.io.keras2 import load_model
    from tinyprune.io.keras3 import prove_translation, written_by_keras3
    from tinyprune.verify.accuracy import keras_outputs

    path = keras3_files / file
    assert written_by_keras3(path)
    model = load_model(path)
    assert type(model).__module__.startswith("tf_keras")
    x = np.random.default_rng(0).uniform(0, 255, size=(32, 12, 12, 3)).astype(np.float32)
    line = prove_translation(path, model, x)
    assert line.startswith("Keras 3 translated to tf-keras, outputs agree within") and "on 32 test samples" in line
    assert float(line.split("within ")[1].split()[0]) <= 1e-5
    assert keras_outputs(model, x).std() > 0.05  # outputs that vary: a mis-copied weight would show
    if file.endswith(".keras"):  # and it does: one weight off, and the proof stops the build
        block = model.get_layer("block").layers[0]
        block.set_weights([block.get_weights()[0] * 1.01, block.get_weights()[1]])
        with pytest.raises(TinypruneError, match="translation's outputs differ from Keras 3's by up to"):
            prove_translation(path, model, x)


def test_untranslatable_layer_is_one_line(keras3_files, tmp_path, capfd, digits_data):
    x = np.zeros((20, 6, 2), np.float32)
    np.savez(tmp_path / "seq.npz", x_train=x, y_train=np.arange(20) % 2, x_test=x, y_test=np.arange(20) % 2)
    code = main(["build", str(keras3_files / "lstm.keras"), "--data", str(tmp_path / "seq.npz"),
                 "--out", str(tmp_path / "out")])
    err = capfd.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "layer 'memory' of class LSTM has no tf-keras translation" in err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def digits_keras3(tmp_path_factory, digits_data):
    folder = tmp_path_factory.mktemp("digits_k3")
    d = digits_data
    np.savez(folder / "digits.npz", x_train=d.x_train, y_train=d.y_train, x_test=d.x_test, y_test=d.y_test)
    run_keras3(DIGITS_CNN, folder)
    return folder, json.loads((folder / "keras3.json").read_text())["accuracy"]


@pytest.mark.parametrize("file", ["digits_k3.keras", "digits_k3.h5"])
def test_keras3_model_builds_within_two_points(digits_keras3, file, tmp_path, capfd):
    folder, keras3_accuracy = digits_keras3
    out = tmp_path / "out"
    code = main(["build", str(folder / file), "--data", str(folder / "digits.npz"), "--out", str(out),
                 "--sparsity", "0.5", "--fine-tune-epochs", "5", "--board", "nano33ble"])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    load_line = next(line for line in captured.out.splitlines() if line.startswith("load"))
    assert "Keras 3 translated to tf-keras, outputs agree within" in load_line and "360 test samples" in load_line
    report = json.loads((out / "report.json").read_text())
    assert report["prune"]["sparsity"] >= 0.49
    assert abs(report["accuracy"]["float"] - keras3_accuracy) < 1e-6  # the translation scores as Keras 3 does (float32)
    assert report["accuracy"]["tflm_int8"] >= keras3_accuracy - 0.02, (report["accuracy"], keras3_accuracy)
    assert (out / "arduino").is_dir() and (out / "model.tflite").is_file()


def test_keras3_exported_saved_model_converts_and_builds(digits_keras3, tmp_path, capfd):
    """model.export() keeps no Keras layers: no pruning, but the int8 conversion, verification and firmware."""
    folder, keras3_accuracy = digits_keras3
    out = tmp_path / "out"
    code = main(["build", str(folder / "digits_k3_export"), "--data", str(folder / "digits.npz"), "--out", str(out),
                 "--board", "nano33ble"])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    assert "prune     did not apply: a SavedModel from Keras 3's model.export()" in captured.out
    report = json.loads((out / "report.json").read_text())
    assert set(report["not_applied"]) == {"train", "prune"}
    assert abs(report["accuracy"]["float"] - keras3_accuracy) < 1e-6
    assert report["accuracy"]["tflm_int8"] >= keras3_accuracy - 0.02, (report["accuracy"], keras3_accuracy)
    assert (out / "arduino" / "digits_k3_export" / "digits_k3_export.ino").is_file()

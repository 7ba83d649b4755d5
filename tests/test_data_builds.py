"""Data as users keep it, built end to end: an image folder, a CSV table, one-hot labels."""
import json

import numpy as np
import pytest

from tinyprune import api

QUICK = dict(board="nano33ble", train_epochs=4, fine_tune_epochs=1, sparsity=0.5, calibration_samples=50)


@pytest.mark.slow
def test_image_folder_builds_end_to_end(tmp_path, digits_data):
    """digits as the PNG folders image_dataset_from_directory reads (0..255 grey), into the built-in CNN."""
    from PIL import Image

    x = np.concatenate([digits_data.x_train, digits_data.x_test])
    y = np.concatenate([digits_data.y_train, digits_data.y_test])
    for index, (image, label) in enumerate(zip(x, y)):
        folder = tmp_path / "digits_png" / f"digit_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image[..., 0] * 255).astype(np.uint8), "L").save(folder / f"{index}.png")
    result = api.build(model="demo", data=str(tmp_path / "digits_png"), out=str(tmp_path / "out"),
                       **{**QUICK, "train_epochs": 10})
    report = result.report
    accuracy = report["accuracy"]
    assert report["data"]["test_samples"] == 360 and accuracy["float"] > 0.8, accuracy
    assert accuracy["tflm_int8"] >= accuracy["pruned"] - 0.02, accuracy  # 0..255 pixels quantize as well
    assert (tmp_path / "out" / "arduino").is_dir()


@pytest.mark.slow
def test_csv_table_builds_end_to_end(tmp_path):
    """wine as a CSV with a text label column, into the built-in MLP."""
    from tinyprune.io.data import wine

    data = wine()
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    lines = [",".join([*data.feature_names, "cultivar"])]
    lines += [",".join([*(f"{v:.6g}" for v in row), f"cultivar_{label}"]) for row, label in zip(x, y)]
    (tmp_path / "wine.csv").write_text("\n".join(lines) + "\n")
    result = api.build(model="demo", data=str(tmp_path / "wine.csv"), target="cultivar", out=str(tmp_path / "out"),
                       **{**QUICK, "train_epochs": 30})
    assert result.report["accuracy"]["tflm_int8"] > 0.85


@pytest.mark.slow
def test_one_hot_labels_build_as_integer_labels(tmp_path, digits_data):
    """Integer labels, integer one-hot and float one-hot: the same model bytes and the same TFLM accuracy."""
    d = digits_data
    reports = {}
    for labels in ("int", "int one-hot", "float one-hot"):
        encode = {"int": lambda y: y, "int one-hot": lambda y: np.eye(10, dtype=np.int64)[y],
                  "float one-hot": lambda y: np.eye(10, dtype=np.float32)[y]}[labels]
        path = tmp_path / f"{labels.replace(' ', '_')}.npz"
        np.savez(path, x_train=d.x_train, y_train=encode(d.y_train), x_test=d.x_test, y_test=encode(d.y_test))
        out = tmp_path / path.stem
        reports[labels] = api.build(model="demo", data=str(path), out=str(out), name="digits", **QUICK).report
        reports[labels]["bytes"] = (out / "model.tflite").read_bytes()
    accuracies = {labels: report["accuracy"]["tflm_int8"] for labels, report in reports.items()}
    assert accuracies["int"] > 0.85 and len(set(accuracies.values())) == 1, accuracies
    assert len({report["bytes"] for report in reports.values()}) == 1

"""Reading Keras 3 files without Keras or TensorFlow: which layer each weight group belongs to, in .keras
archives (groups named by class and order) and .h5 files (weights named by layer), nested models included."""
import io
import json
import zipfile

import h5py
import numpy as np

from tinyprune.io.keras3 import _snake_case, read_keras3, written_by_keras3


def _layer(class_name, name, **extra):
    return {"class_name": class_name, "config": {"name": name, **extra}}


SEQUENTIAL = {"class_name": "Sequential", "config": {"name": "seq", "layers": [
    _layer("InputLayer", "in", batch_shape=[None, 4]), _layer("Dense", "first"),
    _layer("Sequential", "block", layers=[_layer("Dense", "inner"), _layer("BatchNormalization", "norm")]),
    _layer("Dense", "last"), _layer("ReLU", "relu")]}}


def _keras_archive(path, config, groups: dict):
    weights = io.BytesIO()
    with h5py.File(weights, "w") as file:
        for group, arrays in groups.items():
            variables = file.create_group(f"layers/{group}/vars")
            for i, array in enumerate(arrays):
                variables[str(i)] = array
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", weights.getvalue())


def test_snake_case_names_keras_gives_weight_groups():
    assert [_snake_case(c) for c in ("Conv2D", "ReLU", "BatchNormalization", "DepthwiseConv2D", "InputLayer")] == [
        "conv2d", "re_lu", "batch_normalization", "depthwise_conv2d", "input_layer"]


def test_keras_archive_weights_map_to_layer_names(tmp_path):
    first, last = np.ones((4, 3)), np.full((3, 2), 2.0)
    inner, norm = np.full((3, 3), 3.0), [np.full(3, 4.0)] * 4
    _keras_archive(tmp_path / "m.keras", SEQUENTIAL, {
        "dense": [first], "dense_1": [last],  # a Sequential's InputLayer takes no group; order counts per class
        "sequential/layers/dense": [inner], "sequential/layers/batch_normalization": norm})
    assert written_by_keras3(tmp_path / "m.keras")
    weights = read_keras3(tmp_path / "m.keras").weights
    assert set(weights) == {"first", "inner", "norm", "last", "relu"}
    assert np.array_equal(weights["first"][0], first) and np.array_equal(weights["last"][0], last)
    assert np.array_equal(weights["inner"][0], inner) and len(weights["norm"]) == 4 and weights["relu"] == []


def test_legacy_h5_weights_map_to_layer_names(tmp_path):
    with h5py.File(tmp_path / "m.h5", "w") as file:
        file.attrs["keras_version"] = "3.15.1"
        file.attrs["model_config"] = json.dumps(SEQUENTIAL)
        weights = file.create_group("model_weights")
        for group, names in (("first", ["first/kernel"]), ("block", ["block/inner/kernel", "block/norm/gamma"])):
            weights.create_group(group).attrs["weight_names"] = names
            for i, name in enumerate(names):
                weights[group][name] = np.full(2, float(i))
        weights.create_group("relu").attrs["weight_names"] = []
    assert written_by_keras3(tmp_path / "m.h5")
    read = read_keras3(tmp_path / "m.h5").weights
    assert set(read) == {"first", "inner", "norm"} and np.array_equal(read["norm"][0], [1.0, 1.0])

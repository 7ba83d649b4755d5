"""Keras 3 in: a .keras or .h5 written by Keras 3 (`import keras`), read without importing Keras 3 (its
config.json / model_config and its weights through h5py), rebuilt layer by layer as the tf-keras model
TF-MOT needs, its weights copied, and the translation proven: both models' outputs on the user's data
must agree before anything else runs. Keras 3's outputs come from a subprocess without the legacy-Keras
switch, since one process cannot hold both Keras versions."""
from __future__ import annotations

import inspect
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyprune.errors import TinypruneError

# Standard layers whose tf-keras class takes the same arguments (after the renames below) and holds the
# same weights in the same order.
TRANSLATABLE = frozenset((
    "InputLayer", "Dense", "Conv1D", "Conv2D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
    "SeparableConv2D", "BatchNormalization", "LayerNormalization", "MaxPooling1D", "MaxPooling2D",
    "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Reshape", "Flatten",
    "Permute", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "ZeroPadding1D",
    "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D", "Rescaling", "Normalization",
))
MODEL_CLASSES = frozenset(("Sequential", "Functional", "Model"))  # nested models translate recursively
RENAMED = {("InputLayer", "batch_shape"): "batch_input_shape", ("LeakyReLU", "negative_slope"): "alpha"}
# Initial values and constraints do not matter once the weights are copied.
DROPPED = re.compile(r".*_(initializer|constraint)$")
TOLERANCE = 1e-4  # of the largest output magnitude: float32 reorderings, not a different model
SAVE_HINT = "save it with model.save('model.keras') from Keras 3, or rebuild it with tf_keras"


@dataclass
class Keras3File:
    config: dict  # the model's Keras 3 config
    weights: dict[str, list[np.ndarray]]  # layer name -> its weights in Keras 3's order
    version: str


def written_by_keras3(path: Path) -> bool:
    """A .keras archive or .h5 file that names Keras 3.x as its writer."""
    return _keras_version(path).startswith("3.")


def _keras_version(path: Path) -> str:
    import h5py

    try:
        if path.suffix == ".keras" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("metadata.json")).get("keras_version", "")
        if path.suffix in (".h5", ".hdf5") and h5py.is_hdf5(path):
            with h5py.File(path, "r") as file:
                version = file.attrs.get("keras_version", "")
                return version.decode() if isinstance(version, bytes) else str(version)
    except (KeyError, OSError, ValueError):
        pass
    return ""


def read_keras3(path: Path) -> Keras3File:
    """The config and the weights of each layer, by layer name."""
    import h5py

    version = _keras_version(path)
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
                with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as file:
                    return Keras3File(config, _archive_weights(config, file["layers"]), version)
        with h5py.File(path, "r") as file:
            config = json.loads(file.attrs["model_config"])
            group = file["model_weights"] if "model_weights" in file else file
            return Keras3File(config, _legacy_h5_weights(group), version)
    except (KeyError, OSError, ValueError) as exc:
        raise TinypruneError(f"{path} (Keras {version}) is corrupt or truncated ({type(exc).__name__}: {exc})",
                             SAVE_HINT) from exc


def _snake_case(class_name: str) -> str:
    """Keras's own naming of a saved layer's weights group (Conv2D -> conv2d, ReLU -> re_lu)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", class_name))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _layers(config: dict) -> list[dict]:
    return config["config"]["layers"]


def _archive_weights(config: dict, layers_group) -> dict[str, list[np.ndarray]]:
    """A .keras archive groups weights by class name in the order of model.layers (which leaves out a
    Sequential's InputLayer), numbered conv2d, conv2d_1, ...: map them back to the layer names, nested
    models' layers included."""
    used: dict[str, int] = {}
    weights = {}
    for layer in _layers(config):
        if config["class_name"] == "Sequential" and layer["class_name"] == "InputLayer":
            continue
        base = _snake_case(layer["class_name"])
        group_name = base if base not in used else f"{base}_{used[base] + 1}"
        used[base] = used[base] + 1 if base in used else 0
        group = layers_group[group_name] if group_name in layers_group else {}
        if layer["class_name"] in MODEL_CLASSES:
            weights.update(_archive_weights(layer, group["layers"]))
            continue
        variables = group["vars"] if "vars" in group else {}
        weights[layer["config"]["name"]] = [np.asarray(variables[str(i)]) for i in range(len(variables))]
    return weights


def _legacy_h5_weights(group) -> dict[str, list[np.ndarray]]:
    """The .h5 format lists each top-level layer's weights in order in its weight_names attribute, as
    .../<layer name>/<variable>: a nested model's list holds its layers' weights, grouped here by layer."""
    weights: dict[str, list[np.ndarray]] = {}
    for name in group:
        if not hasattr(group[name], "attrs") or "weight_names" not in group[name].attrs:
            continue
        for weight in group[name].attrs["weight_names"]:
            weight = weight.decode() if isinstance(weight, bytes) else str(weight)
            owner = weight.split("/")[-2] if weight.count("/") > 1 else name
            weights.setdefault(owner, []).append(np.asarray(group[name][weight]))
    return weights


def translate(source: Keras3File, path: Path):
    """The equivalent tf-keras model, weights copied; a layer it cannot rebuild is a one-line error."""
    built: dict = {}
    model = _model(source.config, source.weights, path, built)
    for name, layer in built.items():
        _copy_weights(layer, name, source.weights, path)
    return model


def _model(config: dict, weights: dict, path: Path, built: dict):
    """A Sequential or functional model (the top one or a nested one), its leaf layers put in `built`."""
    import tf_keras as keras

    kind = config.get("class_name")
    if kind not in MODEL_CLASSES:
        raise TinypruneError(f"{path} holds a Keras 3 {kind}, not a Sequential or functional model",
                             "save a keras.Sequential or a functional keras.Model (subclassed models have no "
                             "config to translate)")
    for layer in _layers(config):
        if layer["class_name"] not in TRANSLATABLE | MODEL_CLASSES:
            raise TinypruneError(
                f"{path}: layer {layer['config'].get('name')!r} of class {layer['class_name']} has no tf-keras "
                "translation", "replace it with standard Keras layers (Dense, Conv, pooling, BatchNormalization, "
                "activations, Add, Concatenate, Reshape, ...) and save again")
    if kind == "Sequential":
        model = keras.Sequential(name=config["config"].get("name"))
        for layer in _layers(config):
            model.add(_layer(layer, weights, path, built))
        if not any(layer["class_name"] == "InputLayer" for layer in _layers(config)):
            model.build(tuple(config["config"]["build_input_shape"]))
        return model
    tensors = {}
    for layer in _layers(config):
        name = layer["config"]["name"]
        translated = _layer(layer, weights, path, built)
        if layer["class_name"] == "InputLayer":
            tensors[(name, 0, 0)] = translated.output
            continue
        for node_index, node in enumerate(layer["inbound_nodes"]):
            args = _resolve(node.get("args", []), tensors)
            kwargs = {k: _resolve(v, tensors) for k, v in node.get("kwargs", {}).items()
                      if v is not None and k not in ("mask", "training")}
            output = translated(*args, **kwargs)
            for tensor_index, tensor in enumerate(output if isinstance(output, (list, tuple)) else [output]):
                tensors[(name, node_index, tensor_index)] = tensor
    ends = {key: [tensors[tuple(h)] for h in _histories(config["config"][key])]
            for key in ("input_layers", "output_layers")}
    return keras.Model(ends["input_layers"], ends["output_layers"], name=config["config"].get("name"))


def _layer(layer: dict, weights: dict, path: Path, built: dict):
    """A nested model translated whole, or one leaf layer (remembered for the weight copy)."""
    if layer["class_name"] in MODEL_CLASSES:
        return _model(layer, weights, path, built)
    built[layer["config"]["name"]] = _build_layer(layer, weights, path)
    return built[layer["config"]["name"]]


def _histories(value: list) -> list[list]:
    """input_layers / output_layers: one [name, node, tensor] or a list of them."""
    return [value] if value and isinstance(value[0], str) else value


def _resolve(value, tensors: dict):
    """A node's arguments with each serialized Keras 3 tensor replaced by the tf-keras tensor."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return tensors[tuple(value["config"]["keras_history"])]
    if isinstance(value, (list, tuple)):
        return [_resolve(v, tensors) for v in value]
    return value


def _build_layer(layer: dict, weights: dict, path: Path):
    """The tf-keras layer of the same class from the Keras 3 config: Keras-3-only arguments dropped,
    renamed ones renamed, the dtype policy as its name."""
    import tf_keras as keras

    class_name, config = layer["class_name"], dict(layer["config"])
    name = config.get("name")
    if isinstance(config.get("dtype"), dict):
        config["dtype"] = config["dtype"].get("config", {}).get("name", "float32")
    for (owner, old), new in RENAMED.items():
        if owner == class_name and old in config:
            config[new] = config.pop(old)
    if class_name == "Normalization" and config.get("mean") is None:  # adapted: its statistics are weights
        mean, variance, *_ = weights.get(name) or [None, None]
        config.update(mean=mean, variance=variance)
    cls = getattr(keras.layers, class_name)
    accepted = set(inspect.signature(cls.__init__).parameters) | {"name", "trainable", "dtype"}
    if class_name == "InputLayer":
        accepted |= {"batch_input_shape"}
    config = {k: v for k, v in config.items() if k in accepted and not DROPPED.match(k)}
    try:
        return cls(**config)
    except (ValueError, TypeError) as exc:
        raise TinypruneError(f"{path}: layer {name!r} of class {class_name} does not translate to tf-keras "
                             f"({str(exc).splitlines()[0][:120]})",
                             "replace it with standard Keras layers and save again") from exc


def _copy_weights(layer, name: str, weights: dict, path: Path) -> None:
    arrays = weights.get(name, [])
    if type(layer).__name__ == "Normalization":
        return  # its statistics went into the constructor
    expected = [tuple(w.shape) for w in layer.weights]
    if [tuple(a.shape) for a in arrays] != expected:
        raise TinypruneError(f"{path}: layer {name!r} of class {type(layer).__name__} holds weights of shapes "
                             f"{[a.shape for a in arrays]}, its tf-keras translation {expected}",
                             "replace it with standard Keras layers and save again")
    layer.set_weights(arrays)


REFERENCE_SCRIPT = """
import sys
import numpy as np
import keras
model = keras.saving.load_model(sys.argv[1], compile=False)
np.save(sys.argv[3], np.asarray(model.predict(np.load(sys.argv[2]), batch_size=256, verbose=0)))
"""


def keras3_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """The Keras 3 model's own outputs on x, from a process without the legacy-Keras switch."""
    environment = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    with tempfile.TemporaryDirectory() as folder:
        inputs, outputs = Path(folder) / "x.npy", Path(folder) / "y.npy"
        np.save(inputs, x.astype(np.float32))
        run = subprocess.run([sys.executable, "-c", REFERENCE_SCRIPT, str(path), str(inputs), str(outputs)],
                             env=environment, capture_output=True, text=True)
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or ["no message"])[-1]
            raise TinypruneError(f"Keras 3 could not run {path} to prove the translation ({last[:160]})",
                                 "install Keras 3 beside tf-keras (pip install keras), or save the model with "
                                 "tf_keras")
        return np.load(outputs)


def prove_translation(path: Path, model, x: np.ndarray) -> str:
    """Both models' outputs on x agree within TOLERANCE of the largest output, or the build stops."""
    from tinyprune.verify.accuracy import keras_outputs

    reference = keras3_outputs(path, x).reshape(len(x), -1)
    translated = keras_outputs(model, x).reshape(len(x), -1)
    difference = float(np.max(np.abs(reference - translated))) if reference.shape == translated.shape else np.inf
    limit = TOLERANCE * max(1.0, float(np.max(np.abs(reference))))
    if not difference <= limit:
        raise TinypruneError(f"{path}: the tf-keras translation's outputs differ from Keras 3's by up to "
                             f"{difference:.3g} on {len(x)} samples (allowed {limit:.1g})",
                             "please report the model; meanwhile rebuild it with tf_keras")
    return f"Keras 3 translated to tf-keras, outputs agree within {difference:.1e} on {len(x)} test samples"

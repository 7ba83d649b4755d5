"""Stage 1 (model): load a model saved by tf-keras (.keras, .h5 or a SavedModel folder), or by Keras 3
(.keras, .h5: translated by io/keras3.py)."""
from __future__ import annotations

import re
from pathlib import Path

from tinyprune.errors import TinypruneError

SAVE_HINT = "save it with tf_keras: model.save('model.keras') (or .h5, or a SavedModel folder)"


def require_training_side() -> None:
    """Keras models, training, pruning and quantization need TensorFlow, which the light install (an int8
    .tflite's inspect and build) leaves out: say how to add it rather than fail on an import."""
    try:
        import tensorflow  # noqa: F401
        import tf_keras  # noqa: F401
    except ImportError as exc:
        raise TinypruneError(f"this build needs TensorFlow and tf-keras, which are not installed ({exc.name})",
                             'pip install "tinyprune[keras]" (the light install builds int8 .tflite models only)'
                             ) from None


def load_model(path: str | Path):
    """A compiled-free tf_keras model; every failure is a TinypruneError naming the file."""
    import tf_keras as keras

    path = Path(path)
    if not path.exists():
        raise TinypruneError(f"model file {path} does not exist", f"check the path; {SAVE_HINT}")
    if path.is_file() and path.stat().st_size == 0:
        raise TinypruneError(f"model file {path} is empty", SAVE_HINT)
    if path.is_file() and path.suffix not in (".keras", ".h5", ".hdf5"):
        raise TinypruneError(f"{path} is not a Keras model file (.keras, .h5) nor a SavedModel folder",
                             SAVE_HINT)
    from tinyprune.io.keras3 import read_keras3, translate, written_by_keras3

    try:
        model = (translate(read_keras3(path), path) if written_by_keras3(path)
                 else keras.models.load_model(path, compile=False))
    except TinypruneError:
        raise
    except (ValueError, TypeError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        # tf_keras words an unresolvable layer class in several ways, depending on how it was saved
        custom = re.search(r"Unknown layer: '?(\w+)|deserialize object of type `(\w+)`|"
                           r"Received: layer=(\w+) of type <class 'str'>", message)
        if custom:
            name = next(group for group in custom.groups() if group)
            raise TinypruneError(
                f"{path} uses the custom layer {name}, which tinyprune cannot rebuild",
                "replace the custom layer with built-in Keras layers (TFLM runs only builtin operators)",
            ) from exc
        raise TinypruneError(f"{path} could not be read as a Keras model: {message[:200]}", SAVE_HINT) from exc
    except Exception as exc:  # h5py/zipfile/protobuf errors: a corrupt or truncated file
        raise TinypruneError(f"{path} is corrupt or truncated ({type(exc).__name__})", SAVE_HINT) from exc
    if not isinstance(model, keras.Model):
        raise TinypruneError(f"{path} holds a {type(model).__name__}, not a Keras model", SAVE_HINT)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise TinypruneError(
            f"{path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs",
            "give a model with one input and one output (the firmware runs one tensor in, one out)",
        )
    return model


def input_shape(model) -> tuple[int, ...]:
    return tuple(int(d) for d in model.input_shape[1:])


def output_units(model) -> int:
    return int(model.output_shape[-1])


def outputs_probabilities(model) -> bool:
    """Whether the last layer already applies softmax (the loss must then not expect logits)."""
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", "") == "softmax" or type(last).__name__ == "Softmax"

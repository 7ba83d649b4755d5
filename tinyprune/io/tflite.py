"""Models taken as they are: an int8 .tflite (no training, pruning or quantization) or a SavedModel from
Keras 3's model.export() (no Keras layers to prune: converted to int8 only). Either is checked, verified
(TFLM accuracy when data is given, LiteRT against TFLM, the exact arena) and exported like a built model.
For a .tflite nothing here needs TensorFlow: it reads, checks, sizes and exports on the light install."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyprune.errors import TinypruneError

NOT_APPLIED = {
    "train": "the model comes trained",
    "prune": "an int8 flatbuffer has no Keras layers to prune; prune the Keras model instead",
    "quantize": "the model is already full-integer int8",
}
NOT_APPLIED_SAVED_MODEL = {
    "train": NOT_APPLIED["train"],
    "prune": "a SavedModel from Keras 3's model.export() keeps no Keras layers to prune; save the model with "
             "model.save('model.keras') to prune it",
}


@dataclass
class Prebuilt:
    model_bytes: bytes | None  # None for a SavedModel until it is converted
    graph: object | None  # tinyprune.graph.ir.Graph of model_bytes
    data: object | None  # tinyprune.io.dataset.Dataset, or None: a deterministic self-test input instead
    name: str  # a C identifier for the firmware
    source: str
    not_applied: dict  # stage -> why it did not apply
    scores: list = field(default_factory=list)  # the float model's score, for an exported SavedModel


def is_tflite(model: str) -> bool:
    return str(model).endswith(".tflite")


def is_exported_saved_model(model: str) -> bool:
    """A SavedModel without Keras's metadata: Keras 3's model.export() (or tf.saved_model.save)."""
    folder = Path(model)
    return (folder / "saved_model.pb").is_file() and not (folder / "keras_metadata.pb").is_file()


def takes_model_as_it_is(model: str) -> bool:
    """Models that skip training and pruning: an int8 .tflite, an exported SavedModel."""
    return is_tflite(model) or is_exported_saved_model(model)


def load_model_as_it_is(config) -> Prebuilt:
    """The int8 flatbuffer (refused with the true reason when it is not int8) or the exported SavedModel,
    and the data set if one was given (read at the model's input shape)."""
    from tinyprune.backends.templates import c_identifier

    path = Path(config.model)
    name = c_identifier(config.name or path.stem)
    if is_exported_saved_model(config.model):
        from tinyprune.io.keras2 import require_training_side

        require_training_side()
        input_shape, outputs = _saved_model_shapes(path)
        return Prebuilt(None, None, _data(config, input_shape, outputs), name, str(path), NOT_APPLIED_SAVED_MODEL)
    graph = _int8_graph(path)
    input_shape = tuple(int(d) for d in graph.input_tensors()[0].shape[1:])
    outputs = int(np.prod(graph.output_tensors()[0].shape[1:]))
    return Prebuilt(path.read_bytes(), graph, _data(config, input_shape, outputs) if config.data else None, name,
                    str(path), NOT_APPLIED)


def _data(config, input_shape: tuple, outputs: int):
    from tinyprune.io.data import load_dataset, validate

    data = load_dataset(config.data, config.seed, config.target, input_shape)
    validate(data, input_shape, outputs, config.calibration_samples)
    return data


def _int8_graph(path: Path):
    from tinyprune.graph.reader import read_graph_file

    graph = read_graph_file(path)
    inputs, outputs = graph.input_tensors(), graph.output_tensors()
    if len(inputs) != 1 or len(outputs) != 1:
        raise TinypruneError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs",
                             "give a model with one input and one output (the firmware runs one tensor in, one out)")
    for role, tensor in (("input", inputs[0]), ("output", outputs[0])):
        if tensor.dtype != "int8":
            raise TinypruneError(
                f"{path} is not a full-integer int8 model (its {role} {tensor.name!r} is {tensor.dtype}); tinyprune "
                "targets int8: the arena, flash and firmware it proves are those of TFLM's int8 kernels",
                "convert it with full-integer quantization (optimizations=[tf.lite.Optimize.DEFAULT], a "
                "representative_dataset, supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8], int8 inference "
                "input and output), or give tinyprune build the Keras model")
    return graph


def _serving_function(path: Path):
    import tensorflow as tf

    try:
        function = tf.saved_model.load(str(path)).signatures["serving_default"]
    except (KeyError, OSError, ValueError) as exc:
        raise TinypruneError(f"{path} is not a loadable SavedModel with a serving_default signature "
                             f"({type(exc).__name__})", "export it with Keras 3's model.export(folder)") from exc
    inputs = function.structured_input_signature[1]
    if len(inputs) != 1 or len(function.structured_outputs) != 1:
        raise TinypruneError(f"{path} has {len(inputs)} inputs and {len(function.structured_outputs)} outputs",
                             "give a model with one input and one output (the firmware runs one tensor in, one out)")
    return function, next(iter(inputs.items()))


def _saved_model_shapes(path: Path) -> tuple[tuple, int]:
    function, (_, spec) = _serving_function(path)
    output = next(iter(function.structured_outputs.values()))
    return tuple(int(d) for d in spec.shape[1:]), int(np.prod(output.shape[1:]))


def convert_saved_model(prebuilt: Prebuilt, config, target) -> Prebuilt:
    """The quantize stage for an exported SavedModel: its float score on the test data, then the same
    full-integer conversion a Keras build gets (per-tensor dense weights where the runtime needs them)."""
    from dataclasses import replace

    from tinyprune.graph.reader import read_graph
    from tinyprune.quantize import quantize_saved_model, representative_samples
    from tinyprune.verify.accuracy import score

    function, (input_name, _) = _serving_function(Path(prebuilt.source))
    data = prebuilt.data
    outputs = np.concatenate([
        next(iter(function(**{input_name: data.x_test[i:i + 256].astype(np.float32)}).values())).numpy()
        for i in range(0, len(data.x_test), 256)])
    calibration = representative_samples(data.calibration, config.calibration_samples, config.seed)
    model_bytes = quantize_saved_model(prebuilt.source, calibration, target.runtime.per_channel_fully_connected)
    return replace(prebuilt, model_bytes=model_bytes, graph=read_graph(model_bytes),
                   scores=[score(outputs, data.y_test, data.task, "float")])


def describe_convert(prebuilt: Prebuilt) -> str:
    return (f"full-int8 TFLite {len(prebuilt.model_bytes):,} B from the SavedModel "
            f"(float model {prebuilt.scores[0].metric} {prebuilt.scores[0].value:.2%})")


def describe_load(prebuilt: Prebuilt) -> str:
    graph = prebuilt.graph
    line = (f"{prebuilt.source}: exported SavedModel (no Keras layers); " if graph is None else
            f"{prebuilt.source}: int8 TFLite {graph.model_bytes:,} B, {len(graph.operators)} operators, input "
            f"{tuple(graph.input_tensors()[0].shape[1:])}; ")
    data = prebuilt.data
    if data is None:
        return line + "no data: the self-test is a deterministic input and TFLM's output"
    return line + (f"{data.name}: {len(data.x_test)} test samples, {data.task}"
                   + "".join(f"; {note}" for note in data.notes))


def self_test_inputs(graph, seed: int, count: int) -> np.ndarray:
    """Without data: int8 inputs drawn from a seeded generator over the whole int8 range."""
    shape = tuple(int(d) for d in graph.input_tensors()[0].shape[1:])
    return np.random.default_rng(seed).integers(-128, 128, size=(count, *shape), dtype=np.int64).astype(np.int8)


def as_quantized(prebuilt: Prebuilt):
    """The .tflite in the place of the quantize stage's output: the same bytes for every role."""
    from tinyprune.stages import Quantized

    weights = [prebuilt.graph.tensors[op.inputs[1]] for op in prebuilt.graph.operators
               if op.opcode == "FULLY_CONNECTED" and len(op.inputs) > 1 and op.inputs[1] >= 0]
    per_channel_dense = any(w.quantization and w.quantization.per_channel for w in weights)
    model = prebuilt.model_bytes
    return Quantized(model_bytes=model, uncompressed_bytes=model, dense_bytes=model, calibration_samples=0,
                     per_channel_dense=per_channel_dense, per_channel=per_channel_dense)


def verify_tflite(checked, prebuilt: Prebuilt, config, target, folder: Path):
    """The verify stage on the model as it is: TFLM's and LiteRT's accuracy on the test data when given,
    else a deterministic self-test input; the arena, firmware, proof and fit as for a built model."""
    from tinyprune.backends.base import TEST_VECTORS
    from tinyprune.stages import Verified, agreement_of, run_int8
    from tinyprune.verify.accuracy import int8_inputs, int8_outputs_to_float, score

    graph, data = checked.graph, prebuilt.data
    x_int8 = (int8_inputs(graph, data.x_test) if data is not None
              else self_test_inputs(graph, config.seed, TEST_VECTORS))
    run = run_int8(checked, x_int8, config, target, prebuilt.name, folder)
    scores = [] if data is None else [*prebuilt.scores, *(
        score(int8_outputs_to_float(graph, outputs), data.y_test, data.task, stage)
        for stage, outputs in (("litert_int8", run.litert), ("tflm_int8", run.tflm)))]
    return Verified(checked, run.arena, run.host_arena, scores, agreement_of(checked, x_int8, run), None)

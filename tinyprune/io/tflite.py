"""An int8 .tflite as it is: no training, pruning or quantization. It is checked, verified (TFLM accuracy
when data is given, LiteRT against TFLM, the exact arena) and exported like a built model. Nothing here
needs TensorFlow: reading, checking, sizing and exporting a .tflite run on a light install."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyprune.errors import TinypruneError

NOT_APPLIED = {
    "train": "the .tflite is a trained model as it is",
    "prune": "an int8 flatbuffer has no Keras layers to prune; prune the Keras model instead",
    "quantize": "the model is already full-integer int8",
}


@dataclass
class Prebuilt:
    model_bytes: bytes
    graph: object  # tinyprune.graph.ir.Graph
    data: object | None  # tinyprune.io.dataset.Dataset, or None: a deterministic self-test input instead
    name: str  # a C identifier for the firmware
    source: str


def is_tflite(model: str) -> bool:
    return str(model).endswith(".tflite")


def load_tflite(config) -> Prebuilt:
    """The flatbuffer, refused with the true reason when it is not full-integer int8, and the data set if
    one was given (read at the model's input shape)."""
    from tinyprune.backends.templates import c_identifier
    from tinyprune.graph.reader import read_graph_file
    from tinyprune.io.data import load_dataset, validate

    path = Path(config.model)
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
    data = None
    input_shape = tuple(int(d) for d in inputs[0].shape[1:])
    if config.data:
        data = load_dataset(config.data, config.seed, config.target, input_shape)
        validate(data, input_shape, int(np.prod(outputs[0].shape[1:])))
    name = c_identifier(config.name or path.stem)
    return Prebuilt(path.read_bytes(), graph, data, name, str(path))


def describe_load(prebuilt: Prebuilt) -> str:
    graph = prebuilt.graph
    line = (f"{prebuilt.source}: int8 TFLite {graph.model_bytes:,} B, {len(graph.operators)} operators, input "
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
    from tinyprune.stages import Verified, run_int8
    from tinyprune.verify.accuracy import agreement, int8_inputs, int8_outputs_to_float, score

    graph, data = checked.graph, prebuilt.data
    x_int8 = (int8_inputs(graph, data.x_test) if data is not None
              else self_test_inputs(graph, config.seed, TEST_VECTORS))
    run = run_int8(checked, x_int8, config, target, prebuilt.name, folder)
    scores = [] if data is None else [
        score(int8_outputs_to_float(graph, outputs), data.y_test, data.task, stage)
        for stage, outputs in (("litert_int8", run.litert), ("tflm_int8", run.tflm))]
    return Verified(checked, run.arena, run.host_arena, run.memory, scores, agreement(run.litert, run.tflm),
                    run.fit, run.generated, run.proof, None)

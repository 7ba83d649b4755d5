"""Stage 5 (accuracy): score every stage on the test set — float Keras, pruned Keras, LiteRT int8 and
the real TFLM interpreter — and count the output bytes where LiteRT and TFLM disagree.

TFLM is the oracle: it is what runs on the board. LiteRT rounds some requantizations differently, so
its count of differing bytes is reported, never used as the reference."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyprune.graph.ir import Graph, Quantization


@dataclass
class Score:
    stage: str  # "float", "pruned", "litert_int8", "tflm_int8"
    metric: str  # "accuracy" or "mse"
    value: float
    samples: int


@dataclass
class Agreement:
    """LiteRT against TFLM on the int8 outputs of the whole test set."""

    differing_bytes: int
    total_bytes: int
    differing_samples: int
    max_abs_difference: int
    first_difference: str = ""  # where the two part ways, operator by operator (verify/layers.py)


def quantize(x: np.ndarray, quantization: Quantization) -> np.ndarray:
    """Float inputs to int8 as the firmware must: round(x / scale) + zero_point, saturated."""
    q = np.round(np.asarray(x, dtype=np.float64) / quantization.scale[0]) + quantization.zero_point[0]
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, quantization: Quantization) -> np.ndarray:
    return (q.astype(np.float64) - quantization.zero_point[0]) * quantization.scale[0]


def score(predictions: np.ndarray, y: np.ndarray, task: str, stage: str) -> Score:
    """Accuracy of the argmax for classification, mean squared error for regression."""
    if task == "classification":
        value = float(np.mean(np.argmax(predictions.reshape(len(y), -1), axis=1) == y))
        return Score(stage, "accuracy", value, len(y))
    value = float(np.mean((predictions.reshape(y.shape) - y) ** 2))
    return Score(stage, "mse", value, len(y))


def keras_outputs(model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The Keras model's outputs, by direct calls in batches: model.predict builds a data pipeline on
    every call, 100 ms that pruning's scans and paths would pay hundreds of times."""
    return np.concatenate([np.asarray(model(x[start:start + batch_size], training=False))
                           for start in range(0, len(x), batch_size)])


def litert_outputs(model_bytes: bytes, x_int8: np.ndarray) -> np.ndarray:
    """int8 outputs of LiteRT's interpreter, one sample at a time (batch 1, as converted)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    for sample in x_int8:
        interpreter.set_tensor(input_index, sample[np.newaxis, ...])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_index)[0].copy())
    return np.stack(outputs)


def tflm_outputs(model_bytes: bytes, x_int8: np.ndarray, arena_size: int | None = None,
                 output: int | None = 0) -> np.ndarray:
    """Outputs of the real TFLM interpreter (the tflite-micro package), one sample at a time: output
    number `output` of each sample, or with output=None every output flattened and concatenated (to
    compare whole models). Without arena_size the arena is generous (16 times the model, at least
    1 MiB): on the host it is only memory, and a too-small one can crash the process."""
    from tflite_micro.python.tflite_micro import runtime

    arena_size = arena_size or max(16 * len(model_bytes), 1 << 20)
    interpreter = runtime.Interpreter.from_bytes(bytes(model_bytes), arena_size=arena_size)
    every_output = range(_output_count(model_bytes)) if output is None else None
    outputs = []
    for sample in x_int8:
        interpreter.set_input(sample[np.newaxis, ...], 0)
        interpreter.invoke()
        if every_output is None:
            outputs.append(np.array(interpreter.get_output(output))[0].copy())
        else:
            outputs.append(np.concatenate([np.asarray(interpreter.get_output(i)).ravel() for i in every_output]))
    return np.stack(outputs)


def _output_count(model_bytes: bytes) -> int:
    # TFLM's reader, not ours: it also opens models whose encoded tensors carry stale quantization
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    return len(model_editor.read(model_bytes).subgraphs[0].outputs)


def agreement(litert: np.ndarray, tflm: np.ndarray) -> Agreement:
    difference = np.abs(litert.astype(np.int32) - tflm.astype(np.int32))
    per_sample = difference.reshape(len(difference), -1)
    return Agreement(
        differing_bytes=int(np.count_nonzero(difference)),
        total_bytes=int(difference.size),
        differing_samples=int(np.count_nonzero(per_sample.max(axis=1))),
        max_abs_difference=int(difference.max()) if difference.size else 0,
    )


def confusion_matrix(reference: np.ndarray, other: np.ndarray, classes: int) -> list[list[int]]:
    """Counts of (reference class, other class) over the samples: where two models' argmax agree."""
    rows = np.argmax(reference.reshape(len(reference), -1), axis=1)
    columns = np.argmax(other.reshape(len(other), -1), axis=1)
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (rows, columns), 1)
    return matrix.tolist()


def int8_outputs_to_float(graph: Graph, outputs: np.ndarray) -> np.ndarray:
    return dequantize(outputs, graph.output_tensors()[0].quantization)


def int8_inputs(graph: Graph, x: np.ndarray) -> np.ndarray:
    return quantize(x, graph.input_tensors()[0].quantization)

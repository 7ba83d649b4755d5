"""The oracle for compressed models: TFLM's host interpreter (the tflite-micro package, built with
the DECODE kernel). A compressed model must give byte-identical outputs to the model it came from."""
from __future__ import annotations

import numpy as np

from tinyprune.errors import TinypruneError


def _interpreter(model_bytes: bytes):
    from tflite_micro.python.tflite_micro import runtime

    # generous: the host arena is only memory here, and a too-small one can crash the process
    return runtime.Interpreter.from_bytes(bytes(model_bytes), arena_size=max(16 * len(model_bytes), 1 << 20))


def _output_count(model_bytes: bytes) -> int:
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    return len(model_editor.read(model_bytes).subgraphs[0].outputs)


def tflm_outputs(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Raw outputs (each sample's outputs flattened and concatenated) of TFLM for float inputs x,
    quantized with the model's input quantization."""
    interpreter = _interpreter(model_bytes)
    details = interpreter.get_input_details(0)
    dtype = np.dtype(details["dtype"])
    outputs = _output_count(model_bytes)
    rows = []
    for sample in np.asarray(x, dtype=np.float32):
        if np.issubdtype(dtype, np.integer):
            quantization = details["quantization_parameters"]
            scale, zero_point = float(quantization["scales"][0]), int(quantization["zero_points"][0])
            info = np.iinfo(dtype)
            sample = np.clip(np.round(sample / scale + zero_point), info.min, info.max)
        interpreter.set_input(sample.astype(dtype)[np.newaxis, ...], 0)
        interpreter.invoke()
        rows.append(np.concatenate([np.asarray(interpreter.get_output(i)).ravel() for i in range(outputs)]))
    return np.stack(rows)


def check_identical(reference: bytes, compressed: bytes, x: np.ndarray) -> int:
    """Raise unless `compressed` gives byte-identical TFLM outputs to `reference` on every sample of x;
    returns the number of samples compared."""
    expected, actual = tflm_outputs(reference, x), tflm_outputs(compressed, x)
    differing = np.flatnonzero(np.any(expected != actual, axis=1))
    if expected.shape != actual.shape or len(differing):
        raise TinypruneError(
            f"the TFLM-compressed model's outputs differ from the int8 model's on {len(differing)} of "
            f"{len(x)} samples (first: sample {differing[0] if len(differing) else '?'})",
            "this is a tinyprune bug: build with --tflm-compression none and report the model",
        )
    return len(x)

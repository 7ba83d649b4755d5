"""The oracle for compressed models: TFLM's host interpreter (the tflite-micro package, built with
the DECODE kernel). A compressed model must give byte-identical outputs to the model it came from."""
from __future__ import annotations

import numpy as np

from tinyprune.errors import TinypruneError
from tinyprune.graph.reader import read_graph
from tinyprune.verify.accuracy import int8_inputs, tflm_outputs


def check_identical(reference: bytes, compressed: bytes, x: np.ndarray) -> int:
    """Raise unless `compressed` gives byte-identical TFLM outputs (all of them) to `reference` on every
    sample of the float inputs x; returns the number of samples compared."""
    x_int8 = int8_inputs(read_graph(reference), x)
    expected = tflm_outputs(reference, x_int8, output=None)
    actual = tflm_outputs(compressed, x_int8, output=None)
    differing = np.flatnonzero(np.any(expected != actual, axis=1))
    if expected.shape != actual.shape or len(differing):
        raise TinypruneError(
            f"the TFLM-compressed model's outputs differ from the int8 model's on {len(differing)} of "
            f"{len(x)} samples (first: sample {differing[0] if len(differing) else '?'})",
            "this is a tinyprune bug: build with --tflm-compression none and report the model",
        )
    return len(x)

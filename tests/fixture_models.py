"""The committed int8 .tflite fixtures (tests/data/zoo/, written by tests/data/make_fixtures.py) and their
expected figures: what the fast tests read instead of building models with TensorFlow."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "data" / "zoo"
SAMPLES = 3  # seeded random inputs whose TFLM outputs expected.json records


def fixture_names() -> list[str]:
    return sorted(path.stem for path in FIXTURES.glob("*.tflite"))


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.tflite").read_bytes()


def expected_figures() -> dict:
    return json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


def sample_inputs(graph, seed: int = 0) -> np.ndarray:
    """The inputs whose outputs the figures record: seeded uniform int8."""
    shape = graph.input_tensors()[0].shape
    return np.random.default_rng(seed).integers(-128, 128, size=(SAMPLES,) + tuple(shape[1:])).astype(np.int8)


def train_digits_demo(data):
    """The demo CNN after 8 epochs on the digits (seeded): enough for >90 % accuracy. Imports TensorFlow:
    conftest's trained_demo and the fixture script call it, fast tests read its committed int8 forms."""
    from tinyprune.demo import demo_cnn
    from tinyprune.train import compile_for_task
    from tinyprune.zoo import _keras

    _keras().utils.set_random_seed(0)
    model = compile_for_task(demo_cnn(), "classification")
    model.fit(data.x_train, data.y_train, epochs=8, batch_size=32, verbose=0)
    return model

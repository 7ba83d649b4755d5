"""Shared fixtures: the digits data and a briefly trained demo CNN, built once per test session."""
import numpy as np
import pytest

import tinyprune  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)


@pytest.fixture(scope="session")
def digits_data():
    from tinyprune.io.data import digits

    return digits(seed=0)


@pytest.fixture(scope="session")
def trained_demo(digits_data):
    """The demo CNN after a few epochs: enough for >90 % accuracy, cheap enough for every test run."""
    from tinyprune.demo import demo_cnn
    from tinyprune.train import compile_for_task

    model = compile_for_task(demo_cnn(), "classification")
    model.fit(digits_data.x_train, digits_data.y_train, epochs=8, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def demo_int8(trained_demo, digits_data):
    """The trained demo as full-int8 TFLite bytes with per-tensor FULLY_CONNECTED weights."""
    from tinyprune.quantize import quantize_int8, representative_samples

    calibration = representative_samples(digits_data.x_train, 100, seed=0)
    return quantize_int8(trained_demo, calibration, per_channel_dense=False)


@pytest.fixture(scope="session")
def demo_int8_per_channel(trained_demo, digits_data):
    """The same model with TF 2.21's default per-channel FULLY_CONNECTED weights."""
    from tinyprune.quantize import quantize_int8, representative_samples

    calibration = representative_samples(digits_data.x_train, 100, seed=0)
    return quantize_int8(trained_demo, calibration, per_channel_dense=True)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def zoo_model():
    """zoo_model(name) -> the zoo model's int8 bytes (tinyprune.zoo.ZOO), each built once a session."""
    from tinyprune.zoo import zoo_int8

    built: dict[str, bytes] = {}

    def build(name: str) -> bytes:
        if name not in built:
            built[name] = zoo_int8(name)
        return built[name]

    return build


@pytest.fixture(scope="session")
def demo_int8_pruned(trained_demo, digits_data):
    """The demo pruned to 75 % sparsity (magnitude, two fine-tuning epochs), per-tensor FULLY_CONNECTED:
    the issue's reference point for the standalone firmware."""
    from tinyprune.prune.magnitude import magnitude_prune
    from tinyprune.quantize import quantize_int8, representative_samples

    pruned = magnitude_prune(trained_demo, digits_data, 0.75, epochs=2).model
    calibration = representative_samples(digits_data.x_train, 100, seed=0)
    return quantize_int8(pruned, calibration, per_channel_dense=False)


@pytest.fixture(scope="session")
def short_demo_build(tmp_path_factory):
    """short_demo_build(backend) -> the output folder of the demo built with brief training for that
    backend ("tflm" or "standalone"), each built once a session."""
    from tinyprune.pipeline import build, demo_config

    built = {}

    def folder(backend: str):
        if backend not in built:
            out = tmp_path_factory.mktemp(f"demo_{backend}") / "build"
            build(demo_config(str(out), train_epochs=3, fine_tune_epochs=2, backend=backend))
            built[backend] = out
        return built[backend]

    return folder

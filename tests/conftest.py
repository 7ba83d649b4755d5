"""Shared fixtures: the digits data, the demo CNN (trained, or its committed int8 forms) and the zoo
models (committed where small), built once per test session; and the rule that a fast test (not marked
slow) imports no TensorFlow."""
import sys

import numpy as np
import pytest

import tinyprune  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from fixture_models import fixture_bytes, fixture_names, train_digits_demo


def pytest_collection_finish(session):
    """A fast run cannot tell which test brings TensorFlow in if a test module imports it when collected."""
    if "tensorflow" in sys.modules and session.config.option.markexpr == "not slow":
        raise pytest.UsageError("a test module imports TensorFlow at import time: import it inside the slow "
                                "tests that need it")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.tensorflow_loaded_before = "tensorflow" in sys.modules


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    """An error for a fast test that brought TensorFlow in (itself or through its fixtures), reported once
    its teardown is done."""
    result = yield
    if (not getattr(item, "tensorflow_loaded_before", True) and "tensorflow" in sys.modules
            and item.get_closest_marker("slow") is None):
        pytest.fail(f"{item.nodeid} imports TensorFlow but is not marked slow: mark it, or give it a committed "
                    "fixture (tests/data/make_fixtures.py)", pytrace=False)
    return result


@pytest.fixture(scope="session")
def digits_data():
    from tinyprune.io.data import digits

    return digits(seed=0)


@pytest.fixture(scope="session")
def trained_demo(digits_data):
    """The demo CNN after a few epochs: enough for >90 % accuracy, cheap enough for every test run."""
    return train_digits_demo(digits_data)


@pytest.fixture(scope="session")
def demo_int8():
    """The trained demo as full-int8 TFLite bytes with per-tensor FULLY_CONNECTED weights (committed)."""
    return fixture_bytes("digits_demo_int8")


@pytest.fixture(scope="session")
def demo_int8_per_channel():
    """The same model with TF 2.21's default per-channel FULLY_CONNECTED weights (committed)."""
    return fixture_bytes("digits_demo_int8_per_channel")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def zoo_model():
    """zoo_model(name) -> the zoo model's int8 bytes (tinyprune.zoo.ZOO): the committed fixture where there
    is one (the same bytes zoo_int8 makes), else built once a session."""
    built: dict[str, bytes] = {name: fixture_bytes(name) for name in fixture_names()}

    def build(name: str) -> bytes:
        if name not in built:
            from tinyprune.zoo import zoo_int8

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


@pytest.fixture(scope="session")
def arduino_library():
    """The Arduino TFLM library users install (Chirale_TensorFlowLite 2.0.0), unpacked once from the
    fixture tarball beside the project (../shared/arduino-libraries/) into tinyprune's cache folder."""
    import tarfile
    from pathlib import Path

    from tinyprune.toolchains.arduino import cache_root

    name = "Chirale_TensorFlowLite-2.0.0"
    root = Path(__file__).resolve().parents[1]
    candidates = [root.parent / "shared" / "arduino-libraries", Path("/work/shared/arduino-libraries")]
    tarball = next((folder / f"{name}.tar.xz" for folder in candidates if (folder / f"{name}.tar.xz").is_file()), None)
    if tarball is None:
        pytest.skip(f"the fixture {name}.tar.xz is not in {', '.join(map(str, candidates))}")
    folder = cache_root() / "test-fixtures" / name
    if not (folder / "library.properties").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(folder, filter="data")
    return folder

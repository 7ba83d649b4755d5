"""The Python API: the same stage functions the CLI calls.

    import tinyprune.api as tp
    result = tp.build(model="model.keras", data="data.npz", board="nano33ble", sparsity=0.75, out="build/x")
    print(result.report["accuracy"]["tflm_int8"])
"""
from __future__ import annotations

from tinyprune.config import BuildConfig, load_config
from tinyprune.fit import DEFAULT_BACKENDS, FitResult, fit_builds
from tinyprune.listener import Listener
from tinyprune.pipeline import BuildResult, build as run_build, demo_config
from tinyprune.sweep import SweepResult, sweep_builds


def build(config_file: str | None = None, listener: Listener | None = None, **options) -> BuildResult:
    """Build from a pipeline file and/or options named as in BuildConfig."""
    return run_build(load_config(config_file, **options), listener)


def demo(out: str = "build/demo", listener: Listener | None = None, **options) -> BuildResult:
    """The built-in default: the digits CNN, 75 % sparsity, 16 clusters, Nano 33 BLE Sense."""
    return run_build(demo_config(out, **options), listener)


def sweep(option: str, values: list, config_file: str | None = None, max_loss: float = 0.01,
          executor: str = "local", workers: int | None = None, listener: Listener | None = None,
          **options) -> SweepResult:
    """One build per value of `option` (e.g. "sparsity", [0.5, 0.75, 0.9]); writes sweep.csv/.md/.png."""
    return sweep_builds(load_config(config_file, **options), option, values, max_loss, executor, workers, listener)


def fit(config_file: str | None = None, ladders: dict[str, list] | None = None, backends: tuple[str, ...] | None = None,
        max_loss: float = 0.01, max_builds: int = 12, executor: str = "local", workers: int | None = None,
        listener: Listener | None = None, **options) -> FitResult:
    """The smallest firmware within `max_loss` of the float accuracy, searched over the structured ratio,
    sparsity, clusters (`ladders`, e.g. {"sparsity": [0, 0.5, 0.9]}) and backends in at most `max_builds`
    builds; writes fit.md/.csv/.png/.json and every build (points/) into `out`."""
    return fit_builds(load_config(config_file, **options), ladders, backends or DEFAULT_BACKENDS, max_loss,
                      max_builds, executor, workers, listener)


def inspect(tflite: str, board: str | None = None, runtime: str = BuildConfig.runtime,
            backend: str = BuildConfig.backend) -> dict:
    """An int8 .tflite's operators, planned tensors, TFLM arena (host, board, lower bound) and flash, and
    with a board the firmware `build` would choose there (`backend`) and its fit, without TensorFlow: the
    dictionary `tinyprune inspect --json` prints (tinyprune.inspection.exit_code gives its exit code)."""
    from tinyprune.inspection import inspect_model

    return inspect_model(tflite, board, runtime, backend=backend)


def prove(out: str, arduino_library: str | None = None, samples: int = 10) -> dict:
    """A TFLM build's sketch, unmodified, built against the installed Arduino library and run on the
    board's qemu machine: compiled or the first error, the self-test, the measured arena (beside the
    emulated one), instructions per inference, text/data/bss; also written into the report."""
    from tinyprune.backends.tflm.qemu_proof import prove_build

    return prove_build(out, arduino_library, samples)


def flash(out: str, port: str, tool: str | None = None, timeout: float = 10.0) -> dict:
    """Build and upload the build's firmware to the board on `port` with arduino-cli or PlatformIO, then
    read what the firmware says on boot (self-test, arena used of declared); also written into the report."""
    from tinyprune.device.flash import flash as upload

    return upload(out, port, tool, timeout)


def device_eval(out: str, port: str, data: str | None = None, samples: int | None = None, timeout: float = 10.0,
                progress=None, arduino_library: str | None = None) -> dict:
    """The build's test set run on the board at `port` (serial protocol, docs/protocol.md): on-device
    accuracy, output bytes differing from the host's TFLM, latency; also written into the build's report."""
    from tinyprune.device.evaluate import device_eval as run_on_board

    return run_on_board(out, port, data, samples, timeout, progress, arduino_library)


def boards() -> list:
    from tinyprune.boards import all_boards

    return all_boards()


def board_support(board) -> dict[str, str | None]:
    """Which backends and runtimes build for `board` with the default options, and why not the others."""
    from tinyprune.backends import board_support as support

    return support(board, BuildConfig())


__all__ = ["BuildConfig", "BuildResult", "FitResult", "Listener", "SweepResult", "board_support", "boards", "build", "demo", "device_eval",
           "fit", "flash", "inspect", "sweep"]

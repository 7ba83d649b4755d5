"""The generated C compiled for the host (gcc -> shared library) and called through ctypes, so a whole
test set runs through exactly the C that ships to the microcontroller; or, for sanitizer builds (ASan
cannot be loaded into Python) and for many models at once, as one executable fed through a pipe."""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyprune.errors import TinypruneError
from tinyprune.backends.standalone.codegen import StandaloneModel
from tinyprune.backends.templates import render

WARNING_FLAGS = ("-Wall", "-Wextra", "-Werror")
STRICT_FLAGS = ("-Wpedantic",)
SANITIZE_FLAGS = ("-fsanitize=undefined,address", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g")
HOST_COMPILER = "gcc"


@dataclass
class HostLibrary:
    path: Path
    model: StandaloneModel
    handle: ctypes.CDLL


def compile_command(compiler: str, model: StandaloneModel, output: Path, extra: tuple[str, ...]) -> list[str]:
    return [compiler, "-std=c99", "-O2", *WARNING_FLAGS, *extra, f"-I{model.out_dir}",
            *map(str, model.sources), "-o", str(output)]


def _require_compiler(compiler: str) -> None:
    if shutil.which(compiler) is None:
        raise TinypruneError(f"the host C compiler {compiler!r} is not installed",
                             "install gcc (Debian: apt-get install gcc)")


def build_host_library(model: StandaloneModel, build_dir: str | Path | None = None,
                       compiler: str = HOST_COMPILER) -> HostLibrary:
    """Compile the model's C with warnings as errors into a shared library and load it."""
    _require_compiler(compiler)
    build_dir = Path(build_dir) if build_dir is not None else model.out_dir
    build_dir.mkdir(parents=True, exist_ok=True)
    library = build_dir / f"lib{model.name}.so"
    command = compile_command(compiler, model, library, ("-shared", "-fPIC"))
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"host build failed:\n{' '.join(command)}\n{result.stderr}")
    handle = ctypes.CDLL(str(library.resolve()))
    handle.model_invoke.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    handle.model_invoke.restype = None
    return HostLibrary(library, model, handle)


def run_host(library: HostLibrary, inputs: np.ndarray) -> np.ndarray:
    """int8 inputs (samples first, any trailing shape matching the model) -> int8 outputs (samples, size)."""
    batch = _samples(library.model, inputs)
    outputs = np.zeros((len(batch), library.model.output_size), dtype=np.int8)
    for sample, result in zip(batch, outputs):
        library.handle.model_invoke(sample.ctypes.data, result.ctypes.data)
    return outputs


@dataclass
class HostRunner:
    path: Path
    models: dict[str, StandaloneModel]


def build_host_runner(models: list[StandaloneModel], build_dir: str | Path, sanitize: bool = False,
                      compiler: str = "gcc") -> HostRunner:
    """One executable running any of `models` (distinct names), compiled in one go with -Wpedantic on top
    of the usual warnings, and with `sanitize` under AddressSanitizer and UBSan, stopping at the first
    report."""
    _require_compiler(compiler)
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    sources = [build_dir / "host_runner.c"]
    sources[0].write_text(render("standalone/host_runner.c.j2", models=models), encoding="utf-8")
    kernels: dict[str, Path] = {}
    for model in models:
        unit = build_dir / f"{model.name}_unit.c"
        unit.write_text(render("standalone/host_unit.c.j2", name=model.name,
                               model_c=(model.out_dir / "model.c").resolve()), encoding="utf-8")
        sources.append(unit)
        kernels.update({path.name: path for path in model.sources if path.name != "model.c"})
    runner = build_dir / "host_runner"
    # one build of the kernels for every model: each keeps the code of every weight format (tp_weights.h)
    command = [compiler, "-std=c99", "-O1", *WARNING_FLAGS, *STRICT_FLAGS, "-DTP_EVERY_FORMAT",
               *(SANITIZE_FLAGS if sanitize else ()),
               *map(str, sources + sorted(kernels.values())), "-o", str(runner)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"host runner build failed:\n{' '.join(command)}\n{result.stderr}")
    return HostRunner(runner, {model.name: model for model in models})


def run_host_runner(runner: HostRunner, name: str, inputs: np.ndarray) -> np.ndarray:
    """Model `name` of the runner on int8 inputs -> int8 outputs (samples, size); a sanitizer report (or
    any failure) raises with its text."""
    model = runner.models[name]
    batch = _samples(model, inputs)
    result = subprocess.run([str(runner.path), name], input=batch.tobytes(), capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{runner.path.name} {name} failed (exit {result.returncode}):\n"
                           f"{result.stderr.decode(errors='replace')[-4000:]}")
    return np.frombuffer(result.stdout, dtype=np.int8).reshape(len(batch), model.output_size)


def _samples(model: StandaloneModel, inputs: np.ndarray) -> np.ndarray:
    """The inputs as contiguous int8 rows of the model's input size."""
    batch = np.ascontiguousarray(np.asarray(inputs, dtype=np.int8).reshape(len(inputs), -1))
    if batch.shape[1] != model.input_size:
        raise TinypruneError(f"each input has {batch.shape[1]} values, the model takes {model.input_size}",
                             f"give samples of shape {list(model.input_shape[1:])}")
    return batch

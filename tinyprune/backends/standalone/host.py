"""The generated C compiled for the host (gcc -> shared library) and called through ctypes, so a whole
test set runs through exactly the C that ships to the microcontroller."""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyprune.errors import TinypruneError
from tinyprune.backends.standalone.codegen import StandaloneModel

WARNING_FLAGS = ("-Wall", "-Wextra", "-Werror")


@dataclass
class HostLibrary:
    path: Path
    model: StandaloneModel
    handle: ctypes.CDLL


def compile_command(compiler: str, model: StandaloneModel, output: Path, extra: tuple[str, ...]) -> list[str]:
    return [compiler, "-std=c99", "-O2", *WARNING_FLAGS, *extra, f"-I{model.out_dir}",
            *map(str, model.sources), "-o", str(output)]


def build_host_library(model: StandaloneModel, build_dir: str | Path | None = None,
                       compiler: str = "gcc") -> HostLibrary:
    """Compile the model's C with warnings as errors into a shared library and load it."""
    if shutil.which(compiler) is None:
        raise TinypruneError(f"the host C compiler {compiler!r} is not installed",
                             "install gcc (Debian: apt-get install gcc)")
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
    batch = np.ascontiguousarray(np.asarray(inputs, dtype=np.int8).reshape(len(inputs), -1))
    if batch.shape[1] != library.model.input_size:
        raise TinypruneError(
            f"each input has {batch.shape[1]} values, the model takes {library.model.input_size}",
            f"give samples of shape {list(library.model.input_shape[1:])}")
    outputs = np.zeros((len(batch), library.model.output_size), dtype=np.int8)
    for sample, result in zip(batch, outputs):
        library.handle.model_invoke(sample.ctypes.data, result.ctypes.data)
    return outputs

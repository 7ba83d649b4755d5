"""The Arduino sketch for `--backend standalone`: the generated C beside a .ino that calls it. No
library, so it builds for every board in boards/ (any core with a C99 compiler). It checks itself on
boot against TFLM's output for one test input and answers tinyprune's serial protocol."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tinyprune.backends.standalone.codegen import StandaloneModel
from tinyprune.backends.templates import render
from tinyprune.device.firmware import link_buffer_bytes, write_link_sources


def sketch_buffer_bytes(input_size: int, output_size: int) -> int:
    """The RAM the sketch declares that grows with the model, besides the model's arena: its int8 input and
    output (standalone/sketch.ino.j2) and the serial protocol's buffers."""
    return input_size + output_size + link_buffer_bytes(input_size, output_size)


def write_arduino_sketch(model: StandaloneModel, sketch_dir: str | Path, test_input: np.ndarray,
                         expected_output: np.ndarray) -> Path:
    """Write <sketch_dir>/<name>.ino (the folder's name, as the Arduino IDE requires), the model's C and
    the protocol's; `expected_output` is what TFLM on the host gave for `test_input` (int8)."""
    test_input, expected_output = np.asarray(test_input).reshape(-1), np.asarray(expected_output).reshape(-1)
    if (test_input.dtype, expected_output.dtype) != (np.int8, np.int8) or \
            (test_input.size, expected_output.size) != (model.input_size, model.output_size):
        raise ValueError(f"the self-test vector must be {model.input_size} int8 inputs and {model.output_size} "
                         f"int8 outputs, got {test_input.size} {test_input.dtype} and {expected_output.size} "
                         f"{expected_output.dtype}")
    sketch_dir = Path(sketch_dir)
    sketch_dir.mkdir(parents=True, exist_ok=True)
    for path in model.files:
        if path.parent.resolve() != sketch_dir.resolve():
            shutil.copyfile(path, sketch_dir / path.name)
    write_link_sources(sketch_dir, model.input_size)
    sketch = sketch_dir / f"{sketch_dir.name}.ino"
    sketch.write_text(render("standalone/sketch.ino.j2", name=model.name, arena_bytes=model.arena_bytes,
                             test_input=test_input.tolist(), expected_output=expected_output.tolist()),
                      encoding="utf-8")
    return sketch

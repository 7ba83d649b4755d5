"""The flatbuffer as C source: model_data.h / model_data.cpp, the way TFLM firmware links a model in.

The array is `alignas(16)` because TFLM reads the flatbuffer in place and CMSIS-NN kernels expect
aligned weights; `<name>_len` carries the size so firmware never needs sizeof on an extern array.
"""
from __future__ import annotations

from pathlib import Path

from tinyprune.errors import TinypruneError
from tinyprune.backends.templates import c_identifier, render

BYTES_PER_LINE = 12
HEADER_NAME = "model_data.h"
SOURCE_NAME = "model_data.cpp"


def write_model_data(out_dir: Path, model_bytes: bytes, name: str) -> list[Path]:
    """Write model_data.h and model_data.cpp into `out_dir` (created if needed) for an array named
    `name` (sanitised into a C identifier, see c_identifier). Returns the two paths."""
    if not model_bytes:
        raise TinypruneError("the model is empty (0 bytes)", "export the .tflite file that conversion wrote")
    identifier = c_identifier(name)
    context = {
        "name": identifier,
        "size": len(model_bytes),
        "guard": f"{identifier.upper()}_MODEL_DATA_H_",
        "rows": [model_bytes[i:i + BYTES_PER_LINE] for i in range(0, len(model_bytes), BYTES_PER_LINE)],
    }
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    paths = []
    for file_name in (HEADER_NAME, SOURCE_NAME):
        path = Path(out_dir) / file_name
        path.write_text(render(f"model_data/{file_name}.j2", **context), encoding="utf-8")
        paths.append(path)
    return paths

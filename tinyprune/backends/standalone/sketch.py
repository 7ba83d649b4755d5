"""The Arduino sketch for `--backend standalone`: the generated C beside a .ino that calls it. No
library, so it builds for every board in boards/ (any core with a C99 compiler)."""
from __future__ import annotations

import shutil
from pathlib import Path

from tinyprune.backends.standalone.codegen import StandaloneModel
from tinyprune.backends.templates import render


def write_arduino_sketch(model: StandaloneModel, sketch_dir: str | Path) -> Path:
    """Write <sketch_dir>/<name>.ino (the folder's name, as the Arduino IDE requires) and the model's C."""
    sketch_dir = Path(sketch_dir)
    sketch_dir.mkdir(parents=True, exist_ok=True)
    for path in model.files:
        if path.parent.resolve() != sketch_dir.resolve():
            shutil.copyfile(path, sketch_dir / path.name)
    sketch = sketch_dir / f"{sketch_dir.name}.ino"
    sketch.write_text(render("standalone/sketch.ino.j2", name=model.name), encoding="utf-8")
    return sketch

"""Stage 6, PlatformIO flavour: the same firmware as the Arduino sketch as a PlatformIO project
(platformio.ini with the board's id and the pinned TFLM library, src/main.cpp, src/model_data.*).

main.cpp is rendered from the sketch body the Arduino sketch uses, so the two never drift apart.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyprune.boards import Board
from tinyprune.backends.tflm.arduino import check_sketch_name, sketch_context
from tinyprune.backends.tflm.c_array import write_model_data
from tinyprune.backends.templates import render
from tinyprune.device.firmware import write_link_sources
from tinyprune.graph.ir import Graph
from tinyprune.graph.runtimes import Runtime


def write_platformio_project(out_dir: Path, project_name: str, model_bytes: bytes, graph: Graph,
                             runtime: Runtime, arena_bytes: int, test_input: np.ndarray,
                             expected_output: np.ndarray, board: Board, *,
                             exact_arena_bytes: int | None = None, arena_source: str = "") -> Path:
    """Write the project folder `out_dir/project_name/` and return its path; the arguments mean
    what they mean for write_arduino_sketch."""
    check_sketch_name(project_name)
    context = sketch_context(project_name, model_bytes, graph, runtime, arena_bytes, test_input,
                             expected_output, board, exact_arena_bytes, arena_source)
    project_dir = Path(out_dir) / project_name
    source_dir = project_dir / "src"
    source_dir.mkdir(parents=True)
    write_model_data(source_dir, model_bytes, context["model_array"])
    write_link_sources(source_dir, context["input"]["count"])  # the serial protocol (tinyprune device-eval)
    (source_dir / "main.cpp").write_text(render("platformio/main.cpp.j2", **context), encoding="utf-8")
    (project_dir / "platformio.ini").write_text(render("platformio/platformio.ini.j2", **context),
                                                encoding="utf-8")
    return project_dir

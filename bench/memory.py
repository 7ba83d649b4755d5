"""The arena emulation against the real TFLM interpreter on the model zoo: one row a model.

    python bench/memory.py [model ...]

Columns: flatbuffer bytes; the smallest arena the tflite-micro interpreter runs with (found by search,
one process a probe) and the emulated one, each as "multiple of 16 / exact byte"; the 32-bit estimates
for the Arduino library's TFLM with CMSIS-NN and with reference kernels; the lower bound (largest sum of
live buffers) and the greedy planner's overhead above it; where the arena is decided; the emulation's
time (best of 5) and the search's.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinyprune  # noqa: E402,F401  (legacy Keras switch before TensorFlow loads)
from tinyprune.console import native_output_hidden  # noqa: E402
from tinyprune.errors import TinypruneError  # noqa: E402
from tinyprune.graph.reader import read_graph  # noqa: E402
from tinyprune.memory.tflm_arena import emulate_arena  # noqa: E402
from tinyprune.verify.arena import find_arena  # noqa: E402
from tinyprune.zoo import ZOO, zoo_int8  # noqa: E402

FOOTNOTES: list[str] = []
COLUMNS = ("model", "bytes", "measured", "emulated", "match", "arm32", "arm32 ref", "lower bnd",
           "overhead", "decided at", "emul ms", "search s")


def best_time(function, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def row(name: str) -> tuple:
    model = zoo_int8(name)
    graph = read_graph(model)
    host = emulate_arena(graph, "host")
    seconds = best_time(lambda: emulate_arena(read_graph(model), "host"))
    started = time.perf_counter()
    try:
        searched = find_arena(model)
        measured = f"{searched.aligned16}/{searched.exact}"
        match = "yes" if (searched.aligned16, searched.exact) == (host.aligned16, host.exact) else "NO"
    except TinypruneError as error:
        measured, match = "does not run", "n/a"
        FOOTNOTES.append(f"{name}: {error.problem}")
    search_seconds = time.perf_counter() - started
    peak = host.peak.phase + (f" {host.peak.node} {host.peak.what}" if host.peak.node is not None else "")
    return (name, len(model), measured, f"{host.aligned16}/{host.exact}", match,
            emulate_arena(graph, "arm32").exact, emulate_arena(graph, "arm32-reference").exact,
            host.lower_bound, host.planner_overhead, peak + ("" if host.exact_model else " (approx.)"),
            f"{seconds * 1000:.1f}", f"{search_seconds:.1f}")


def main(names: list[str]) -> None:
    with native_output_hidden(hide=True) as (out, _):  # TensorFlow's start-up noise off the table
        rows = [COLUMNS] + [tuple(str(cell) for cell in row(name)) for name in names]
        widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
        for r in rows:
            out.write("  ".join(cell.rjust(width) if i else cell.ljust(width)
                                for i, (cell, width) in enumerate(zip(r, widths))) + "\n")
        for footnote in FOOTNOTES:
            out.write(footnote + "\n")


if __name__ == "__main__":
    main(sys.argv[1:] or list(ZOO))

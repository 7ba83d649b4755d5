"""What a tinyprune build folder holds for the device commands and proofs: its report, its int8 model,
and its test set as the int8 inputs TFLM on the host was given. A leaf: it imports no device command."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tinyprune.errors import TinypruneError


def read_build(out_dir: str | Path) -> tuple[dict, bytes]:
    """report.json and model.tflite of a tinyprune build folder."""
    out_dir = Path(out_dir)
    report_path, model_path = out_dir / "report.json", out_dir / "model.tflite"
    if not report_path.is_file() or not model_path.is_file():
        raise TinypruneError(f"{out_dir} is not a tinyprune build folder (no report.json and model.tflite)",
                             "give the --out folder of `tinyprune build` or `tinyprune demo`")
    return json.loads(report_path.read_text()), model_path.read_bytes()


def test_set(report: dict, graph, data: str | None, samples: int | None):
    """The build's test inputs as int8 (as TFLM on the host got them), their labels and task. A model taken as
    it is without data has no labels: without `data`, the seeded self-test inputs its build ran (labels and
    task None)."""
    from tinyprune.io.data import load_dataset
    from tinyprune.verify.accuracy import int8_inputs

    if samples is not None and samples < 1:
        raise TinypruneError(f"--samples {samples} is not a positive number", "give --samples 1 or more")
    if data is None and "data" in report and report["data"] is None:
        from tinyprune.backends.base import TEST_VECTORS
        from tinyprune.io.tflite import self_test_inputs

        x = self_test_inputs(graph, report["seed"], samples or TEST_VECTORS)
        return x.reshape(len(x), -1), None, None
    config = report["config"]
    dataset = load_dataset(data or config["data"], report["seed"], config.get("target") or "",
                           tuple(graph.input_tensors()[0].shape[1:]))
    x, y = dataset.x_test, dataset.y_test
    if samples is not None:
        x, y = x[:samples], y[:samples]
    size = graph.input_tensors()[0].num_elements
    if int(np.prod(x.shape[1:])) != size:
        raise TinypruneError(f"the test inputs have {int(np.prod(x.shape[1:]))} values, the model takes {size}",
                             "give the data set the model was built with (--data)")
    return int8_inputs(graph, x).reshape(len(x), -1), y, dataset.task

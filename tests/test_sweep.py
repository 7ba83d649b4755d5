"""The sweep runner: points run in parallel processes (and on a local Ray cluster), results keep the
points' order, and the table and plot mark the smallest model within the accuracy budget."""
import csv
from pathlib import Path

import numpy as np
import pytest

import tinyprune  # noqa: F401
from tinyprune.report.frontier import pareto_front, smallest_within
from tinyprune.sweep import sweep, write_table


def snap_and_compress(point: dict) -> dict:
    """One sweep point, run in a worker process: the int8 demo with its weights snapped to
    `levels` values, LUT-compressed and scored on TFLM (no TensorFlow: workers start fast)."""
    import os

    from test_compress import snapped

    from tinyprune.compress import compress_for_tflm
    from tinyprune.graph.reader import read_graph
    from tinyprune.verify.accuracy import int8_inputs, tflm_outputs

    model = snapped(Path(point["model"]).read_bytes(), levels=point["levels"], zero_below=0)
    arrays = np.load(point["data"])
    compressed, _ = compress_for_tflm(model, "lut", arrays["x"])
    x_int8 = int8_inputs(read_graph(model), arrays["x"])
    accuracy = float(np.mean(tflm_outputs(compressed, x_int8).argmax(1) == arrays["y"]))
    return {"flash_bytes": len(compressed), "accuracy": accuracy, "pid": os.getpid()}


@pytest.fixture(scope="module")
def sweep_inputs(tmp_path_factory, demo_int8, digits_data):
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "model.tflite").write_bytes(demo_int8)
    np.savez(folder / "data.npz", x=digits_data.x_test[:100], y=digits_data.y_test[:100])
    return {"model": str(folder / "model.tflite"), "data": str(folder / "data.npz")}


@pytest.mark.slow
def test_local_executor_runs_points_in_parallel_processes_in_order(sweep_inputs, tmp_path):
    points = [{"levels": 64, **sweep_inputs}, {"levels": 4, **sweep_inputs}]
    seen = []
    results = sweep(points, snap_and_compress, executor="local", workers=2,
                    progress=lambda done, total, point: seen.append((done, total)))
    assert [r["levels"] for r in results] == [64, 4]
    assert len({r["pid"] for r in results}) == 2  # two worker processes
    assert sorted(seen) == [(1, 2), (2, 2)]
    assert results[1]["flash_bytes"] < results[0]["flash_bytes"]  # 2-bit indices beat 6-bit ones

    rows = [{k: r[k] for k in ("levels", "flash_bytes", "accuracy")} for r in results]
    reference = rows[0]["accuracy"]
    paths = write_table(rows, tmp_path, reference_accuracy=reference, max_loss=0.5, flash_limit=20_000)
    with paths["csv"].open() as handle:
        table = list(csv.DictReader(handle))
    assert [int(row["levels"]) for row in table] == [64, 4]
    assert [row["smallest_within_budget"] for row in table] == ["False", "True"]
    assert "smallest within budget" in paths["markdown"].read_text().lower()
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_ray_executor_runs_a_point_on_a_local_cluster(sweep_inputs):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install ray")
    try:
        [result] = sweep([{"levels": 16, **sweep_inputs}], snap_and_compress, executor="ray", workers=1)
    finally:
        ray.shutdown()
    assert result["levels"] == 16 and result["flash_bytes"] > 0 and 0.0 <= result["accuracy"] <= 1.0


def test_smallest_within_budget_prefers_fewer_bytes_then_accuracy():
    results = [{"flash_bytes": 9000, "accuracy": 0.95}, {"flash_bytes": 7000, "accuracy": 0.985},
               {"flash_bytes": 7000, "accuracy": 0.99}, {"flash_bytes": 5000, "accuracy": 0.90}]
    assert smallest_within(results, reference_accuracy=0.995, max_loss=0.01) == results[2]
    assert smallest_within(results, reference_accuracy=0.995, max_loss=0.001) is None
    assert pareto_front(results) == [results[3], results[2]]


def test_unknown_executor_is_refused():
    from tinyprune.errors import TinypruneError

    with pytest.raises(TinypruneError, match="dask"):
        sweep([{"a": 1}], dict, executor="dask")


@pytest.mark.parametrize("command", ["sweep", "fit"])
def test_sweep_and_fit_refuse_the_same_inputs_before_any_build(tmp_path, command):
    """One preamble (sweep.prepare_search): bad options, a model taken as it is and an existing output
    folder are refused, each in words naming the command, and nothing is written."""
    from tinyprune.config import BuildConfig, load_config
    from tinyprune.errors import TinypruneError
    from tinyprune.fit import fit_builds
    from tinyprune.sweep import sweep_builds

    def run(config):
        return sweep_builds(config, "sparsity", [0.5]) if command == "sweep" else fit_builds(config)

    out = tmp_path / command
    consequence = "sparsity changes nothing to sweep" if command == "sweep" else "fit has nothing to search"
    with pytest.raises(TinypruneError, match=f"built as it is .*: {consequence} — fix: {command} the Keras model"):
        run(load_config(None, model="kws.tflite", out=str(out)))
    with pytest.raises(TinypruneError, match="sparsity 1.5 is outside"):
        run(BuildConfig(sparsity=1.5, out=str(out)))
    assert not out.exists()
    out.mkdir()
    with pytest.raises(TinypruneError, match="already exists"):
        run(load_config(None, out=str(out)))
    with pytest.raises(TinypruneError, match="unknown board"):
        run(load_config(None, board="no_such_board", out=str(tmp_path / "other")))

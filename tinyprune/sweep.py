"""The size-accuracy path: run one method over many settings (sparsities, cluster counts, lambdas),
then tabulate accuracy against flash and mark the smallest model within an accuracy budget.

Points are independent, so they run in parallel processes: a local process pool by default, or a Ray
cluster (`pip install ray`) for users who outgrow one machine. Results come back in the order of the
points whatever order they finish in, so a sweep's table is reproducible."""
from __future__ import annotations

import csv
import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tinyprune.errors import TinypruneError
from tinyprune.report.plots import accuracy_vs_flash

EXECUTORS = ("local", "ray")
SweepProgress = Callable[[int, int, dict], None]
"""progress(done, total, point): called as each point finishes."""


def sweep(points: list[dict], run_point: Callable[[dict], dict], executor: str = "local",
          workers: int | None = None, progress: SweepProgress | None = None) -> list[dict]:
    """Run `run_point(point)` for every point in parallel; each result is the point's keys updated
    with what run_point returned, in the order of `points`.

    run_point must be a module-level function (it is pickled to the workers). The local executor
    starts fresh interpreters ("spawn"): TensorFlow does not survive a fork."""
    if executor not in EXECUTORS:
        raise TinypruneError(f"unknown executor {executor!r}", f"use one of: {', '.join(EXECUTORS)}")
    if not points:
        raise TinypruneError("the sweep has no points", "give at least one value to sweep over")
    workers = max(1, min(workers or os.cpu_count() or 1, len(points)))
    run = _run_on_ray if executor == "ray" else _run_locally
    outcomes = run(points, run_point, workers, progress or (lambda done, total, point: None))
    return [{**point, **outcome} for point, outcome in zip(points, outcomes)]


def _run_locally(points, run_point, workers, progress) -> list[dict]:
    outcomes: list[dict | None] = [None] * len(points)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(run_point, point): i for i, point in enumerate(points)}
        for done, future in enumerate(as_completed(futures), start=1):
            outcomes[futures[future]] = future.result()
            progress(done, len(points), points[futures[future]])
    return outcomes


def _run_on_ray(points, run_point, workers, progress) -> list[dict]:
    try:
        import ray
    except ImportError as exc:
        raise TinypruneError("--executor ray needs Ray, which is not installed",
                             "pip install 'ray>=2' (or use the default local executor)") from exc
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init()  # the user's cluster
        else:
            # a local cluster whose workers import what this interpreter imports
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}})
    remote = ray.remote(run_point)
    pending = {remote.remote(point): i for i, point in enumerate(points)}
    outcomes: list[dict | None] = [None] * len(points)
    waiting = list(pending)
    while waiting:
        finished, waiting = ray.wait(waiting, num_returns=1)
        index = pending[finished[0]]
        outcomes[index] = ray.get(finished[0])
        progress(len(points) - len(waiting), len(points), points[index])
    return outcomes


def text_progress(stream=sys.stderr) -> SweepProgress:
    """A progress callback drawing a one-line bar on a terminal (one line per point otherwise)."""
    live = stream.isatty()

    def show(done: int, total: int, point: dict) -> None:
        width = 24
        bar = "#" * (width * done // total) + "." * (width - width * done // total)
        label = ", ".join(f"{k}={v}" for k, v in point.items())
        stream.write(f"\r\033[Ksweep     [{bar}] {done}/{total} {label}" if live
                     else f"sweep     {done}/{total} {label}\n")
        if live and done == total:
            stream.write("\n")
        stream.flush()

    return show


def smallest_within(results: list[dict], reference_accuracy: float, max_loss: float) -> dict | None:
    """The result with the fewest flash bytes whose accuracy is at most `max_loss` below the
    reference (fractions, e.g. 0.01 for one point); ties go to the more accurate."""
    fitting = [r for r in results if r["accuracy"] >= reference_accuracy - max_loss - 1e-12]
    return min(fitting, key=lambda r: (r["flash_bytes"], -r["accuracy"])) if fitting else None


def pareto_front(results: list[dict]) -> list[dict]:
    """The results no other result beats in both flash and accuracy, smallest first."""
    front: list[dict] = []
    for result in sorted(results, key=lambda r: (r["flash_bytes"], -r["accuracy"])):
        if not front or result["accuracy"] > front[-1]["accuracy"]:
            front.append(result)
    return front


def write_table(results: list[dict], folder: Path, reference_accuracy: float, max_loss: float,
                flash_limit: int | None = None, title: str = "accuracy vs flash") -> dict[str, Path]:
    """sweep.csv, sweep.md and sweep.png (the report's accuracy-vs-flash figure) in `folder`; returns
    their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    best = smallest_within(results, reference_accuracy, max_loss)
    columns = list(dict.fromkeys(key for result in results for key in result))
    rows = [{**result, "smallest_within_budget": result is best} for result in results]
    columns.append("smallest_within_budget")

    csv_path = folder / "sweep.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    md_path = folder / "sweep.md"
    lines = [f"# {title}", "",
             f"Reference accuracy {reference_accuracy:.4f}; budget {max_loss * 100:.2f} points of accuracy"
             + (f"; board flash {flash_limit} B" if flash_limit else "") + ".", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(column, "")) for column in columns) + " |" for row in rows]
    verdict = _label(best) if best else "none of the points"
    if best and flash_limit and best["flash_bytes"] > flash_limit:
        verdict += f"; it does not fit the board's {flash_limit} B of flash"
    lines += ["", f"Smallest within budget: {verdict}."]
    md_path.write_text("\n".join(lines) + "\n")

    png_path = folder / "sweep.png"
    png_path.write_bytes(accuracy_vs_flash(results, flash_limit, reference_accuracy, max_loss, title))
    return {"csv": csv_path, "markdown": md_path, "png": png_path}


def _cell(value) -> str:
    if isinstance(value, bool):
        return "**yes**" if value else ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _label(result: dict) -> str:
    hidden = {"accuracy", "flash_bytes"}
    settings = ", ".join(f"{k}={v}" for k, v in result.items() if k not in hidden and not isinstance(v, (dict, list)))
    return f"{int(result['flash_bytes'])} B at accuracy {result['accuracy']:.4f} ({settings})"


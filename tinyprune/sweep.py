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
from dataclasses import dataclass
from pathlib import Path

from tinyprune.errors import TinypruneError
from tinyprune.listener import Listener
from tinyprune.report.frontier import smallest_within
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


def write_table(results: list[dict], folder: Path, reference_accuracy: float, max_loss: float,
                flash_limit: int | None = None, title: str = "accuracy vs flash",
                stem: str = "sweep") -> dict[str, Path]:
    """STEM.csv, STEM.md and STEM.png (the report's accuracy-vs-flash figure) in `folder`; returns
    their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    best = smallest_within(results, reference_accuracy, max_loss)
    columns = list(dict.fromkeys(key for result in results for key in result))
    rows = [{**result, "smallest_within_budget": result is best} for result in results]
    columns.append("smallest_within_budget")

    csv_path = folder / f"{stem}.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    md_path = folder / f"{stem}.md"
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

    png_path = folder / f"{stem}.png"
    png_path.write_bytes(accuracy_vs_flash(results, flash_limit, reference_accuracy, max_loss, title))
    return {"csv": csv_path, "markdown": md_path, "png": png_path}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "**yes**" if value else ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _label(result: dict) -> str:
    hidden = {"accuracy", "flash_bytes"}
    settings = ", ".join(f"{k}={v}" for k, v in result.items() if k not in hidden and not isinstance(v, (dict, list)))
    return f"{int(result['flash_bytes'])} B at accuracy {result['accuracy']:.4f} ({settings})"



# -- a sweep of whole builds (`tinyprune sweep`) ---------------------------------------------------------

@dataclass
class SweepResult:
    out: Path
    points: list[dict]  # one per value: the option's value and that build's figures
    best: dict | None  # the smallest flash within the accuracy budget
    files: list[str]


def prepare_search(config, command: str, consequence: str):
    """What `sweep` and `fit` check before their first build: valid options, a model whose pruning and
    quantization they can vary (not one built as it is: then `consequence`, and `command` the Keras model
    instead), an output folder they may write; the output path and the board."""
    from tinyprune.boards import load_board
    from tinyprune.io.tflite import takes_model_as_it_is
    from tinyprune.pipeline import prepare_output

    config.validate()
    if takes_model_as_it_is(config.model):
        raise TinypruneError(f"{config.model} is built as it is (no pruning or quantization): {consequence}",
                             f"{command} the Keras model, or build the model once with build")
    out = Path(config.out)
    prepare_output(out, config.force)
    return out, load_board(config.board)


def sweep_point(base: dict, point: dict) -> dict:
    """One point of a sweep: a whole build with the point's option, its figures and its report;
    module-level, so the executor's worker processes can run it."""
    from tinyprune.config import BuildConfig
    from tinyprune.pipeline import build

    report = build(BuildConfig(**{**base, **point["options"]})).report
    return {
        "flash_bytes": report["fit"]["flash_needed"],
        "model_bytes": report["quantize"]["model_bytes"],
        "arena_bytes": report["memory"]["arena_firmware"],
        "accuracy": report["accuracy"]["tflm_int8"],
        "float_accuracy": report["accuracy"]["float"],
        "fits": report["fit"]["fits"],
        "report": report,
    }


def write_sweep_page(folder: Path, report: dict, points: list[dict], reference: float, max_loss: float,
                     flash_limit: int) -> None:
    """report.html for a sweep (or a fit): the chosen point's build (`report`), with the accuracy-vs-flash
    section over `points` (each with a label)."""
    from tinyprune.report.html import render_html

    report = {**report, "sweep": {"points": points,
                                  "board_flash_limit": flash_limit, "reference_accuracy": reference,
                                  "max_loss": max_loss}}
    (folder / "report.html").write_text(render_html(report))


def sweep_builds(config, option: str, values: list, max_loss: float = 0.01, executor: str = "local",
                 workers: int | None = None, listener: Listener | None = None) -> SweepResult:
    """Build once per value of `option` (in parallel processes), then write the accuracy-vs-flash
    table and plot with the board's flash limit, marking the smallest model within `max_loss`."""
    import functools

    from tinyprune.config import BuildConfig, option_names
    from tinyprune.pipeline import staged_output

    listener = listener or Listener()
    if option not in option_names() or option in ("out", "force", "model", "data", "board"):
        raise TinypruneError(f"cannot sweep over {option!r}", "sweep a numeric option: sparsity, clusters, ...")
    out, board = prepare_search(config, "sweep", f"{option} changes nothing to sweep")
    with staged_output(out) as staging:
        points = []
        for value in values:
            label = f"{option}_{value}"
            options = {option: value, "out": str(staging / "points" / label), "force": False}
            BuildConfig(**{**config.to_dict(), **options}).validate()  # refuse a bad value before any build
            points.append({option: value, "options": options})
        results = sweep(points, functools.partial(sweep_point, config.to_dict()), executor, workers,
                        lambda done, total, point: listener.progress("sweep", done, total, {option: point[option]}))
        reports = [result.pop("report") for result in results]
        for result in results:
            del result["options"]
        reference = results[0]["float_accuracy"]
        write_table(results, staging, reference, max_loss, board.flash_bytes,
                    title=f"{config.board}: TFLM accuracy vs flash over {option}")
        best = smallest_within(results, reference, max_loss)
        chosen = results.index(best) if best else 0
        write_sweep_page(staging, reports[chosen], [{"label": f"{option}={r[option]}", **r} for r in results],
                         reference, max_loss, board.flash_bytes)
        files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
    listener.stage("sweep", f"{len(results)} builds; smallest within {max_loss:.1%} of the float accuracy: "
                   + (f"{option}={best[option]}, {best['flash_bytes']:,} B flash, accuracy {best['accuracy']:.2%}"
                      if best else "none") + f"; {out}/report.html, sweep.md, sweep.png")
    return SweepResult(out, results, best, files)

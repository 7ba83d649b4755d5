"""The stages in order: load -> prune -> quantize -> check -> verify -> export -> report.

Each stage is a function from one artefact to the next; this module only sequences them, times
them, tells a listener what each did, and writes the outputs atomically: everything goes into a
temporary folder beside the output, renamed into place only when every stage has succeeded."""
from __future__ import annotations

import gzip
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tinyprune.config import BuildConfig
from tinyprune.errors import TinypruneError


class Listener:
    """What a front end hears: one line per finished stage, and per-epoch progress."""

    def stage(self, name: str, line: str) -> None:
        pass

    def progress(self, phase: str, step: int, total: int, figures: dict) -> None:
        pass


@dataclass
class BuildResult:
    out: Path
    report: dict
    files: list[str] = field(default_factory=list)


def gzip_size(data: bytes) -> int:
    """Deterministic gzip size (no timestamp in the header)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


class _Timer:
    """Times each stage and tells the listener its one-line summary."""

    def __init__(self, listener: Listener):
        self.listener = listener
        self.seconds: dict[str, float] = {}

    def run(self, name: str, work: Callable[[], object], summary: Callable[[object], str]):
        start = time.perf_counter()
        result = work()
        self.seconds[name] = round(time.perf_counter() - start, 3)
        self.listener.stage(name, summary(result))
        return result


def prepare_output(out: Path, force: bool) -> None:
    """Refuse an existing output folder before any work is done, unless --force."""
    if out.exists() and not force:
        raise TinypruneError(f"output folder {out} already exists",
                             "choose another --out, or add --force to replace it")
    if out.exists() and not out.is_dir():
        raise TinypruneError(f"output path {out} is a file", "choose a folder path for --out")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent)
        Path(probe).rmdir()
    except OSError as exc:
        raise TinypruneError(f"cannot write in {parent} ({exc.strerror})",
                             "choose an --out in a folder you can write to") from None


def publish(staging: Path, out: Path) -> None:
    """Swap the finished staging folder into place; an old output is removed only after that."""
    previous = None
    if out.exists():
        previous = out.with_name(f".{out.name}.previous")
        shutil.rmtree(previous, ignore_errors=True)
        out.rename(previous)
    staging.rename(out)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def build(config: BuildConfig, listener: Listener | None = None) -> BuildResult:
    """Run every stage for one configuration and write the output folder."""
    from tinyprune import stages
    from tinyprune.report import write_reports

    listener = listener or Listener()
    config.validate()
    out = Path(config.out)
    prepare_output(out, config.force)
    timer = _Timer(listener)

    target = stages.resolve_target(config)
    loaded = timer.run("load", lambda: stages.load(config), stages.describe_load)
    trained = timer.run("train", lambda: stages.train_float(loaded, config, listener.progress),
                        stages.describe_train)
    pruned = timer.run("prune", lambda: stages.prune(trained, config, listener.progress), stages.describe_prune)
    quantized = timer.run("quantize", lambda: stages.quantize(pruned, trained, config, target, listener.progress),
                          stages.describe_quantize)
    checked = timer.run("check", lambda: stages.check(quantized, target), stages.describe_check)

    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.resolve().parent))
    try:
        verified = timer.run("verify", lambda: stages.verify(checked, pruned, trained, config, target, loaded.name,
                                                             staging),
                             lambda v: stages.describe_verify(v, target))
        files = timer.run("export", lambda: stages.export(verified, staging), stages.describe_export)
        report = write_reports(staging, config, target, loaded, trained, pruned, verified, files, timer.seconds)
        publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    listener.stage("report", f"{out}/report.html, report.md, report.json")
    return BuildResult(out=out, report=report, files=files)


def demo_config(out: str = "build/demo", **overrides) -> BuildConfig:
    """The built-in default: the digits CNN trained from scratch, pruned to 75 %, for the Nano 33 BLE."""
    from tinyprune.config import load_config

    settings = dict(model="demo", data="digits", board="nano33ble", out=out, sparsity=0.75, fine_tune_epochs=10,
                    name="digits_cnn")
    return load_config(None, **{**settings, **overrides})


@dataclass
class SweepResult:
    out: Path
    points: list[dict]  # one per value: the option's value and that build's figures
    best: dict | None  # the smallest flash within the accuracy budget
    files: list[str]


def sweep_point(base: dict, point: dict) -> dict:
    """One point of a sweep: a whole build with the point's option; module-level, so the executor's
    worker processes can run it."""
    report = build(BuildConfig(**{**base, **point["options"]})).report
    return {
        "flash_bytes": report["fit"]["flash_needed"],
        "model_bytes": report["quantize"]["model_bytes"],
        "arena_bytes": report["memory"]["arena_firmware"],
        "accuracy": report["accuracy"]["tflm_int8"],
        "float_accuracy": report["accuracy"]["float"],
        "fits": report["fit"]["fits"],
    }


def _write_sweep_page(folder: Path, option: str, results: list[dict], chosen: dict, reference: float,
                      max_loss: float, flash_limit: int) -> None:
    """report.html for the sweep: the chosen point's build, with the accuracy-vs-flash section."""
    import json

    from tinyprune.report.html import render_html

    report = json.loads((folder / "points" / f"{option}_{chosen[option]}" / "report.json").read_text())
    report["sweep"] = {"points": [{"label": f"{option}={r[option]}", **r} for r in results],
                       "board_flash_limit": flash_limit, "reference_accuracy": reference, "max_loss": max_loss}
    (folder / "report.html").write_text(render_html(report))


def sweep_builds(config: BuildConfig, option: str, values: list, max_loss: float = 0.01,
                 executor: str = "local", workers: int | None = None, listener: Listener | None = None
                 ) -> SweepResult:
    """Build once per value of `option` (in parallel processes), then write the accuracy-vs-flash
    table and plot with the board's flash limit, marking the smallest model within `max_loss`."""
    import functools

    from tinyprune.boards import load_board
    from tinyprune.config import option_names
    from tinyprune.sweep import smallest_within, sweep, write_table

    listener = listener or Listener()
    if option not in option_names() or option in ("out", "force", "model", "data", "board"):
        raise TinypruneError(f"cannot sweep over {option!r}", "sweep a numeric option: sparsity, clusters, ...")
    config.validate()
    out = Path(config.out)
    prepare_output(out, config.force)
    board = load_board(config.board)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.resolve().parent))
    try:
        points = []
        for value in values:
            label = f"{option}_{value}"
            options = {option: value, "out": str(staging / "points" / label), "force": False}
            BuildConfig(**{**config.to_dict(), **options}).validate()  # refuse a bad value before any build
            points.append({option: value, "options": options})
        results = sweep(points, functools.partial(sweep_point, config.to_dict()), executor, workers,
                        lambda done, total, point: listener.progress("sweep", done, total, {option: point[option]}))
        for result in results:
            del result["options"]
        reference = results[0]["float_accuracy"]
        write_table(results, staging, reference, max_loss, board.flash_bytes,
                    title=f"{config.board}: TFLM accuracy vs flash over {option}")
        best = smallest_within(results, reference, max_loss)
        _write_sweep_page(staging, option, results, best or results[0], reference, max_loss, board.flash_bytes)
        files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
        publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    listener.stage("sweep", f"{len(results)} builds; smallest within {max_loss:.1%} of the float accuracy: "
                   + (f"{option}={best[option]}, {best['flash_bytes']:,} B flash, accuracy {best['accuracy']:.2%}"
                      if best else "none") + f"; {out}/report.html, sweep.md, sweep.png")
    return SweepResult(out, results, best, files)

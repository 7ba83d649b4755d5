"""`tinyprune fit`: the smallest firmware within an accuracy budget, searched over the compression settings.

The search walks a coarse grid. Each knob (structured ratio, sparsity, clusters) has a ladder of values,
gentlest first; a point is one rung on every ladder. First each knob alone, from cheap to aggressive,
stopping that direction at the first rung that breaks the budget; then the knobs combined, the most
aggressive combination first, stepping back a rung at a time. Two assumptions decide points without a
build, and the output names them for every point so decided:
- more compression never raises accuracy: a point at least as aggressive on every knob as one that broke
  the budget is not built;
- more compression never grows the firmware: a point at most as aggressive on every knob as one within
  the budget is not built (it could not be smaller).
Points are built in waves of `workers` points no two of which decide each other (the sweep's executors:
local processes or Ray), until the grid is decided or `max_builds` builds (less one per other backend) have run.

Accuracy does not depend on the backend (the standalone C gives TFLM's output bytes exactly), so the grid
is searched with the first backend and the chosen settings are then built once with each other backend;
the smallest firmware of those is the recommendation."""
from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tinyprune.errors import TinypruneError
from tinyprune.listener import Listener

KNOBS = ("ratio", "sparsity", "clusters")
DEFAULT_LADDERS = {"ratio": [0.0, 0.25, 0.375, 0.5], "sparsity": [0.0, 0.5, 0.75, 0.9], "clusters": [0, 16, 8, 4]}
DEFAULT_BACKENDS = ("standalone", "tflm")


@dataclass
class Searched:
    tried: list[dict]  # settings + figures + within_budget, in the order built
    skipped: list[dict]  # settings + the reason they were not built
    chosen: dict | None  # the smallest firmware within the budget


def settings_of(rungs: tuple[int, ...], ladders: dict[str, list]) -> dict:
    return {knob: ladders[knob][rung] for knob, rung in zip(KNOBS, rungs)}


def search(ladders: dict[str, list], build_wave: Callable[[list[dict]], list[dict]], max_loss: float,
           max_builds: int, wave_size: int = 1) -> Searched:
    """Walk the grid of `ladders` (module docstring), building waves of at most `wave_size` points with
    `build_wave(settings) -> results` (each with flash_bytes, accuracy, float_accuracy), and skipping
    what the two monotonicity assumptions (module docstring) decide without a build."""
    for knob in KNOBS:
        if not ladders.get(knob):
            raise TinypruneError(f"the {knob} ladder is empty", f"give at least one {knob} value")
    if max_builds < 1:
        raise TinypruneError(f"max_builds is {max_builds}", "allow at least one build")
    grid = list(itertools.product(*(range(len(ladders[k])) for k in KNOBS)))
    alone = sorted((r for r in grid if sum(1 for rung in r if rung) <= 1), key=lambda r: (sum(r), r))
    combined = sorted((r for r in grid if sum(1 for rung in r if rung) > 1), key=lambda r: (-sum(r), r))
    passed: list[tuple] = []
    failed: list[tuple] = []
    tried: list[dict] = []
    skipped: dict[tuple, str] = {}

    def decided(rungs: tuple) -> str | None:
        for bad in failed:
            if _at_least(rungs, bad):
                return f"at least as aggressive as {_describe(settings_of(bad, ladders))}, which broke the budget"
        for good in passed:
            if _at_least(good, rungs):
                return f"at most as aggressive as {_describe(settings_of(good, ladders))}, which is within it"
        return None

    def undecided(order: list[tuple]) -> list[tuple]:
        built = {t["rungs"] for t in tried}
        left = []
        for rungs in order:
            if rungs in skipped or rungs in built:
                continue
            reason = decided(rungs)
            if reason:
                skipped[rungs] = reason
            else:
                left.append(rungs)
        return left

    while len(tried) < max_builds:
        wave: list[tuple] = []
        for rungs in undecided(alone) or undecided(combined):  # knobs alone first, then combined
            if len(wave) < min(wave_size, max_builds - len(tried)) and not any(
                    _at_least(rungs, other) or _at_least(other, rungs) for other in wave):
                wave.append(rungs)
        if not wave:
            break
        for rungs, result in zip(wave, build_wave([settings_of(r, ladders) for r in wave])):
            within = within_budget(result, max_loss)
            (passed if within else failed).append(rungs)
            tried.append({**settings_of(rungs, ladders), **result, "within_budget": within, "rungs": rungs})
    for rungs in grid:  # what the budget of builds left undecided
        if rungs not in skipped and not any(t["rungs"] == rungs for t in tried):
            skipped[rungs] = decided(rungs) or "not built: --max-builds reached"
    for entry in tried:
        del entry["rungs"]
    fitting = [t for t in tried if t["within_budget"]]
    chosen = min(fitting, key=lambda t: (t["flash_bytes"], -t["accuracy"])) if fitting else None
    return Searched(tried, [{**settings_of(r, ladders), "reason": why} for r, why in sorted(skipped.items())],
                    chosen)


def within_budget(result: dict, max_loss: float) -> bool:
    """TFLM accuracy at most `max_loss` (a fraction) below the same build's float model."""
    return result["accuracy"] >= result["float_accuracy"] - max_loss - 1e-12


def _at_least(rungs: tuple, other: tuple) -> bool:
    """`rungs` is at least as aggressive as `other` on every knob."""
    return all(a >= b for a, b in zip(rungs, other))


def _describe(settings: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def build_options(settings: dict) -> dict:
    """The BuildConfig options of one grid point: a structured ratio compacts first (magnitude pruning
    follows it when sparsity > 0), else magnitude pruning alone."""
    ratio = settings["ratio"]
    options = {"sparsity": settings["sparsity"], "clusters": settings["clusters"],
               "method": "structured" if ratio else "magnitude"}
    if ratio:
        options["ratio"] = ratio
    if "backend" in settings:
        options["backend"] = settings["backend"]
    return options


@dataclass
class FitResult:
    out: Path
    tried: list[dict]  # every build, in the order built: settings, backend, figures, within_budget
    skipped: list[dict]  # grid points not built, with the reason
    chosen: dict | None  # the smallest firmware within the budget (over every backend)
    chosen_build: str | None  # its build folder, relative to out
    files: list[str]


def _typed(ladders: dict[str, list]) -> dict[str, list]:
    """Fractions as floats and cluster counts as integers, so labels and tables read the same however given."""
    if any(float(k) != int(k) for k in ladders["clusters"]):
        raise TinypruneError(f"cluster values {ladders['clusters']} are not whole numbers", "give them as 0,16,8,4")
    return {"ratio": [float(v) for v in ladders["ratio"]], "sparsity": [float(v) for v in ladders["sparsity"]],
            "clusters": [int(k) for k in ladders["clusters"]]}


def _label(settings: dict) -> str:
    """Short enough for the plot, and a folder name: r(atio) s(parsity) k (clusters) backend."""
    return f"r{settings['ratio']}_s{settings['sparsity']}_k{settings['clusters']}_{settings['backend']}"


def _figures(point: dict) -> dict:
    """The fit's columns from a build's report: the firmware's flash as the report gives it and, for the
    standalone backend, the weights and constants it stores."""
    report = point["report"]
    standalone = report.get("standalone")
    return {"flash_bytes": point["flash_bytes"], "accuracy": point["accuracy"],
            "float_accuracy": point["float_accuracy"], "model_bytes": point["model_bytes"],
            "arena_bytes": point["arena_bytes"], "fits": point["fits"],
            "constant_bytes": standalone["model"]["constant_bytes"] if standalone else None}


def fit_builds(config, ladders: dict[str, list] | None = None, backends: tuple[str, ...] = DEFAULT_BACKENDS,
               max_loss: float = 0.01, max_builds: int = 12, executor: str = "local", workers: int | None = None,
               listener: Listener | None = None, build_point: Callable[[dict, dict], dict] | None = None) -> FitResult:
    """Search the compression grid (module docstring) for the smallest firmware of `config`'s model on its
    board within `max_loss` of the float accuracy; write fit.md, fit.csv, fit.png, fit.json and every
    build (points/) into config.out, atomically. `build_point(base, point)` builds one point (default: a
    whole build, tinyprune.sweep.sweep_point); it must be module-level, for the executor's workers."""
    import os

    from tinyprune.backends import get_backend
    from tinyprune.config import BuildConfig
    from tinyprune.pipeline import staged_output
    from tinyprune.sweep import prepare_search, sweep, sweep_point, write_sweep_page, write_table

    listener = listener or Listener()
    ladders = _typed({**DEFAULT_LADDERS, **(ladders or {})})
    if not backends:
        raise TinypruneError("no backend to fit", "give --backends standalone,tflm (or one of them)")
    for backend in backends:
        get_backend(backend)
    if max_builds <= len(backends) - 1:
        raise TinypruneError(f"max_builds {max_builds} leaves no build for the search after one per other backend",
                             f"allow more than {len(backends) - 1} builds, or give fewer --backends")
    out, board = prepare_search(config, "fit", "fit has nothing to search")
    workers = max(1, workers or os.cpu_count() or 1)
    with staged_output(out) as staging:
        built = 0

        def build_wave(wave: list[dict]) -> list[dict]:
            nonlocal built
            points = []
            for settings in wave:
                options = {**build_options(settings), "out": str(staging / "points" / _label(settings)), "force": False}
                BuildConfig(**{**config.to_dict(), **options}).validate()  # refuse a bad value before any build
                points.append({"label": _label(settings), "options": options})
            results = sweep(points, functools.partial(build_point or sweep_point, config.to_dict()), executor, workers,
                            lambda done, total, point: listener.progress("fit", built + done, max_builds,
                                                                         {"point": point["label"]}))
            built += len(wave)
            return [_figures(r) for r in results]

        first, *others = backends
        searched = search(ladders, lambda wave: build_wave([{**s, "backend": first} for s in wave]),
                          max_loss, max_builds - len(others), workers)
        tried = [{**{k: t[k] for k in KNOBS}, "backend": first, **t} for t in searched.tried]
        if searched.chosen and others:
            knobs = {k: searched.chosen[k] for k in KNOBS}
            rebuilt = build_wave([{**knobs, "backend": b} for b in others])
            tried += [{**knobs, "backend": b, **r, "within_budget": within_budget(r, max_loss)}
                      for b, r in zip(others, rebuilt)]
        fitting = [t for t in tried if t["within_budget"]]
        chosen = min(fitting, key=lambda t: (t["flash_bytes"], -t["accuracy"])) if fitting else None
        reference = tried[0]["float_accuracy"]
        rows = [{"label": _label(t), **t} for t in tried]  # the table and plot show the settings, unlabelled
        paths = write_table(tried, staging, reference, max_loss, board.flash_bytes,
                            title=f"{config.board}: TFLM accuracy vs flash, fit", stem="fit")
        _append_search_notes(paths["markdown"], searched, chosen, ladders, max_builds)
        if chosen:
            chosen_report = json.loads((staging / "points" / _label(chosen) / "report.json").read_text())
            write_sweep_page(staging, chosen_report, tried, reference, max_loss, board.flash_bytes)
        (staging / "fit.json").write_text(json.dumps(
            {"reference_accuracy": reference, "max_loss": max_loss, "max_builds": max_builds,
             "ladders": ladders, "backends": list(backends), "tried": rows, "skipped": searched.skipped,
             "chosen": {"label": _label(chosen), **chosen} if chosen else None,
             "chosen_build": f"points/{_label(chosen)}" if chosen else None}, indent=2) + "\n")
        files = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
    listener.stage("fit", f"{len(tried)} builds, {len(searched.skipped)} grid points decided without one; "
                   + (f"smallest within {max_loss:.1%}: {_label(chosen)}, {chosen['flash_bytes']:,} B flash"
                      + (f" ({chosen['constant_bytes']:,} B weights and constants)"
                         if chosen["constant_bytes"] is not None else "")
                      + f", accuracy {chosen['accuracy']:.2%}" if chosen else "none within budget")
                   + f"; {out}/fit.md, fit.png, fit.json" + (", report.html" if chosen else ""))
    return FitResult(out, rows, searched.skipped, chosen and {"label": _label(chosen), **chosen},
                     f"points/{_label(chosen)}" if chosen else None, files)


def _append_search_notes(markdown: Path, searched: Searched, chosen: dict | None, ladders: dict,
                         max_builds: int) -> None:
    lines = ["", "## Search", "",
             "Grid (gentlest first): " + "; ".join(f"{k} {ladders[k]}" for k in KNOBS)
             + f"; at most {max_builds} builds. A point at least as aggressive on every knob as one that broke "
             "the budget is not built, nor one at most as aggressive as one within it.", ""]
    if chosen:
        lines.append(f"Chosen: `{_label(chosen)}`, {chosen['flash_bytes']:,} B flash"
                     + (f", {chosen['constant_bytes']:,} B weights and constants" if chosen["constant_bytes"]
                        is not None else "") + f", TFLM accuracy {chosen['accuracy']:.2%} "
                     f"(float {chosen['float_accuracy']:.2%}); its build is in points/{_label(chosen)}/.")
    else:
        lines.append("No point tried is within the budget.")
    lines += ["", "| not built | why |", "|---|---|"]
    lines += [f"| {_describe({k: s[k] for k in KNOBS})} | {s['reason']} |" for s in searched.skipped]
    with markdown.open("a") as handle:
        handle.write("\n".join(lines) + "\n")

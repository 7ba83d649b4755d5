"""report.html: the build on one self-contained page, rendered from report.json's dictionary.

Nothing but the report dictionary goes in, so the page never shows a figure report.json lacks. The
page has no external reference: CSS is inline and every plot is a base64 PNG data URI, so it can be
mailed, attached to a CI run or opened offline. Text is escaped by Jinja's autoescape.

Optional parts render only when the report has them:
- prune.details: a per-layer chart from "achieved_sparsity" (+ "target_sparsity"; magnitude, cluster),
  "layer_remaining" (lottery) or "layers" with "ratio" (structured: share of units removed); every
  scalar detail in a table, the rest as JSON.
- accuracy.confusion_float_vs_tflm: null for regression, then no confusion matrix.
- sweep: {"points": [{"flash_bytes", "accuracy", "label"?, ...}], "board_flash_limit"?,
  "reference_accuracy"?} (a bare list of points is accepted too): the accuracy-vs-size plot and table.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import jinja2
from markupsafe import Markup

from tinyprune.report import plots
from tinyprune.report.schema import model_card
from tinyprune.sizes import counted

_TEMPLATES = Path(__file__).resolve().parent / "templates"
_SCALARS = (str, int, float, bool, type(None))


def data_uri(png: bytes) -> Markup:
    return Markup("data:image/png;base64," + base64.b64encode(png).decode("ascii"))


def _score(value: float, metric: str) -> str:
    return f"{value * 100:.2f} %" if metric == "accuracy" else f"{value:.5g}"


def stage_rows(r: dict) -> list[dict]:
    """One row a timed stage: its seconds and the figure that says what it did."""
    acc, metric = r["accuracy"], r["accuracy"]["metric"]
    q, fit, mem = r["quantize"], r["fit"], r["memory"]
    ops = r["check"]["ops"]
    figures = {
        "load": f"{r['model']['source']}: {r['model']['parameters']:,} parameters, {r['model']['macs']:,} MACs; "
                f"{r['data']['name']}: {r['data']['train_samples']:,} train / {r['data']['test_samples']:,} test",
        "train": f"float model {_score(acc['float'], metric)}",
        "prune": f"{r['prune']['method']}: {r['prune']['sparsity']:.1%} of {r['prune']['kernel_weights']:,} "
                 f"kernel weights zero; pruned model {_score(acc['pruned'], metric)}",
        "quantize": f"full-int8 TFLite {q['model_bytes']:,} B (gzip {q['model_bytes_gzip']:,} B; dense "
                    f"{q['dense_model_bytes']:,} B), {'per-channel' if q['per_channel_dense'] else 'per-tensor'} "
                    f"FULLY_CONNECTED, {r['data']['calibration_samples']} calibration samples",
        "check": f"{counted(sum(op['count'] for op in ops), 'operator')} of {counted(len(ops), 'kind')}, "
                 + ("all supported" if all(op["supported"] for op in ops) else "SOME UNSUPPORTED")
                 + f" by {r['target']['runtime']['title']}",
        "verify": f"TFLM int8 {_score(acc['tflm_int8'], metric)}; arena {mem['arena_aligned16']:,} B on the host, "
                  f"{mem.get('board_aligned16', mem['arena_aligned16']):,} B on the board; "
                  f"flash {fit['flash_needed']:,} / {fit['flash_limit']:,} B, RAM {fit['ram_needed']:,} / "
                  f"{fit['ram_limit']:,} B",
        "export": f"{len(r['firmware']['files'])} files",
    }
    return [{"stage": name, "seconds": seconds, "figure": figures.get(name, "")}
            for name, seconds in r["run"]["stage_seconds"].items()]


def per_layer_chart(details: dict) -> dict | None:
    """The per-layer figure a pruning method reports, as {values, targets, quantity, note, shown (the
    details it shows)}; None when the method reports none."""
    if isinstance(details.get("achieved_sparsity"), dict) and details["achieved_sparsity"]:
        return {"values": details["achieved_sparsity"], "targets": details.get("target_sparsity") or {},
                "quantity": "sparsity", "note": "measured on the stripped weights",
                "shown": ("achieved_sparsity", "target_sparsity")}
    if isinstance(details.get("layer_remaining"), dict) and details["layer_remaining"]:
        return {"values": {k: 1 - v for k, v in details["layer_remaining"].items()}, "targets": {},
                "quantity": "sparsity", "note": "1 - the winning ticket's remaining weights per layer",
                "shown": ("layer_remaining",)}
    layers = details.get("layers")
    if isinstance(layers, dict) and layers and all(isinstance(v, dict) and "ratio" in v for v in layers.values()):
        return {"values": {k: v["ratio"] for k, v in layers.items()},
                "targets": {k: details["ratio"] for k in layers} if isinstance(details.get("ratio"), float) else {},
                "quantity": "units removed", "note": "whole filters or units removed (the layer got smaller)",
                "shown": ()}
    return None


def _details(details: dict, charted: tuple[str, ...]) -> tuple[list[tuple[str, object]], list[tuple[str, str]]]:
    """A method's details split into scalars (a table) and structures not in the chart (shown as JSON)."""
    scalars = [(k, v) for k, v in details.items() if isinstance(v, _SCALARS)]
    structures = [(k, json.dumps(v, indent=1, sort_keys=False, default=str)) for k, v in details.items()
                  if not isinstance(v, _SCALARS) and k not in charted]
    return scalars, structures


def _sweep(r: dict) -> dict | None:
    sweep = r.get("sweep")
    if not sweep:
        return None
    if isinstance(sweep, list):
        sweep = {"points": sweep}
    points = sweep.get("points") or []
    if not points:
        return None
    limit = sweep.get("board_flash_limit")
    columns = list(dict.fromkeys(k for p in points for k, v in p.items() if isinstance(v, _SCALARS)))
    return {
        "plot": data_uri(plots.accuracy_vs_flash(points, limit, sweep.get("reference_accuracy"),
                                                 sweep.get("max_loss"))),
        "columns": columns,
        "points": points,
        "board_flash_limit": limit,
    }


def _format_cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), undefined=jinja2.StrictUndefined,
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["bytes"] = lambda v: f"{v:,} B"
    env.filters["cell"] = _format_cell
    env.filters["percent"] = lambda v: f"{v * 100:.2f} %"
    return env


def render_html(report: dict) -> str:
    """The page for one build: stages, accuracy, sparsity, board fit, confusion, ops, memory, versions."""
    r = report
    acc = r["accuracy"]
    metric = acc["metric"]
    fit = r["fit"]
    layers = per_layer_chart(r["prune"]["details"])
    scalars, structures = _details(r["prune"]["details"], layers["shown"] if layers else ())
    confusion = acc.get("confusion_float_vs_tflm")
    figures = {
        "stages": data_uri(plots.stage_seconds(r["run"]["stage_seconds"])) if r["run"]["stage_seconds"] else None,
        "accuracy": data_uri(plots.accuracy_per_stage(acc, metric)),
        "layers": data_uri(plots.layer_sparsity(layers["values"], layers["targets"], layers["quantity"]))
        if layers else None,
        "budget": data_uri(plots.board_budget(fit["flash_items"], fit["flash_limit"], fit["ram_items"],
                                              fit["ram_limit"], fit["board"])),
        "confusion": data_uri(plots.confusion(confusion)) if confusion else None,
    }
    disagreements = sum(sum(row) for row in confusion) - sum(row[i] for i, row in enumerate(confusion)) \
        if confusion else None
    model_bytes, model_words = model_card(r)
    return environment().get_template("report.html.j2").render(
        r=r, model_bytes=model_bytes, model_words=model_words, metric=metric, score=lambda v: _score(v, metric), stages=stage_rows(r), figures=figures,
        layers=layers, detail_scalars=scalars, detail_structures=structures, disagreements=disagreements,
        sweep=_sweep(r))

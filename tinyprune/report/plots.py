"""The report's figures as PNG bytes: one function a plot, each a pure function of report figures.

Same figures in, same bytes out: the Agg canvas is used directly (no pyplot state), every style
setting is pinned (so a user's matplotlibrc cannot change the pixels), the fonts are the DejaVu fonts
matplotlib ships, and the PNG carries no metadata (no "Software" version, no timestamp)."""
from __future__ import annotations

import io
from typing import Iterable

DPI = 100
# The accuracy stage TFLM has its own colour everywhere, so the eye finds the headline figure.
TFLM_COLOUR = "#c0392b"
BASE_COLOUR = "#4a6fa5"
MUTED_COLOUR = "#9aa9bd"
LIMIT_COLOUR = "#222222"
ITEM_COLOURS = ("#4a6fa5", "#e1a33b", "#5b9e6b", "#8e6bb0", "#c77c5a", "#6fa8b5", "#b5a46f")
_STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.linewidth": 0.8,
    "axes.facecolor": "white",
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "path.simplify": True,
    "text.hinting": "force_autohint",
    "text.antialiased": True,
    "lines.antialiased": True,
    "patch.antialiased": True,
    "image.interpolation": "nearest",
    "savefig.bbox": "standard",
}
STAGE_LABELS = {"float": "float Keras", "pruned": "pruned Keras", "litert_int8": "LiteRT int8",
                "tflm_int8": "TFLM int8"}


def _render(width: float, height: float, draw) -> bytes:
    """A figure of width x height inches drawn by `draw(figure)`, as metadata-free PNG bytes."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(width, height), dpi=DPI)
        FigureCanvasAgg(figure)
        draw(figure)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _kib(value: float) -> str:
    return f"{value / 1024:,.1f} KiB"


def stage_seconds(seconds: dict[str, float]) -> bytes:
    """Where the build's time went: one horizontal bar a stage, in run order."""
    names = list(seconds)[::-1]
    values = [seconds[name] for name in names]

    def draw(figure):
        axes = figure.add_subplot()
        bars = axes.barh(names, values, color=BASE_COLOUR, height=0.6)
        axes.bar_label(bars, labels=[f"{v:.1f} s" for v in values], padding=3, fontsize=8.5)
        axes.set_xlabel("seconds")
        axes.set_xlim(0, max(values + [0.001]) * 1.18)
        axes.set_title(f"time per stage (total {sum(values):.1f} s)")

    return _render(6.0, 0.34 * len(names) + 1.0, draw)


def accuracy_per_stage(scores: dict[str, float], metric: str) -> bytes:
    """Test-set accuracy (or MSE) of each stage, TFLM int8 highlighted: it is what the board runs."""
    stages = [stage for stage in STAGE_LABELS if stage in scores]
    values = [scores[stage] for stage in stages]
    is_accuracy = metric == "accuracy"

    def draw(figure):
        axes = figure.add_subplot()
        colours = [TFLM_COLOUR if stage == "tflm_int8" else BASE_COLOUR for stage in stages]
        bars = axes.bar([STAGE_LABELS[s] for s in stages], values, color=colours, width=0.6)
        labels = [f"{v * 100:.2f} %" if is_accuracy else f"{v:.4g}" for v in values]
        axes.bar_label(bars, labels=labels, padding=2, fontsize=9)
        if is_accuracy:
            # Zoom on the range where the stages differ, never hiding where the axis starts.
            low = max(0.0, min(values) - 0.1)
            axes.set_ylim(low, 1.0 + (1.0 - low) * 0.08)
            axes.set_ylabel("accuracy" + (f" (axis from {low:.0%})" if low > 0 else ""))
        else:
            axes.set_ylim(0, max(values + [1e-12]) * 1.15)
            axes.set_ylabel("mean squared error (lower is better)")
        axes.set_title("test-set " + ("accuracy" if is_accuracy else "MSE") + " per stage")

    return _render(6.0, 3.4, draw)


def layer_sparsity(achieved: dict[str, float], target: dict[str, object] | None = None,
                   quantity: str = "sparsity") -> bytes:
    """Achieved fraction per layer as bars; numeric targets as black ticks on them."""
    target = target or {}
    names = list(achieved)[::-1]
    values = [float(achieved[name]) for name in names]

    def draw(figure):
        axes = figure.add_subplot()
        axes.barh(names, values, color=BASE_COLOUR, height=0.6, label=f"achieved {quantity}")
        marks = [(i, float(target[n])) for i, n in enumerate(names)
                 if isinstance(target.get(n), (int, float)) and not isinstance(target.get(n), bool)]
        marked = dict(marks)
        for row, value in enumerate(values):
            axes.text(max(value, marked.get(row, 0.0)) + 0.02, row, f"{value:.1%}", va="center", fontsize=8.5)
        if marks:
            axes.scatter([t for _, t in marks], [i for i, _ in marks], marker="|", s=380, linewidths=2.2,
                         color=LIMIT_COLOUR, zorder=3, label=f"target {quantity}")
        axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)
        axes.set_xlim(0, 1.13)
        axes.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0 %", "25 %", "50 %", "75 %", "100 %"])
        axes.set_xlabel(f"{quantity} per layer")

    return _render(6.0, 0.42 * len(names) + 1.3, draw)


def board_budget(flash_items: dict[str, int], flash_limit: int, ram_items: dict[str, int], ram_limit: int,
                 board: str) -> bytes:
    """Flash and RAM, each a stacked bar of its items as a share of the board's limit (the line at 100 %)."""
    rows = [("flash", flash_items, flash_limit), ("RAM", ram_items, ram_limit)]

    def draw(figure):
        axes = figure.add_subplot()
        colour_of = {}
        for name in list(flash_items) + list(ram_items):
            colour_of.setdefault(name, ITEM_COLOURS[len(colour_of) % len(ITEM_COLOURS)])
        largest = 1.0
        for row, (label, items, limit) in enumerate(rows):
            left = 0.0
            for name, value in items.items():
                share = value / limit * 100
                axes.barh(row, share, left=left, color=colour_of[name], height=0.5,
                          label=name if name not in axes.get_legend_handles_labels()[1] else None)
                left += share
            largest = max(largest, left)
            needed = sum(items.values())
            axes.text(left + 1.0, row, f"{_kib(needed)} of {_kib(limit)} ({needed / limit:.1%})",
                      va="center", fontsize=8.5)
        axes.axvline(100, color=LIMIT_COLOUR, linewidth=1.5)
        axes.text(99, -0.5, f"{board}'s limit", ha="right", va="center", fontsize=8.5)
        axes.set_yticks(range(len(rows)), [label for label, _, _ in rows])
        axes.set_ylim(1.6, -0.75)  # flash on top
        axes.set_xlim(0, max(112.0, largest * 1.45))
        axes.set_xlabel("% of the board's limit")
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=4)
        axes.set_title("flash and RAM against the board")

    return _render(6.0, 3.0, draw)


def confusion(matrix: list[list[int]], rows: str = "float Keras", columns: str = "TFLM int8") -> bytes:
    """Counts of (row model's class, column model's class); off-diagonal cells are where they disagree."""
    import numpy as np

    counts = np.asarray(matrix, dtype=np.int64)
    classes = counts.shape[0]

    def draw(figure):
        axes = figure.add_subplot()
        axes.imshow(np.log1p(counts), cmap="Blues", aspect="equal")
        threshold = np.log1p(counts.max()) * 0.6 if counts.size else 0
        for (i, j), value in np.ndenumerate(counts):
            if value:
                off = i != j
                axes.text(j, i, str(value), ha="center", va="center", fontsize=8 if classes > 12 else 9,
                          fontweight="bold" if off else "normal",
                          color=TFLM_COLOUR if off else ("white" if np.log1p(value) > threshold else "black"))
        axes.set_xticks(range(classes))
        axes.set_yticks(range(classes))
        axes.set_xlabel(f"{columns} class")
        axes.set_ylabel(f"{rows} class")
        axes.tick_params(length=0)
        for spine in axes.spines.values():
            spine.set_visible(False)
        disagree = int(counts.sum() - np.trace(counts))
        axes.set_title(f"{rows} vs {columns}: {disagree:,} of {int(counts.sum()):,} differ")

    side = min(6.0, max(3.4, 0.3 * classes + 1.6))
    return _render(side, side, draw)


def accuracy_vs_flash(points: Iterable[dict], flash_limit: int | None = None,
                      reference_accuracy: float | None = None, max_loss: float | None = None,
                      title: str = "accuracy vs flash") -> bytes:
    """A sweep: accuracy against flash bytes, one (optionally labelled) point per setting and the
    front of the best accuracy at each size; the board's flash limit (points beyond it crossed out);
    with a reference, its line, and with max_loss too the budget line and the smallest model within
    it circled."""
    from tinyprune.report.frontier import pareto_front, smallest_within

    ordered = sorted(points, key=lambda p: p["flash_bytes"])
    budget = reference_accuracy - max_loss if reference_accuracy is not None and max_loss is not None else None
    best = smallest_within(ordered, reference_accuracy, max_loss) if budget is not None else None

    def draw(figure):
        axes = figure.add_subplot()
        xs = [p["flash_bytes"] / 1024 for p in ordered]
        ys = [p["accuracy"] for p in ordered]
        axes.plot(xs, ys, "o", color=BASE_COLOUR, label="sweep points")
        front = pareto_front(ordered)
        axes.step([p["flash_bytes"] / 1024 for p in front], [p["accuracy"] for p in front], where="post",
                  color=BASE_COLOUR, alpha=0.5, label="best accuracy at this size")
        for x, y, point in zip(xs, ys, ordered):
            if point.get("label"):
                axes.annotate(str(point["label"]), (x, y), textcoords="offset points", xytext=(4, 6),
                              fontsize=8)
        too_big = [(x, y) for x, y, p in zip(xs, ys, ordered) if flash_limit and p["flash_bytes"] > flash_limit]
        if too_big:
            axes.scatter(*zip(*too_big), marker="x", s=90, color=TFLM_COLOUR, zorder=3, label="does not fit")
        if reference_accuracy is not None:
            axes.axhline(reference_accuracy, color=MUTED_COLOUR, linestyle="--",
                         label=f"reference {reference_accuracy:.2%}")
        if budget is not None:
            axes.axhline(budget, color=MUTED_COLOUR, linestyle=":",
                         label=f"reference - {max_loss * 100:.2f} points")
        if best is not None:
            axes.plot([best["flash_bytes"] / 1024], [best["accuracy"]], "o", markersize=14, markerfacecolor="none",
                      markeredgecolor=ITEM_COLOURS[2], markeredgewidth=2,
                      label=f"smallest within budget: {_kib(best['flash_bytes'])}")
        if flash_limit and flash_limit <= 1.5 * max(p["flash_bytes"] for p in ordered):
            axes.axvline(flash_limit / 1024, color=TFLM_COLOUR, label=f"board flash {_kib(flash_limit)}")
        elif flash_limit:
            # A line far to the right would squash the points into one corner: state the limit instead.
            axes.annotate(f"board flash {_kib(flash_limit)} \u2192", (1, 1), xycoords="axes fraction",
                          ha="right", va="top", fontsize=8.5, color=TFLM_COLOUR)
        axes.set_xlabel("flash (KiB)")
        axes.set_ylabel("accuracy")
        axes.grid(True, alpha=0.3)
        axes.legend(loc="lower right")
        axes.set_title(title)

    return _render(6.5, 3.8, draw)

"""`tinyprune fit` on the demo's architecture against the issue's flash goal: weights and constants at most a
tenth of the dense int8 model's, within one point of the float model's accuracy (TFLM on the test set; the
standalone firmware run under qemu gives TFLM's bytes). Prints every build the search ran (the default grid) and the choice.
Run with `python bench/fit.py [--quick] [--out FOLDER] [--workers N] [--weight-storage smallest]` (about ten minutes on two cores;
FOLDER keeps fit.md, fit.png, fit.json and the builds)."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinyprune import api  # noqa: E402
from tinyprune.console import native_output_hidden  # noqa: E402

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer epochs and builds (for a smoke run)")
    parser.add_argument("--out", help="keep the fit's folder here")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--weight-storage", choices=("fast", "smallest"), default="fast",
                        help="the standalone C's weight formats (smallest: gap codes and table indices too)")
    args = parser.parse_args()
    quick = {"train_epochs": 3, "fine_tune_epochs": 2} if args.quick else {}
    quick["weight_storage"] = args.weight_storage
    with native_output_hidden(hide=True) as (out, _), tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.out or scratch) / "fit"
        result = api.fit(None, None, max_loss=0.01, max_builds=4 if args.quick else 14, workers=args.workers,
                         out=str(folder), force=True, **quick)
        dense = next(t for t in result.tried if not (t["ratio"] or t["sparsity"] or t["clusters"]))
        header = ("ratio", "sparsity", "clusters", "backend", "flash B", "weights+consts B", "TFLM acc",
                  "float acc", "within 1 pt")
        rows = [(t["ratio"], t["sparsity"], t["clusters"], t["backend"], f"{t['flash_bytes']:,}",
                 "" if t["constant_bytes"] is None else f"{t['constant_bytes']:,}", f"{t['accuracy']:.4f}",
                 f"{t['float_accuracy']:.4f}", "yes" if t["within_budget"] else "no") for t in result.tried]
        out.write("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n")
        out.writelines("| " + " | ".join(str(cell) for cell in row) + " |\n" for row in rows)
        chosen = result.chosen
        goal = dense["model_bytes"] // 10
        out.write(f"\nmeasured: dense int8 model {dense['model_bytes']:,} B (its standalone constants "
                  f"{dense['constant_bytes']:,} B); goal: weights+constants <= {goal:,} B within 1 point\n")
        if chosen:
            out.write(f"measured: chosen {chosen['label']}: {chosen['flash_bytes']:,} B firmware, "
                      f"{chosen['constant_bytes']:,} B weights+constants "
                      f"({dense['model_bytes'] / chosen['constant_bytes']:.1f}x below the dense model), TFLM "
                      f"{chosen['accuracy']:.2%} vs float {chosen['float_accuracy']:.2%}: goal "
                      f"{'reached' if chosen['constant_bytes'] <= goal else 'not reached'}\n")


if __name__ == "__main__":
    main()

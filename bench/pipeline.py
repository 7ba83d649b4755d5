"""Time per pipeline stage and model size dense vs pruned (raw and gzip), plus the exact arena, for
the demo at a few sparsities. Prints a table; run with `python bench/pipeline.py [--quick]`."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinyprune.console import native_output_hidden  # noqa: E402
from tinyprune.pipeline import build, demo_config  # noqa: E402

STAGES = ("load", "train", "prune", "quantize", "check", "verify", "export")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer epochs (for a smoke run)")
    parser.add_argument("--sparsities", default="0.5,0.75,0.9")
    args = parser.parse_args()
    epochs = {"train_epochs": 5, "fine_tune_epochs": 2} if args.quick else {}
    header = ("sparsity", *[f"{s} s" for s in STAGES], "dense B", "dense gz", "pruned B", "pruned gz",
              "arena B", "TFLM acc")
    rows = []
    with native_output_hidden(hide=True) as (out, _):
        for sparsity in (float(s) for s in args.sparsities.split(",")):
            with tempfile.TemporaryDirectory() as folder:
                report = build(demo_config(str(Path(folder) / "demo"), sparsity=sparsity, **epochs)).report
            seconds = report["run"]["stage_seconds"]
            q = report["quantize"]
            rows.append((f"{sparsity:.2f}", *[f"{seconds[s]:.2f}" for s in STAGES], q["dense_model_bytes"],
                         q["dense_model_bytes_gzip"], q["model_bytes"], q["model_bytes_gzip"],
                         report["memory"]["arena_aligned16"], f"{report['accuracy']['tflm_int8']:.4f}"))
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            out.write("  ".join(str(c).rjust(w) for c, w in zip(row, widths)) + "\n")


if __name__ == "__main__":
    main()

"""What each pruning method buys on the digits demo CNN: kernel weights left, MACs, int8 TFLite bytes,
the exact TFLM arena, float and TFLM accuracy, and the method's time; clustering rows convert per
tensor and store the weights in TFLM's compressed formats (decoded by TFLM's DECODE at run time). Then
LassoNet's feature selection on the two tables shipped with scikit-learn.

Every row is produced by one function of ROWS (context -> row); another method adds its row function
there. Run with `python bench/compression.py [--quick]`."""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from tinyprune.console import native_output_hidden  # noqa: E402


@dataclass
class Context:
    data: object  # digits, as (N, 8, 8, 1) images
    dense: object  # the demo CNN, trained
    epochs: int  # fine-tuning / retraining epochs per method
    seed: int


@dataclass
class Row:
    method: str
    model: object
    seconds: float
    inputs: tuple[np.ndarray, np.ndarray]  # (train, test) as the model reads them: LassoNet reads fewer pixels
    note: str = ""
    per_channel: bool = True  # False for clustered models: one scale a tensor keeps k values
    tflm_compression: str = "none"


def dense_row(ctx: Context) -> Row:
    return Row("dense", ctx.dense, 0.0, _digits(ctx))


def magnitude_row(ctx: Context) -> Row:
    from tinyprune.prune.magnitude import magnitude_prune

    start = time.perf_counter()
    result = magnitude_prune(ctx.dense, ctx.data, sparsity=0.75, epochs=ctx.epochs)
    return Row("magnitude 75 %", result.model, time.perf_counter() - start, _digits(ctx))


def structured_row(ctx: Context) -> Row:
    from tinyprune.prune.structured import structured_prune

    start = time.perf_counter()
    result = structured_prune(ctx.dense, ctx.data, ratio=0.5, fine_tune_epochs=ctx.epochs, seed=ctx.seed)
    return Row("structured 50 % (L1)", result.model, time.perf_counter() - start, _digits(ctx),
               _units(result.details))


def structured_scan_row(ctx: Context) -> Row:
    from tinyprune.prune.structured import structured_prune

    start = time.perf_counter()
    result = structured_prune(ctx.dense, ctx.data, ratio=0.6, sensitivity_scan=True, criterion="group_lasso",
                              group_lasso_epochs=ctx.epochs // 2, fine_tune_epochs=ctx.epochs, seed=ctx.seed)
    return Row("structured 60 % (group lasso, scan)", result.model, time.perf_counter() - start,
               _digits(ctx), _units(result.details))


def structured_then_magnitude_row(ctx: Context) -> Row:
    """The methods compose: compaction first, then magnitude pruning of what remains."""
    from tinyprune.prune.magnitude import magnitude_prune
    from tinyprune.prune.structured import structured_prune

    start = time.perf_counter()
    compacted = structured_prune(ctx.dense, ctx.data, ratio=0.5, fine_tune_epochs=ctx.epochs, seed=ctx.seed)
    result = magnitude_prune(compacted.model, ctx.data, sparsity=0.5, epochs=ctx.epochs)
    return Row("structured 50 % + magnitude 50 %", result.model, time.perf_counter() - start,
               _digits(ctx), _units(compacted.details))


def lottery_row(ctx: Context) -> Row:
    from tinyprune.demo import demo_cnn
    from tinyprune.prune.lottery import lottery_ticket

    start = time.perf_counter()
    result = lottery_ticket(demo_cnn, ctx.data, rounds=4, prune_fraction=0.4, train_epochs=ctx.epochs,
                            seed=ctx.seed)
    details = result.details
    return Row("lottery ticket (4 x 40 %, k=0)", result.model, time.perf_counter() - start, _digits(ctx),
               f"random reinit {details['random_reinit_accuracy']:.4f}, dense {details['dense_accuracy']:.4f}")


def lassonet_row(ctx: Context) -> Row:
    """LassoNet on the 64 pixels as features: the board reads only the kept pixels."""
    from tinyprune.io.data import Dataset
    from tinyprune.prune.lassonet import lassonet_select, restrict_features

    d = ctx.data
    flat = Dataset("digits_pixels", d.x_train.reshape(len(d.x_train), -1), d.y_train,
                   d.x_test.reshape(len(d.x_test), -1), d.y_test)
    start = time.perf_counter()
    result = lassonet_select(flat, hidden_units=(32,), max_features=32, dense_epochs=2 * ctx.epochs,
                             refit_epochs=2 * ctx.epochs, seed=ctx.seed)
    kept = restrict_features(flat, result.details["kept_features"]["indices"])
    return Row("lassonet (MLP, <= 32 pixels)", result.model, time.perf_counter() - start,
               (kept.x_train, kept.x_test), f"{kept.x_train.shape[1]} of 64 pixels")


def cluster_lut_row(ctx: Context) -> Row:
    from tinyprune.prune.cluster import cluster

    start = time.perf_counter()
    result = cluster(ctx.dense, ctx.data, clusters=8, epochs=ctx.epochs)
    return Row("cluster k=8, LUT", result.model, time.perf_counter() - start, _digits(ctx),
               "per-tensor int8, TFLM LUT", per_channel=False, tflm_compression="lut")


def magnitude_cluster_auto_row(ctx: Context) -> Row:
    from tinyprune.prune.cluster import cluster
    from tinyprune.prune.magnitude import magnitude_prune

    start = time.perf_counter()
    pruned = magnitude_prune(ctx.dense, ctx.data, sparsity=0.75, epochs=ctx.epochs)
    result = cluster(pruned.model, ctx.data, clusters=8, epochs=ctx.epochs, preserve_sparsity=True)
    return Row("magnitude 75 % + cluster k=8, auto", result.model, time.perf_counter() - start, _digits(ctx),
               "per-tensor int8, TFLM LUT or pruned format per tensor", per_channel=False,
               tflm_compression="auto")


ROWS = [dense_row, magnitude_row, structured_row, structured_scan_row, structured_then_magnitude_row,
        lottery_row, lassonet_row, cluster_lut_row, magnitude_cluster_auto_row]


def _digits(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    return ctx.data.x_train, ctx.data.x_test


def _units(details: dict) -> str:
    return ", ".join(f"{name} {v['units_after']}/{v['units_before']}" for name, v in details["layers"].items())


def measure(row: Row, ctx: Context) -> tuple:
    """The row's figures: kernel weights left, MACs, TFLite bytes, arena, float and TFLM accuracy."""
    from tinyprune.compress import compress_for_tflm
    from tinyprune.graph.reader import read_graph
    from tinyprune.prune.result import count_macs, kernel_weight_counts, model_score
    from tinyprune.quantize import quantize_int8, representative_samples
    from tinyprune.verify.accuracy import int8_inputs, int8_outputs_to_float, score, tflm_outputs
    from tinyprune.verify.arena import find_arena

    data = ctx.data
    x_train, x_test = row.inputs
    tflite = quantize_int8(row.model, representative_samples(x_train, 100, ctx.seed), per_channel=row.per_channel)
    graph = read_graph(tflite)
    x_int8 = int8_inputs(graph, x_test)
    if row.tflm_compression != "none":  # verified byte-identical to the uncompressed model on x_test
        tflite = compress_for_tflm(tflite, row.tflm_compression, x_test)[0]
    arena = find_arena(tflite).aligned16
    outputs = tflm_outputs(tflite, x_int8, arena)
    tflm = score(int8_outputs_to_float(graph, outputs), data.y_test, data.task, "tflm_int8").value
    nonzero, total = kernel_weight_counts(row.model)
    return (row.method, f"{nonzero:,}/{total:,}", f"{count_macs(row.model):,}", f"{len(tflite):,}",
            f"{arena:,}", f"{model_score(row.model, x_test, data.y_test, data.task):.4f}", f"{tflm:.4f}",
            f"{row.seconds:.1f}", row.note)


def tables_row(name: str, max_features: int, seed: int) -> tuple:
    """LassoNet on a scikit-learn table: features kept and test accuracy (the acceptance figures)."""
    from tinyprune.io.data import load_dataset
    from tinyprune.prune.lassonet import lassonet_select

    data = load_dataset(name, seed)
    start = time.perf_counter()
    result = lassonet_select(data, max_features=max_features, seed=seed)
    details = result.details
    return (name, f"{details['input_features_after']}/{details['input_features_before']}",
            f"{details['test_score_on_path']:.4f}", f"{details['test_score_after_refit']:.4f}",
            f"{time.perf_counter() - start:.1f}", ", ".join(details["kept_features"]["names"]))


def print_table(out, header: tuple, rows: list[tuple]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out.write("  ".join(str(c).ljust(w) if i in (0, len(header) - 1) else str(c).rjust(w)
                            for i, (c, w) in enumerate(zip(row, widths))).rstrip() + "\n")
    out.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few epochs (a smoke run, not the figures)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from tinyprune.io.data import digits
    from tinyprune.demo import DEMO_EPOCHS, demo_cnn
    from tinyprune.train import compile_for_task, fit, seed_everything

    with native_output_hidden(hide=True) as (out, _):
        seed_everything(args.seed)
        data = digits(args.seed)
        dense = compile_for_task(demo_cnn(seed=args.seed), data.task)
        fit(dense, data.x_train, data.y_train, 3 if args.quick else DEMO_EPOCHS, 32, "train")
        ctx = Context(data, dense, 3 if args.quick else 30, args.seed)
        rows = [measure(make(ctx), ctx) for make in ROWS]
        out.write("digits demo CNN (arena: exact, found by bisection with the real TFLM interpreter)\n")
        print_table(out, ("method", "kernel weights", "MACs", "TFLite B", "arena B", "float acc", "TFLM acc",
                          "time s", "notes"), rows)
        out.write("LassoNet feature selection (accuracy of the float model on the test split)\n")
        print_table(out, ("data", "features", "acc on path", "acc refit", "time s", "kept"),
                    [tables_row("breast_cancer", 10, args.seed), tables_row("wine", 5, args.seed)])


if __name__ == "__main__":
    main()

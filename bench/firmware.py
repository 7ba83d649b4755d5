"""The standalone C backend against TFLM on the same emulated Cortex-M4 (qemu mps2-an386, nano33ble
flags), per model and per operator kind: instructions per inference and per MAC (qemu's -icount with
SysTick; per kernel call from a profiled build that reads the counter between calls), the static
arena against the planner's lower bound (the largest sum of tensors alive at one step), flash
(arm-none-eabi-size, text + data without the test inputs) and the bytes differing from TFLM.
TFLM's firmware figures are the issue's stated measurements (Arduino library of January 2023,
CMSIS-NN or reference kernels, GCC -O2): each row says whether it is measured or stated.

The digits demo comes dense, 75 % pruned, and 75 % pruned with 16 weight clusters (one scale a tensor,
as `--clusters 16` builds it) under each `--weight-storage`. `--layer-formats` also builds that
clustered model once per sparse format (every layer in it, where it fits) and once with the
convolutions on bitmask (most MACs) and the fully connected layers on bitmask_lut (most bytes), and
prints each weighted layer's stored bytes and instructions: what a per-layer choice trading bytes for
instructions has to go on.

Run with `python bench/firmware.py [--samples N] [--models a,b] [--steps] [--layer-formats]` (needs
gcc-arm-none-eabi, libnewlib-arm-none-eabi, qemu-system-arm)."""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from tinyprune.backends.standalone.formats import FAST_FORMATS, FORMAT_SETS, FORMATS
from tinyprune.console import native_output_hidden


@dataclass(frozen=True)
class StatedTflm:
    """TFLM as the Arduino library ships it, measured outside tinyprune on the emulated M4 (issues 9, 19)."""

    kernels: str
    instructions: int
    flash: int | None = None
    arena: int | None = None
    per_mac_by_kind: dict[str, float] = field(default_factory=dict)


DIGITS_TFLM = (StatedTflm("CMSIS-NN", 302_480, 74_344, 2_952),
               StatedTflm("reference", 1_097_960, 63_484, 2_820))
DS_CNN_TFLM = (StatedTflm("CMSIS-NN", 7_947_200, None, 23_940, {"depthwise_conv2d": 9.1}),
               StatedTflm("reference", 42_615_800))


@dataclass
class Case:
    name: str
    model_bytes: bytes
    inputs: np.ndarray  # int8
    stated: tuple[StatedTflm, ...] = ()
    formats: tuple[str, ...] = FAST_FORMATS  # the weight storage forms the build may use (--weight-storage)
    per_kernel: dict[str, tuple[str, ...]] | None = None  # forced formats per weighted kernel (codegen.lower)


CLUSTERED_DIGITS = "digits CNN, 75 % + 16 clusters"
MODEL_WIDTH = 42  # the table column a model's name takes


def digits_cases(samples: int, seed: int) -> list[Case]:
    from tinyprune.io.data import digits
    from tinyprune.demo import demo_cnn
    from tinyprune.graph.reader import read_graph
    from tinyprune.prune.cluster import cluster
    from tinyprune.prune.magnitude import magnitude_prune
    from tinyprune.quantize import quantize_int8, representative_samples
    from tinyprune.train import compile_for_task
    from tinyprune.verify.accuracy import int8_inputs

    data = digits(seed=seed)
    model = compile_for_task(demo_cnn(seed=seed), "classification")
    model.fit(data.x_train, data.y_train, epochs=8, batch_size=32, verbose=0)
    calibration = representative_samples(data.x_train, 100, seed=seed)
    dense = quantize_int8(model, calibration, per_channel_dense=False)
    pruned_model = magnitude_prune(model, data, 0.75, epochs=2).model
    pruned = quantize_int8(pruned_model, calibration, per_channel_dense=False)
    clustered = quantize_int8(cluster(pruned_model, data, 16, epochs=2, preserve_sparsity=True).model, calibration,
                              per_channel_dense=False, per_channel=False)
    builds = [("digits CNN, dense", dense, FAST_FORMATS), ("digits CNN, 75 % pruned", pruned, FAST_FORMATS)] + [
        (f"{CLUSTERED_DIGITS}, {storage}", clustered, formats) for storage, formats in FORMAT_SETS.items()]
    return [Case(name, model_bytes, int8_inputs(read_graph(model_bytes), data.x_test[:samples]), DIGITS_TFLM, formats)
            for name, model_bytes, formats in builds]


def zoo_case(name: str, samples: int, stated: tuple[StatedTflm, ...], seed: int) -> Case:
    from tinyprune.graph.reader import read_graph
    from tinyprune.zoo import zoo_int8

    model_bytes = zoo_int8(name, seed=seed)
    shape = read_graph(model_bytes).input_tensors()[0].shape
    x = np.random.default_rng(seed).integers(-128, 128, size=(samples,) + tuple(shape[1:])).astype(np.int8)
    return Case(name, model_bytes, x, stated)


ZOO_CASES = {"ds_cnn_kws": DS_CNN_TFLM, "resnet8": (), "mobilenet_v1_vww": (), "fc_autoencoder": ()}


def measure(case: Case, work_dir: Path, weigh_code: bool = True) -> dict:
    from tinyprune.boards import load_board
    from tinyprune.backends.standalone import generate_standalone
    from tinyprune.backends.standalone.cortex_m import build_cortex_m, run_qemu
    from tinyprune.graph.reader import read_graph
    from tinyprune.verify.accuracy import tflm_outputs

    board = load_board("nano33ble")
    model = generate_standalone(read_graph(case.model_bytes), work_dir, "bench", case.formats, weigh_code,
                                case.per_kernel)
    firmware = build_cortex_m(model, board, case.inputs)
    run = run_qemu(firmware)
    profile = run_qemu(build_cortex_m(model, board, case.inputs, work_dir / "profiled", profile=True))
    kinds: dict[str, dict] = defaultdict(lambda: {"calls": 0, "macs": 0, "instructions": 0.0})
    for step, instructions in zip(model.steps, profile.step_instructions):
        kinds[step.kind]["calls"] += 1
        kinds[step.kind]["macs"] += step.macs
        kinds[step.kind]["instructions"] += instructions
    reference = tflm_outputs(case.model_bytes, case.inputs, arena_size=1 << 22).reshape(len(case.inputs), -1)
    return {"model": case.name, "macs": model.macs, "flash": firmware.flash_bytes, "arena": model.arena_bytes,
            "arena_bound": model.arena_lower_bound, "instructions": run.instructions_per_inference,
            "stack": run.stack_bytes, "stack_bound": firmware.stack_bound.bytes,
            "kinds": dict(kinds), "differing": int(np.count_nonzero(run.outputs != reference)),
            "samples": len(case.inputs), "stated": case.stated,
            "steps": [(step.name, step.kind, step.macs, instructions)
                      for step, instructions in zip(model.steps, profile.step_instructions)],
            "layers": [(layer.layer, layer.format, layer.stored_bytes, layer.macs, instructions) for layer, instructions
                       in zip(model.layers, [i for step, i in zip(model.steps, profile.step_instructions) if step.macs])]}


# a per-layer mix: the convolutions (most of the MACs) on the fastest walker, the fully connected
# layers (few MACs a stored byte) on 4-bit indices
MIXED = {"tp_conv2d": ("dense", "bitmask"), "tp_fully_connected": ("dense", "bitmask_lut")}


def measure_layer_formats(case: Case, work_dir: Path) -> list[dict]:
    """`case` built once per sparse format, every layer stored in it (dense where it cannot be), every
    format's code compiled whatever it saves, then once as MIXED: per layer, bytes against instructions."""
    rows = [measure(Case(f"16 clusters, {name} where it fits", case.model_bytes, case.inputs, (), (name,)),
                    work_dir / name, weigh_code=False)
            for name in FORMATS[1:]]
    return rows + [measure(Case("16 clusters, conv bitmask, FC bitmask_lut", case.model_bytes, case.inputs, (),
                                FORMATS, MIXED), work_dir / "mixed")]


def print_layer_formats(rows: list[dict]) -> None:
    print("\nPer weighted layer, one build per format (qemu, profiled build; a layer's instructions move by a few %"
          "\nwith the other layers' formats, as the compiled paths change inlining)\n")
    header = f"{'build':<{MODEL_WIDTH}}{'layer':<12}{'format':<14}{'MACs':>8}{'bytes':>8}{'instructions':>14}"
    print(header)
    print("-" * len(header))
    for r in rows:
        for layer, name, stored, macs, instructions in r["layers"]:
            print(f"{r['model']:<{MODEL_WIDTH}}{layer:<12}{name:<14}{macs:>8,}{stored:>8,}{instructions:>14,.0f}")
        print(f"{r['model']:<{MODEL_WIDTH}}{'firmware':<12}{'':<14}{'':>8}{r['flash']:>8,}{r['instructions']:>14,.0f}"
              f"   differ {r['differing']} of {r['samples']}")


def _cell(value, spec: str = ",") -> str:
    return "-" if value is None else format(value, spec)


def print_steps(rows: list[dict]) -> None:
    print("\nPer kernel call (the same profiled build), in the order model_invoke() makes them\n")
    header = f"{'model':<{MODEL_WIDTH}}{'step':<36}{'kind':<20}{'MACs':>11}{'instructions':>14}"
    print(header)
    print("-" * len(header))
    for r in rows:
        for name, kind, macs, instructions in r["steps"]:
            print(f"{r['model']:<{MODEL_WIDTH}}{name:<36}{kind:<20}{macs:>11,}{instructions:>14,.0f}")


def print_tables(rows: list[dict]) -> None:
    print("\nPer model: standalone C measured on qemu mps2-an386 (Cortex-M4, -icount shift=0, GCC 12 -O2) beside"
          "\nTFLM as stated in the issues (same machine, the Arduino library of January 2023). flash: text + data"
          "\nwithout the test inputs; arena bound: the largest sum of tensors alive at one step; stack: the firmware's"
          "\nhigh-water mark (painted at reset, startup and main included), GCC's static bound (-fcallgraph-info).\n")
    header = (f"{'model':<{MODEL_WIDTH}}{'source':<22}{'MACs':>11}{'instructions':>14}{'/MAC':>7}{'arena':>8}"
              f"{'bound':>8}{'flash':>9}{'stack':>7}{'bound':>7}{'differ':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['model']:<{MODEL_WIDTH}}{'measured, standalone':<22}{r['macs']:>11,}{r['instructions']:>14,.0f}"
              f"{r['instructions'] / r['macs']:>7.2f}{r['arena']:>8,}{r['arena_bound']:>8,}{r['flash']:>9,}"
              f"{r['stack']:>7,}{r['stack_bound']:>7,}{r['differing']:>5} of {r['samples']}")
        for stated in r["stated"]:
            print(f"{'':<{MODEL_WIDTH}}{'stated, TFLM ' + stated.kernels:<22}{'':>11}{stated.instructions:>14,}"
                  f"{stated.instructions / r['macs']:>7.2f}{_cell(stated.arena):>8}{'':>8}{_cell(stated.flash):>9}")
    print("\nPer operator kind (profiled build: the counter read between kernel calls, its own cost taken off)\n")
    header = f"{'model':<{MODEL_WIDTH}}{'kind':<20}{'source':<22}{'calls':>6}{'MACs':>11}{'instructions':>14}{'/MAC':>7}{'share':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        total = sum(kind["instructions"] for kind in r["kinds"].values())
        for name, kind in sorted(r["kinds"].items(), key=lambda item: -item[1]["instructions"]):
            per_mac = _cell(kind["instructions"] / kind["macs"] if kind["macs"] else None, ".2f")
            print(f"{r['model']:<{MODEL_WIDTH}}{name:<20}{'measured, standalone':<22}{kind['calls']:>6}{kind['macs']:>11,}"
                  f"{kind['instructions']:>14,.0f}{per_mac:>7}{kind['instructions'] / total:>7.0%}")
            for stated in r["stated"]:
                if name in stated.per_mac_by_kind:
                    print(f"{r['model']:<{MODEL_WIDTH}}{name:<20}{'stated, TFLM ' + stated.kernels:<22}{'':>6}{'':>11}{'':>14}"
                          f"{stated.per_mac_by_kind[name]:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20, help="test inputs linked into each firmware")
    parser.add_argument("--models", default="digits," + ",".join(ZOO_CASES),
                        help="comma-separated: digits (dense and 75 %% pruned) and zoo names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", action="store_true", help="also print every kernel call's instructions")
    parser.add_argument("--layer-formats", action="store_true",
                        help="also build the clustered digits demo once per sparse format: bytes and instructions a layer")
    args = parser.parse_args()
    wanted = args.models.split(",")
    with native_output_hidden(True):
        cases = digits_cases(args.samples, args.seed) if "digits" in wanted else []
        cases += [zoo_case(name, min(args.samples, 5), ZOO_CASES.get(name, ()), args.seed)
                  for name in wanted if name != "digits"]
        with tempfile.TemporaryDirectory() as work:
            rows = [measure(case, Path(work) / f"case_{i}") for i, case in enumerate(cases)]
            layer_rows = [row for case in cases if args.layer_formats and case.name.startswith(CLUSTERED_DIGITS)
                          and case.formats == FORMATS for row in measure_layer_formats(case, Path(work) / "formats")]
    print_tables(rows)
    if layer_rows:
        print_layer_formats(layer_rows)
    if args.steps:
        print_steps(rows)


if __name__ == "__main__":
    main()

"""The standalone C backend against TFLM on the same emulated Cortex-M4 (qemu mps2-an386, nano33ble
flags): firmware size from arm-none-eabi-size, the static arena against TFLM's, instructions per
inference and per MAC counted with qemu's -icount and SysTick. TFLM's firmware figures are the issue's
stated measurements (GCC 12 -O2, hard float; pruning changes none of them), printed beside ours.

Run with `python bench/firmware.py [--samples N]` (needs gcc-arm-none-eabi, libnewlib-arm-none-eabi,
qemu-system-arm)."""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from tinyprune.console import native_output_hidden


@dataclass(frozen=True)
class StatedTflm:
    """TFLM as the Arduino library ships it, measured externally on the emulated M4 (issue 9)."""

    text_cmsis: int | None
    text_reference: int | None
    arena_cmsis: int | None
    arena_reference: int | None
    instructions_cmsis: int
    instructions_reference: int


DIGITS_TFLM = StatedTflm(74_344, 63_484, 2_952, 2_820, 302_480, 1_097_960)
DS_CNN_TFLM = StatedTflm(None, None, None, None, 7_947_200, 42_615_800)


@dataclass
class Case:
    name: str
    model_bytes: bytes
    inputs: np.ndarray  # int8
    stated: StatedTflm | None


def digits_cases(samples: int, seed: int) -> list[Case]:
    from tinyprune.io.data import digits
    from tinyprune.demo import demo_cnn
    from tinyprune.graph.reader import read_graph
    from tinyprune.prune.magnitude import magnitude_prune
    from tinyprune.quantize import quantize_int8, representative_samples
    from tinyprune.train import compile_for_task
    from tinyprune.verify.accuracy import int8_inputs

    data = digits(seed=seed)
    model = compile_for_task(demo_cnn(seed=seed), "classification")
    model.fit(data.x_train, data.y_train, epochs=8, batch_size=32, verbose=0)
    calibration = representative_samples(data.x_train, 100, seed=seed)
    dense = quantize_int8(model, calibration, per_channel_dense=False)
    pruned = quantize_int8(magnitude_prune(model, data, 0.75, epochs=2).model, calibration,
                           per_channel_dense=False)
    x = int8_inputs(read_graph(dense), data.x_test[:samples])
    return [Case("digits CNN, dense", dense, x, DIGITS_TFLM),
            Case("digits CNN, 75 % pruned", pruned, int8_inputs(read_graph(pruned), data.x_test[:samples]),
                 DIGITS_TFLM)]


def zoo_case(name: str, samples: int, stated: StatedTflm | None, seed: int) -> Case:
    from tinyprune.graph.reader import read_graph
    from tinyprune.zoo import zoo_int8

    model_bytes = zoo_int8(name, seed=seed)
    shape = read_graph(model_bytes).input_tensors()[0].shape
    x = np.random.default_rng(seed).integers(-128, 128, size=(samples,) + tuple(shape[1:])).astype(np.int8)
    return Case(f"{name}, dense", model_bytes, x, stated)


def measure(case: Case, work_dir: Path) -> dict:
    from tinyprune.boards import load_board
    from tinyprune.export.standalone import generate_standalone
    from tinyprune.export.standalone.cortex_m import build_cortex_m, run_qemu
    from tinyprune.graph.reader import read_graph
    from tinyprune.verify.accuracy import tflm_outputs
    from tinyprune.verify.arena import find_arena

    model = generate_standalone(read_graph(case.model_bytes), work_dir, "bench")
    firmware = build_cortex_m(model, load_board("nano33ble"), case.inputs)
    run = run_qemu(firmware)
    reference = tflm_outputs(case.model_bytes, case.inputs, arena_size=1 << 22).reshape(len(case.inputs), -1)
    return {
        "model": case.name, "macs": model.macs, "tflite": len(case.model_bytes),
        "dense": model.weight_bytes_dense, "stored": model.weight_bytes_stored,
        "text": firmware.text - firmware.test_vector_bytes, "data": firmware.data, "bss": firmware.bss,
        "arena": model.arena_bytes, "tflm_arena": find_arena(case.model_bytes).aligned16,
        "instructions": run.instructions_per_inference,
        "differing": int(np.count_nonzero(run.outputs != reference)), "stated": case.stated,
    }


def print_table(rows: list[dict]) -> None:
    print("\nStandalone C on qemu mps2-an386 (Cortex-M4, nano33ble flags) vs TFLM. text excludes the test inputs;"
          "\nTFLM arena: the tflite-micro host interpreter's smallest arena (16-byte steps); bytes differing "
          "from TFLM: over all samples.\n")
    header = (f"{'model':<26}{'MACs':>10}{'.tflite B':>10}{'weights':>9}{'stored':>8}{'text':>8}{'data':>6}"
              f"{'bss':>7}{'arena':>7}{'TFLM arena':>11}{'instr/inf':>12}{'/MAC':>6}{'differ':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['model']:<26}{r['macs']:>10,}{r['tflite']:>10,}{r['dense']:>9,}{r['stored']:>8,}"
              f"{r['text']:>8,}{r['data']:>6,}{r['bss']:>7,}{r['arena']:>7,}{r['tflm_arena']:>11,}"
              f"{r['instructions']:>12,.0f}{r['instructions'] / r['macs']:>6.2f}{r['differing']:>7}")
    print("\nTFLM as stated in issue 9 (same emulated M4, GCC 12 -O2; pruning changes none of these):\n")
    print(f"{'model':<26}{'kernels':<11}{'text':>9}{'arena':>7}{'instr/inf':>12}{'/MAC':>6}{'ours / TFLM':>13}")
    for r in rows:
        stated = r["stated"]
        if stated is None:
            continue
        for kernels, text, arena, instructions in (
                ("CMSIS-NN", stated.text_cmsis, stated.arena_cmsis, stated.instructions_cmsis),
                ("reference", stated.text_reference, stated.arena_reference, stated.instructions_reference)):
            text_cell = f"{text:,}" if text else "-"
            arena_cell = f"{arena:,}" if arena else "-"
            print(f"{r['model']:<26}{kernels:<11}{text_cell:>9}{arena_cell:>7}{instructions:>12,}"
                  f"{instructions / r['macs']:>6.1f}{r['instructions'] / instructions:>12.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50, help="test inputs linked into each firmware")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with native_output_hidden(True):
        cases = digits_cases(args.samples, args.seed)
        cases.append(zoo_case("ds_cnn_kws", min(args.samples, 5), DS_CNN_TFLM, args.seed))
        cases += [zoo_case(name, args.samples, None, args.seed)
                  for name in ("mlp", "conv1d_sensor", "residual_block", "avgpool_mean")]
        with tempfile.TemporaryDirectory() as work:
            rows = [measure(case, Path(work) / f"case_{i}") for i, case in enumerate(cases)]
    print_table(rows)


if __name__ == "__main__":
    main()

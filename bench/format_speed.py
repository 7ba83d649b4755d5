"""The instructions each weighted kernel takes per format, against the figures formats.KERNEL_INSTRUCTIONS
states and codegen weighs when `--weight-storage fast` picks a layer's format (a sparse one only where it
takes fewer instructions than dense). The zoo's DS-CNN (int8, seeded) with every weighted layer's smallest
weights zeroed to each sparsity, built once with every layer dense and once per sparse format, each layer
in it (the table formats on 16 clustered nonzeros a tensor); per kernel the instructions of its calls (qemu mps2-an386, -icount, profiled build) are solved for
instructions = per_mac * MACs + per_nonzero * nonzero MACs (dense: per MAC only) from the two sparsities.
Run with `python bench/format_speed.py [--formats bitmask,lut]` (needs TensorFlow, gcc-arm-none-eabi,
qemu-system-arm; ~15 s)."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from tinyprune.backends.standalone.formats import KERNEL_INSTRUCTIONS  # noqa: E402
from tinyprune.console import native_output_hidden  # noqa: E402

KERNEL_OF_OP = {"CONV_2D": "tp_conv2d", "DEPTHWISE_CONV_2D": "tp_depthwise_conv2d",
                "FULLY_CONNECTED": "tp_fully_connected"}
SPARSITIES = (0.75, 0.9)
CLUSTERS = 16  # the table formats are measured on this many distinct nonzeros a tensor: 4-bit indices, as --clusters 16


def clustered(values: np.ndarray, clusters: int = CLUSTERS) -> np.ndarray:
    """`values` with its nonzeros replaced, in equal-count bins of their sorted order, by each bin's middle
    element: at most `clusters` distinct nonzeros, zeros kept, as clustering leaves a pruned tensor."""
    values = values.copy()
    at = np.flatnonzero(values)
    order = at[np.argsort(values.flat[at], kind="stable")]
    for members in np.array_split(order, clusters):
        if members.size:
            values.flat[members] = values.flat[members[members.size // 2]]
    return values


def pruned(graph, sparsity: float, cluster: bool = False):
    """`graph` with each weighted layer's smallest int8 weights set to zero (`sparsity` of each tensor),
    and with `cluster` its nonzeros clustered."""
    tensors = list(graph.tensors)
    for op in graph.operators:
        if op.opcode in KERNEL_OF_OP:
            weights = tensors[op.inputs[1]]
            values = weights.numpy().copy()
            order = np.argsort(np.abs(values.astype(np.int16)), axis=None, kind="stable")
            values.flat[order[:round(sparsity * values.size)]] = 0
            if cluster:
                values = clustered(values)
            tensors[op.inputs[1]] = dataclasses.replace(weights, data=values.tobytes())
    return dataclasses.replace(graph, tensors=tensors)


def kernel_instructions(graph, form: str, work_dir: Path) -> dict[str, tuple[int, int, float]]:
    """Per weighted kernel: (MACs, MACs on nonzero weights, instructions) of its layers, every layer in `form`
    where the kernel has a path for it (a kernel with none is left out)."""
    from tinyprune.backends.standalone import generate_standalone
    from tinyprune.backends.standalone.cortex_m import build_cortex_m, run_qemu
    from tinyprune.boards import load_board

    per_kernel = {kernel: ("dense", form) for kernel in KERNEL_OF_OP.values()}
    model = generate_standalone(graph, work_dir, "bench", ("dense", form), weigh_code=False, per_kernel=per_kernel)
    inputs = np.zeros((1,) + tuple(graph.input_tensors()[0].shape[1:]), dtype=np.int8)
    profile = run_qemu(build_cortex_m(model, load_board("nano33ble"), inputs, work_dir / "profiled", profile=True))
    totals: dict[str, list] = defaultdict(lambda: [0, 0, 0.0])
    weighted = [i for step, i in zip(model.steps, profile.step_instructions) if step.macs]
    for layer, instructions in zip(model.layers, weighted):
        if layer.op in KERNEL_OF_OP and layer.format == form:
            total = totals[KERNEL_OF_OP[layer.op]]
            total[0] += layer.macs
            total[1] += layer.macs - (layer.macs_skipped if form != "dense" else 0)
            total[2] += instructions
    return {kernel: tuple(total) for kernel, total in totals.items()}


def stated(kernel: str, form: str) -> str:
    figures = KERNEL_INSTRUCTIONS.get(kernel, {}).get(form)
    return "not weighed" if figures is None else f"{figures[0]:.2f} + {figures[1]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", default="bitmask", help="comma-separated sparse formats to measure")
    args = parser.parse_args()
    from tinyprune.graph.reader import read_graph
    from tinyprune.zoo import zoo_int8

    with native_output_hidden(True):
        graph = read_graph(zoo_int8("ds_cnn_kws"))
    print(f"{'kernel':<22}{'format':<10}{'instr/MAC':>10}{'instr/nonzero':>14}   stated (formats.KERNEL_INSTRUCTIONS)")
    with tempfile.TemporaryDirectory() as work:
        dense = kernel_instructions(pruned(graph, SPARSITIES[0]), "dense", Path(work) / "dense")
        for kernel, (macs, _, instructions) in dense.items():
            print(f"{kernel:<22}{'dense':<10}{instructions / macs:>10.2f}{'':>14}   {stated(kernel, 'dense')}")
        for form in args.formats.split(","):
            runs = [kernel_instructions(pruned(graph, s, "lut" in form), form, Path(work) / f"{form}_{s}")
                    for s in SPARSITIES]
            for kernel in runs[0]:
                (macs, nonzero_a, a), (_, nonzero_b, b) = runs[0][kernel], runs[1][kernel]
                per_nonzero = (a - b) / (nonzero_a - nonzero_b)
                per_mac = (a - per_nonzero * nonzero_a) / macs
                print(f"{kernel:<22}{form:<10}{per_mac:>10.2f}{per_nonzero:>14.2f}   {stated(kernel, form)}")


if __name__ == "__main__":
    main()

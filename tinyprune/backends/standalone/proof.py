"""The proof a standalone build ships with: the generated C, compiled for the host, gives TFLM's
output bytes on the whole test set; the exported bare-metal project, built for the board's core and
run under qemu, gives them again, with its real flash and RAM (arm-none-eabi-size) and instructions
per inference. Both build in temporary folders: the output folder gets sources, not objects."""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyprune.backends.standalone.codegen import Lowered, StandaloneModel
from tinyprune.backends.standalone.cortex_m import build_project, run_qemu
from tinyprune.backends.standalone.host import (HOST_COMPILER, build_host_library, build_host_runner, run_host,
                                               run_host_runner)
from tinyprune.backends.standalone.ops import STANDALONE_OPS
from tinyprune.errors import TinypruneError
from tinyprune.graph.runtimes import Runtime
from tinyprune.toolchains.gcc import GCC, INSTALL_HINT
from tinyprune.verify.fit import SKETCH_BUFFERS, BoardFit, stack_item

STANDALONE_RUNTIME = Runtime(
    name="standalone",
    title="tinyprune standalone C (no interpreter)",
    tflm_revision="TFLM reference kernels' integer arithmetic, compiled from the graph",
    ops={op: "" for op in STANDALONE_OPS},
    per_channel_fully_connected=True,
)


@dataclass
class StandaloneProof:
    model: dict  # StandaloneModel.summary(): formats, bytes saved, MACs skipped per layer
    host_samples: int
    host_differing_bytes: int  # against TFLM: must be 0
    firmware: dict | None = None  # arm-none-eabi-size figures, None when the core has no qemu machine
    qemu: dict = field(default_factory=dict)  # samples, differing bytes, instructions per inference
    not_proven: list[str] = field(default_factory=list)  # what could not run here, and how to make it run


def prove_standalone(model: StandaloneModel, board, x_int8: np.ndarray, tflm: np.ndarray,
                     cortex_m_project: Path | None, project_samples: int = 0,
                     sanitize: bool = False) -> StandaloneProof:
    """Run the model's C on the host for every input of `x_int8`, and the written bare-metal project (its
    `project_samples` inputs are the first of `x_int8`) under qemu, against TFLM's outputs `tflm`. With
    `sanitize` the host build runs under AddressSanitizer and UBSan, stopping at the first report. What
    cannot run here (no host compiler, no cross toolchain, no qemu machine for the core) is listed in
    not_proven with how to make it run, never claimed."""
    proof = StandaloneProof(model.summary(), 0, 0)
    missing_cross = [tool for tool in (GCC, "arm-none-eabi-size", "make") if not shutil.which(tool)]
    runs = shutil.which("qemu-system-arm") is not None
    if cortex_m_project is None:
        proof.not_proven.append(f"{board.core}: no qemu machine models it, so flash, RAM and instructions per "
                                "inference are the model's constants and arena, not a measured firmware")
    elif missing_cross:
        proof.not_proven.append(f"the firmware under qemu ({board.qemu_machine}): {', '.join(missing_cross)} not "
                                f"installed, so flash, RAM and instructions are not measured; {INSTALL_HINT}")
        cortex_m_project = None
    elif not runs:
        proof.not_proven.append(f"the firmware under qemu ({board.qemu_machine}): qemu-system-arm not installed, so "
                                "it is built (flash, RAM, the stack's static bound) but not run (outputs, "
                                f"instructions, the stack's high-water mark); {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="tinyprune-standalone-") as folder:
        if not shutil.which(HOST_COMPILER):
            proof.not_proven.append(f"the C against TFLM on this host's {len(x_int8)} test inputs: no host C "
                                    f"compiler ({HOST_COMPILER}); install it (Debian: apt-get install gcc)")
        else:
            if sanitize:
                runner = build_host_runner([model], Path(folder) / "host", sanitize=True)
                host = run_host_runner(runner, model.name, x_int8).reshape(tflm.shape)
            else:
                host = run_host(build_host_library(model, Path(folder) / "host"), x_int8).reshape(tflm.shape)
            proof.host_samples, proof.host_differing_bytes = len(x_int8), int(np.count_nonzero(host != tflm))
        if cortex_m_project is not None:
            project = Path(shutil.copytree(cortex_m_project, Path(folder) / "cortex_m"))
            firmware = build_project(project, model, board, project_samples)
            proof.firmware = firmware.summary()
            if runs:
                run = run_qemu(firmware)
                expected = tflm[:len(run.outputs)].reshape(len(run.outputs), -1)
                proof.qemu = {**run.summary(model.macs), "machine": board.qemu_machine,
                              "differing_bytes": int(np.count_nonzero(run.outputs != expected))}
    if proof.host_differing_bytes or proof.qemu.get("differing_bytes"):
        raise TinypruneError(
            f"the generated C differs from TFLM on {proof.host_differing_bytes} output bytes on the host and "
            f"{proof.qemu.get('differing_bytes', 0)} under qemu",
            "use --backend tflm, and please report this model: the standalone kernels must match TFLM exactly",
        )
    return proof


def standalone_fit(model: Lowered | StandaloneModel, proof: StandaloneProof | None, board, ram_headroom: int,
                   sketch_buffers: int = 0):
    """Flash and RAM of the real firmware where it was built, else the model's constants and arena (known
    once the graph is lowered: nothing need be written to estimate them); and the Arduino sketch's own
    buffers, which the bare-metal firmware measured has not."""
    qemu = proof.qemu if proof is not None else {}
    built = (proof.firmware if proof is not None else None) or {}
    stack, stack_basis = stack_item(qemu.get("stack_bytes", 0), board.core,
                                    f"the bare-metal firmware's call stack over {qemu.get('samples')} inferences on "
                                    f"qemu {qemu.get('machine')}, startup and main included ({built.get('stack_bound')})",
                                    built.get("stack_bound_bytes", 0), f"the bare-metal firmware's {built.get('stack_bound')}")
    if proof is not None and proof.firmware is not None:
        flash = {"model constants": model.constant_bytes,
                 "code and other data": proof.firmware["flash_bytes"] - model.constant_bytes}
        ram = {"arena": model.arena_bytes, "other data and bss": proof.firmware["ram_bytes"] - model.arena_bytes}
        basis = (f"measured: a bare-metal build for {board.core} with arm-none-eabi-gcc (text + data, test inputs "
                 "excluded; RAM data + bss)")
    else:
        flash = {"model constants": model.constant_bytes}
        ram = {"arena": model.arena_bytes}
        basis = f"the model's constants and arena only: no firmware measured for {board.core}, code size not included"
    sketch = {SKETCH_BUFFERS: sketch_buffers} if sketch_buffers else {}
    return BoardFit(board.name, flash, board.flash_bytes, {**ram, **stack, **sketch, "headroom": ram_headroom},
                    board.ram_bytes, flash_basis=basis, ram_basis=stack_basis)

"""The standalone C backend (`--backend standalone`) behind the one backend interface: the int8 graph
compiled to C99 (codegen.py), an Arduino sketch around it and, for a Cortex-M with a qemu machine, a
bare-metal project; proven on the host and under qemu against TFLM (proof.py)."""
from __future__ import annotations

from pathlib import Path

from tinyprune.backends.base import Backend, Generated, Job, Memory, Target
from tinyprune.backends.standalone.codegen import check_supported, lower, write_standalone
from tinyprune.backends.standalone.cortex_m import write_cortex_m_project
from tinyprune.toolchains.qemu import has_machine
from tinyprune.backends.standalone.proof import (STANDALONE_RUNTIME, prove_standalone,
                                                 standalone_fit)
from tinyprune.backends.standalone.sketch import write_arduino_sketch
from tinyprune.backends.tflm.memory import tflm_board_arena


class StandaloneBackend(Backend):
    name = "standalone"
    title = "standalone C (generated kernels, no interpreter)"

    def runtime(self, config):
        return STANDALONE_RUNTIME

    def check(self, graph) -> None:
        check_supported(graph)  # the kernels' own limits (broadcasting, grouped convolutions, ...)

    def memory(self, graph, target: Target, host_search, config) -> Memory:
        """The C's static arena plan; TFLM's arena for the Arduino library alongside, for comparison."""
        board_arena, board_bytes = tflm_board_arena(graph, "arduino", host_search)
        plan = lower(graph)
        return Memory(board_arena, board_bytes, plan.arena_bytes, plan=plan)

    def generate(self, job: Job, target: Target, memory: Memory, folder: Path) -> Generated:
        model = write_standalone(memory.plan, folder / "standalone", job.name)
        sketch = write_arduino_sketch(model, folder / "arduino" / job.name, job.test_inputs[0],
                                      job.expected_outputs[0]).parent
        folders = {"standalone": folder / "standalone", "arduino": sketch}
        if has_machine(target.board):
            folders["cortex_m"] = write_cortex_m_project(model, target.board, folder / "cortex_m", job.test_inputs)
        return Generated(model=model, folders=folders, test_vectors=len(job.test_inputs))

    def prove(self, generated: Generated, target: Target, x_int8, tflm, config):
        return prove_standalone(generated.model, target.board, x_int8, tflm, generated.folders.get("cortex_m"),
                                generated.test_vectors)

    def fit(self, graph, target: Target, memory: Memory, generated: Generated, proof, config):
        return standalone_fit(generated.model, proof, target.board, config.ram_headroom)

    def describe_proof(self, proof) -> str:
        qemu = proof.qemu
        return (f"standalone C = TFLM on {proof.host_samples} inputs (host)"
                + (f" and {qemu['samples']} ({qemu['machine']}, {qemu['instructions_per_inference']:,} "
                   "instructions each)" if qemu else ""))

    def report_figures(self, proof) -> dict:
        from dataclasses import asdict

        return asdict(proof)


BACKEND = StandaloneBackend()

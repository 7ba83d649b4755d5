"""The standalone C backend (`--backend standalone`) behind the one backend interface: the int8 graph
compiled to C99 (codegen.py), an Arduino sketch around it and, for a Cortex-M with a qemu machine, a
bare-metal project; proven on the host and under qemu against TFLM (proof.py)."""
from __future__ import annotations

from pathlib import Path

from tinyprune.backends.base import Backend, Build, Generated, Job, Memory
from tinyprune.backends.standalone.formats import FORMAT_SETS
from tinyprune.backends.standalone.codegen import check_supported, lower, write_standalone
from tinyprune.backends.standalone.cortex_m import write_cortex_m_project
from tinyprune.errors import TinypruneError
from tinyprune.verify.fit import SHRINK_SKETCH_BUFFERS, SKETCH_BUFFERS
from tinyprune.toolchains.qemu import has_machine
from tinyprune.backends.standalone.proof import (STANDALONE_RUNTIME, prove_standalone,
                                                 standalone_fit)
from tinyprune.backends.standalone.sketch import sketch_buffer_bytes, write_arduino_sketch
from tinyprune.backends.tflm.memory import tflm_board_arena


class StandaloneBackend(Backend):
    name = "standalone"
    title = "standalone C (generated kernels, no interpreter)"

    def runtime(self, config):
        return STANDALONE_RUNTIME

    def runtimes(self) -> list:
        return [STANDALONE_RUNTIME]

    def check_target(self, board, runtime, config) -> None:
        """Any core with a C99 compiler; but TFLM's compressed tensors are the interpreter's format."""
        if config.tflm_compression != "none":
            raise TinypruneError("--tflm-compression applies to the TFLM interpreter, not the standalone backend",
                                 "drop --tflm-compression: the standalone C stores sparse and clustered weights "
                                 "compressed by itself")

    def check(self, graph) -> None:
        check_supported(graph)  # the kernels' own limits (broadcasting, grouped convolutions, ...)

    def memory(self, graph, build: "Build", host_search, config) -> Memory:
        """The C's static arena plan; TFLM's arena for the Arduino library alongside, for comparison."""
        board_arena, board_bytes = tflm_board_arena(graph, "arduino", host_search)
        plan = lower(graph, FORMAT_SETS[config.weight_storage])
        return Memory(board_arena, board_bytes, plan.arena_bytes, plan=plan)

    def shrinks(self, config) -> dict[str, str]:
        """What makes each part of the standalone firmware smaller: its weights are stored sparse or
        clustered, so sparsity pays here."""
        return {
            "model constants": "a higher --sparsity (zero weights are not stored), --clusters 16 (4-bit indices), "
                               "or --method structured",
            "arena": "--method structured (smaller activations)",
            SKETCH_BUFFERS: SHRINK_SKETCH_BUFFERS,
            "headroom": f"a smaller --ram-headroom (now {config.ram_headroom:,} B), if your sketch needs less",
        }

    def generate(self, job: Job, build: "Build", memory: Memory, folder: Path) -> Generated:
        model = write_standalone(memory.plan, folder / "standalone", job.name)
        sketch = write_arduino_sketch(model, folder / "arduino" / job.name, job.test_inputs[0],
                                      job.expected_outputs[0]).parent
        folders = {"standalone": folder / "standalone", "arduino": sketch}
        if has_machine(build.board):
            folders["cortex_m"] = write_cortex_m_project(model, build.board, folder / "cortex_m", job.test_inputs)
        return Generated(model=model, folders=folders, test_vectors=len(job.test_inputs))

    def prove(self, generated: Generated, build: "Build", x_int8, tflm, config):
        return prove_standalone(generated.model, build.board, x_int8, tflm, generated.folders.get("cortex_m"),
                                generated.test_vectors)

    def fit(self, graph, build: "Build", memory: Memory, generated: Generated, proof, config):
        sketch = sketch_buffer_bytes(graph.input_tensors()[0].num_elements, graph.output_tensors()[0].num_elements)
        return standalone_fit(memory.plan, proof, build.board, config.ram_headroom, sketch)

    def stored_model(self, build: "Build") -> dict:
        model = build.generated.model
        return {"model_bytes": model.constant_bytes, "weight_bytes": model.weight_bytes_stored,
                "form": "const C arrays: weights (each layer dense, sparse or clustered, whichever is smallest), "
                        "biases, multipliers and tables"}

    def describe_proof(self, proof) -> str:
        qemu = proof.qemu
        line = " and ".join(([f"{proof.host_samples} inputs (host)"] if proof.host_samples else [])
                            + ([f"{qemu['samples']} ({qemu['machine']}, {qemu['instructions_per_inference']:,} "
                                "instructions each)"] if qemu else []))
        line = f"C = TFLM on {line}" if line else "C NOT run against TFLM"
        return line + "".join(f"; NOT proven: {what}" for what in proof.not_proven)

    def figures(self, proof) -> dict:
        ran = proof.host_samples or proof.qemu
        return {"instructions_per_inference": proof.qemu.get("instructions_per_inference"),
                "differing_bytes": proof.host_differing_bytes + proof.qemu.get("differing_bytes", 0) if ran else None,
                "not_proven": list(proof.not_proven)}

    def report_figures(self, proof) -> dict:
        from dataclasses import asdict

        return asdict(proof)


BACKEND = StandaloneBackend()

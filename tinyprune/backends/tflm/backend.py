"""The TFLM backend (`--backend tflm`): the flatbuffer as a C array run by the TFLM interpreter, with an
Arduino sketch and a PlatformIO project when the runtime is an Arduino library."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tinyprune.backends.base import Backend, Build, Generated, Job, Memory
from tinyprune.backends.tflm.arduino import check_architecture, sketch_buffer_bytes, write_arduino_sketch
from tinyprune.backends.tflm.c_array import write_model_data
from tinyprune.backends.tflm.memory import tflm_board_arena
from tinyprune.backends.tflm.platformio import write_platformio_project
from tinyprune.errors import TinypruneError
from tinyprune.verify.fit import SHRINK_SKETCH_BUFFERS, SKETCH_BUFFERS


MEASURED_CORE = "cortex-m4"  # the core the TFLM code size estimate was measured on (memory/flash.py)


class TflmBackend(Backend):
    name = "tflm"
    title = "TFLM interpreter"

    def runtime(self, config):
        from tinyprune.graph.runtimes import get_runtime

        return get_runtime(config.runtime)

    def runtimes(self) -> list:
        from tinyprune.graph.runtimes import get_runtime, runtime_names

        return [get_runtime(name) for name in runtime_names()]

    def check_target(self, board, runtime, config) -> None:
        from tinyprune.compress import DECODE_OPCODE

        if runtime.arduino_architectures:
            check_architecture(board, runtime)
        if config.prove == "qemu":
            from tinyprune.toolchains.qemu import has_machine

            if not runtime.arduino_architectures:
                raise TinypruneError(f"--prove qemu runs the Arduino sketch, and {runtime.title} has none",
                                     "use --runtime arduino, or drop --prove")
            if not has_machine(board):
                raise TinypruneError(f"board {board.name!r} ({board.core}) has no qemu machine to prove on",
                                     "choose an Arm Cortex-M board (e.g. --board nano33ble), or drop --prove")
        if config.tflm_compression != "none" and not runtime.supports(DECODE_OPCODE):
            raise TinypruneError(f"--tflm-compression {config.tflm_compression} needs TFLM's DECODE kernel, which "
                                 f"{runtime.title} lacks", "add --runtime tflm (a current TFLM build), or drop "
                                 "--tflm-compression")

    def memory(self, graph, build: "Build", host_search, config) -> Memory:
        """The emulated arena of the runtime's build plus the margin the firmware declares."""
        board_arena, board_bytes = tflm_board_arena(graph, build.runtime.name, host_search)
        return Memory(board_arena, board_bytes, board_bytes + config.arena_margin)

    def shrinks(self, config) -> dict[str, str]:
        """What makes each part of a TFLM firmware smaller (magnitude sparsity alone shrinks none of them:
        the flatbuffer stores zeros as it stores any weight)."""
        compression = ("--tflm-compression prune or lut with --runtime tflm (stores pruned or clustered weights "
                       "compressed), " if config.tflm_compression == "none" else "")
        return {
            "model": f"--method structured (removes whole units), {compression}or --backend standalone (stores "
                     "pruned weights sparse)",
            "TFLM runtime and kernels": "--backend standalone (no interpreter: only the kernels the model calls)",
            "arena": "--method structured (smaller activations) or --backend standalone (its own static plan)",
            "arena margin": f"a smaller --arena-margin (now {config.arena_margin:,} B above the exact arena)",
            SKETCH_BUFFERS: SHRINK_SKETCH_BUFFERS,
            "headroom": f"a smaller --ram-headroom (now {config.ram_headroom:,} B), if your sketch needs less",
        }

    def generate(self, job: Job, build: "Build", memory: Memory, folder: Path) -> Generated:
        """The C array of the flatbuffer, and for an Arduino library the sketch and PlatformIO project."""
        folders = {"model_data": folder / "model_data"}
        write_model_data(folders["model_data"], job.model_bytes, job.name)
        if build.runtime.arduino_architectures:
            firmware_args = (job.model_bytes, job.graph, build.runtime, memory.arena_firmware,
                             job.test_inputs[0], job.expected_outputs[0], build.board)
            arena = {"exact_arena_bytes": memory.board_arena_bytes, "arena_source": memory.board_arena_source}
            folders["arduino"] = write_arduino_sketch(folder / "arduino", job.name, *firmware_args, **arena)
            folders["platformio"] = write_platformio_project(folder / "platformio", job.name, *firmware_args,
                                                             **arena)
        return Generated(folders=folders, model=job.model_bytes, test_vectors=1)

    def prove(self, generated: Generated, build: "Build", x_int8, tflm, config):
        """With --prove qemu: the sketch built against the installed Arduino library and run on the board's
        qemu machine (backends/tflm/qemu_proof.py)."""
        if config.prove != "qemu":
            return None
        from tinyprune.backends.tflm.qemu_proof import explain_difference, proof_failure, prove_sketch

        proof = prove_sketch(generated.folders["arduino"], build.board, x_int8, tflm,
                             config.arduino_library or None)
        explain_difference(proof, generated.model, x_int8, build.runtime.name)
        failure = proof_failure(proof)
        if failure is not None:
            raise failure
        return proof

    def measured_memory(self, memory: Memory, proof, config) -> Memory | None:
        if proof is None:
            return None
        proof.estimated_arena_bytes = memory.board_arena.exact
        return replace(memory, board_arena_bytes=proof.arena_bytes, arena_firmware=proof.arena_bytes + config.arena_margin,
                       board_arena_measured=proof.arena_bytes, board_arena_source=proof.arena_source)

    def stored_model(self, build: "Build") -> dict:
        return {"model_bytes": len(build.generated.model), "weight_bytes": None,
                "form": "the TFLite flatbuffer as a C array: weights, biases, scales and the graph"}

    def describe_proof(self, proof) -> str:
        from tinyprune.backends.tflm.qemu_proof import describe_prove_section

        return describe_prove_section(proof.summary())

    def report_figures(self, proof) -> dict | None:
        return None if proof is None else proof.summary()

    def figures(self, proof) -> dict:
        if proof is not None:
            from tinyprune.backends.tflm.qemu_proof import measured_figures

            return measured_figures(proof)
        return {"instructions_per_inference": None, "differing_bytes": None,
                "not_proven": ["the sketch was neither compiled against the Arduino library nor run on the board's "
                               "core here (--prove qemu does): its flash is the model plus the runtime's estimated "
                               "code, its arena emulated"]}

    def fit(self, graph, build: "Build", memory: Memory, generated: Generated, proof, config):
        from tinyprune.verify.fit import board_fit

        sketch = 0
        if build.runtime.arduino_architectures:  # the sketch (and the PlatformIO project: the same body)
            sketch = sketch_buffer_bytes(graph.input_tensors()[0].num_elements, graph.output_tensors()[0].num_elements)
        measured = ({} if proof is None else  # the sketch's call stack and heap, measured on qemu (--prove qemu)
                    {"stack_bytes": proof.stack_bytes, "heap_bytes": proof.heap_bytes,
                     "stack_measured_on": f"the sketch's firmware (setup(), one loop()) with {proof.library_name} "
                                          f"and the stand-in core on qemu {proof.machine}"})
        fit = board_fit(graph, build.board, build.runtime.name, memory.board_arena_bytes, config.ram_headroom,
                        memory.arena_firmware - memory.board_arena_bytes, sketch, **measured)
        if not build.board.core.startswith(MEASURED_CORE):  # say so rather than pass one core's code off as another's
            fit.flash_basis += f"; the runtime's code was measured on a {MEASURED_CORE}, not on {build.board.core}"
        return fit


BACKEND = TflmBackend()

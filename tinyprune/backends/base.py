"""The one interface every firmware target implements; the stages call it and never ask which target it is.

A build through a backend goes: check_target (before training: can it target this board at all?) ->
check (the int8 graph: has it a kernel for every operator?) -> memory (the arena the firmware declares)
-> fit (an estimate, so a model that cannot fit fails before the slow checks) -> generate (every file
of the firmware, into the output folder) -> prove (build and run what generate wrote, measured figures)
-> fit again with what prove measured. Export then writes nothing new: the files are the ones proven."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyprune.graph.ir import Graph


TEST_VECTORS = 16  # test inputs (with TFLM's outputs) handed to generate; a firmware carries what it needs


@dataclass
class Candidate:
    """A backend that can target the board, with the runtime whose operator table it checks against."""

    backend: "Backend"
    runtime: object  # tinyprune.graph.runtimes.Runtime


@dataclass
class Target:
    """Where the model will run: the board and the backends that can build for it, in order of preference
    (one, or with --backend auto every registered one the board allows); `refused` says why not the others."""

    board: object  # tinyprune.boards.Board
    candidates: list[Candidate]
    refused: dict[str, str]  # backend name -> why it cannot target this board
    auto: bool = False  # --backend auto: the first candidate that builds the model is the firmware

    @property
    def runtime(self):
        """The runtime the int8 model is converted for: one model runs on every candidate, so the one
        that computes per-channel FULLY_CONNECTED wrong decides."""
        strict = [c.runtime for c in self.candidates if not c.runtime.per_channel_fully_connected]
        return (strict or [self.candidates[0].runtime])[0]


@dataclass
class Build:
    """One backend's firmware for the model: chosen at the check stage, filled in by verify."""

    backend: "Backend"
    board: object  # tinyprune.boards.Board
    runtime: object  # tinyprune.graph.runtimes.Runtime
    ops: object  # tinyprune.graph.check.OpCheck against that runtime
    why: str  # why this backend is the firmware, or why it is built beside it
    folder: str = ""  # under the output folder: "" for the recommended firmware, the backend's name for others
    memory: "Memory | None" = None
    generated: "Generated | None" = None
    proof: object = None
    fit: object = None  # tinyprune.verify.fit.BoardFit
    proof_failure: str = ""  # why a comparison build's proof failed (the recommended build's fails the build)

    def figures(self) -> dict:
        return proof_figures({} if self.proof_failure else self.backend.figures(self.proof), self.proof_failure)


def proof_figures(measured: dict, failure: str = "") -> dict:
    """A proof's figures (Backend.figures) for the report's side-by-side table (report.json builds[]); a proof
    that failed (`failure`, why) claims nothing."""
    if failure:
        return {"instructions_per_inference": None, "differing_bytes": None, "not_proven": [failure],
                "proof_failure": failure}
    return {**measured, "proof_failure": None}


@dataclass
class Memory:
    """The arena figures of one build. TFLM's arena on the board is emulated: it is the firmware's own
    figure for an interpreter (until prove measures it), the comparison for a firmware without one."""

    board_arena: object  # tinyprune.memory.ArenaEstimate: TFLM's arena in the board's build, emulated
    board_arena_bytes: int  # its figure, or the host search's where the emulation cannot model an operator
    arena_firmware: int  # what the firmware declares
    plan: object = None  # the backend's own plan behind the figure (the standalone C's lowered graph)
    board_arena_measured: int | None = None  # TFLM's arena measured by prove on the board's build, if it ran
    board_arena_source: str = ""  # how board_arena_bytes was obtained, in words (the firmware's comment says it)


@dataclass
class Job:
    """What a backend needs to write a firmware: the model and the test vectors it checks itself with."""

    graph: Graph
    model_bytes: bytes
    name: str  # a C identifier
    test_inputs: np.ndarray  # int8, samples first: TFLM's inputs
    expected_outputs: np.ndarray  # int8, what TFLM on the host gave for them


@dataclass
class Generated:
    """What generate wrote into the output folder, by part, and the backend's own handle on it."""

    folders: dict[str, Path]  # named parts: "model_data", "arduino", "cortex_m", ...
    model: object = None  # e.g. the standalone C's StandaloneModel, the TFLM backend's flatbuffer bytes
    test_vectors: int = 0  # test inputs the firmware carries

    def files(self) -> list[Path]:
        return sorted(p for folder in self.folders.values() for p in folder.rglob("*") if p.is_file())


class Backend:
    """A firmware target. Subclasses live in their own folder and are listed in backends/__init__.py."""

    name: str = ""
    title: str = ""

    def runtime(self, config):
        """The operator table the model is checked against (tinyprune.graph.runtimes.Runtime)."""
        raise NotImplementedError

    def runtimes(self) -> list:
        """Every runtime this backend can build for (what --runtime may choose)."""
        raise NotImplementedError

    def check_target(self, board, runtime, config) -> None:
        """Refuse, before any training, a board or option this backend cannot build for."""

    def check(self, graph: Graph) -> None:
        """Refuse a graph this backend cannot compile beyond the runtime's operator table."""

    def memory(self, graph: Graph, build: "Build", host_search, config) -> Memory:
        raise NotImplementedError

    def fit(self, graph: Graph, build: "Build", memory: Memory, generated: Generated, proof, config):
        """tinyprune.verify.fit.BoardFit: estimated when proof is None, else from what prove measured;
        `generated` is None when nothing was written (`tinyprune inspect` estimates from the graph alone)."""
        raise NotImplementedError

    def shrinks(self, config) -> dict[str, str]:
        """For each part of the fit (an item of BoardFit's flash or RAM), what makes it smaller on this
        backend: the only advice a "does not fit" error gives."""
        return {}

    def generate(self, job: Job, build: "Build", memory: Memory, folder: Path) -> Generated:
        """Write every file of the firmware into `folder` (the output folder being built)."""
        raise NotImplementedError

    def prove(self, generated: Generated, build: "Build", x_int8: np.ndarray, tflm: np.ndarray, config):
        """Build and run what generate wrote against TFLM's outputs `tflm`; measured figures, or None
        when this backend has nothing it can run here."""
        return None

    def measured_memory(self, memory: Memory, proof, config) -> Memory | None:
        """The memory figures with what prove measured in place of the estimate, for generate to write
        again; None when prove measured no arena the firmware relies on."""
        return None

    def describe_proof(self, proof) -> str:
        """The verify line's words for the proof (empty when there was none)."""
        return ""

    def report_figures(self, proof) -> dict | None:
        """The proof's figures for report.json."""
        return None

    def stored_model(self, build: "Build") -> dict:
        """What the written firmware keeps of the model in flash, for the report's model card: model_bytes
        (all of it), weight_bytes (the weights alone, None where its format does not keep them apart) and
        form (in words)."""
        raise NotImplementedError

    def figures(self, proof) -> dict:
        """What the proof measured, for the report's side-by-side table: instructions per inference and
        output bytes differing from TFLM (None where nothing ran), and what could not be proven here."""
        return {"instructions_per_inference": None, "differing_bytes": None,
                "not_proven": ["this firmware was not run: only its figures are estimated"]}

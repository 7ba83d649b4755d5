"""The TFLM tensor arena, emulated in pure Python: the smallest arena with which the interpreter
allocates and runs a model, and where every byte of it goes — without TFLM, in milliseconds.

TFLM splits the arena in a head (growing up from the start: scratch-buffer requests while kernels
prepare, temporaries, then the planned activations) and a tail (growing down from the end: allocator
objects, eval tensors, node structs, options structs, kernel op data and per-channel arrays, the
interpreter's input/output TfLiteTensors). We replay AllocateTensors() allocation by allocation, in
TFLM's order and with TFLM's alignment rules (micro_allocator.cc, single_arena_buffer_allocator.cc,
micro_allocation_info.cc, greedy_memory_planner.cc), and collect every condition the arena size must
meet:
- a tail allocation must stay above the head (TFLM's own check) and above the temporaries still in
  use (TFLM does not check this one: it overwrites them and crashes or fails a checksum). Only the top
  temporary's zero points and quantized_dimension are dead by then, and only when no temporary is
  allocated after the tail allocation: the package runs with those bytes overwritten;
- a temporary or head allocation must stay below the tail;
- the memory planner gets all free memory as scratch and needs 40 bytes per planned buffer;
- the planned head plus the tail allocated after planning must fit.
The tail grows down from the arena's end, so its alignment padding depends on the arena size modulo
16: the replay runs once per residue and the smallest size over all residues is the 1-byte figure."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from tinyprune.errors import TinypruneError
from tinyprune.graph.ir import Graph
from tinyprune.memory.kernels import KernelRecipe, Persistent, Scratch, TempTensor, kernel_recipe
from tinyprune.memory.planner import (
    BUFFER_ALIGNMENT,
    Buffer,
    Placement,
    lower_bound,
    plan_buffers,
    planned_size,
    scratch_buffer,
    tensor_buffers,
)
from tinyprune.sizes import align_up

MAX_SCRATCH_REQUESTS_PER_OP = 12  # kMaxScratchBuffersPerOp
PLANNER_BYTES_PER_BUFFER = 40  # GreedyMemoryPlanner::per_buffer_size(): 16 + 4 + 4 + 12 + 4

EVAL_TENSORS = "TfLiteEvalTensor data"
PERSISTENT_TENSORS = "Persistent TfLiteTensor data"
QUANTIZATION = "Persistent TfLiteTensor quantization data"
PERSISTENT_BUFFERS = "Persistent buffer data"
VARIABLES = "TfLiteTensor variable buffer data"
NODES = "NodeAndRegistration struct"
RECORDED_SECTIONS = (EVAL_TENSORS, PERSISTENT_TENSORS, QUANTIZATION, PERSISTENT_BUFFERS, VARIABLES, NODES)
# Tail allocations the recording allocator does not itemise, named here:
ALLOCATOR_OBJECTS = "allocator objects"
SUBGRAPH_TABLE = "subgraph allocations"
OPTIONS = "builtin options structs"
SCRATCH_HANDLES = "scratch buffer handles"


@dataclass(frozen=True)
class RuntimeLayout:
    """Sizes and alignments of TFLM's structs in one build: they are what differs between targets."""

    name: str
    allocator_objects: tuple[tuple[int, int], ...]  # created before the model: (size, alignment)
    builtin_data_allocator: int
    subgraph_allocations: int
    eval_tensor: int
    node_and_registration: int
    tflite_tensor: int
    affine_quantization: int
    pointer: int
    scratch_request: int
    scratch_handle: int
    allocation_info: int
    subgraph_offset: int
    recipes: str  # key into kernels.RECIPES
    description: str


HOST = RuntimeLayout(
    name="host",
    # RecordingSingleArenaBufferAllocator, GreedyMemoryPlanner, RecordingMicroAllocator
    allocator_objects=((104, 8), (72, 8), (272, 8)),
    builtin_data_allocator=16,
    subgraph_allocations=24,
    eval_tensor=24,
    node_and_registration=64,
    tflite_tensor=64,
    affine_quantization=24,
    pointer=8,
    scratch_request=16,
    scratch_handle=8,
    allocation_info=32,
    subgraph_offset=8,
    recipes="host",
    description=(
        "the tflite-micro Python package on a 64-bit host (RecordingMicroAllocator, reference kernels): "
        "the arena its interpreter allocates and invokes with"
    ),
)

# The Arduino library's TFLM (January 2023) on a 32-bit Cortex-M: every size below is sizeof/alignof in
# arm-none-eabi-g++ with the library's own headers (tests/test_tflm_qemu.py checks them against the
# fixture library). The Arduino IDE builds the library without TF_LITE_STATIC_MEMORY, which neither the
# library nor the board's core defines: TfLiteTensor then carries the dynamic-tensor fields (64 B, not 32)
# and TfLiteNode its delegate fields (NodeAndRegistration 44 B, not 32).
_ARM32 = {
    # SingleArenaBufferAllocator (2 vtables, 5 pointers, temp count and checksum), GreedyMemoryPlanner,
    # MicroAllocator; MicroAllocator::Create aligns the arena's start to 16 bytes (declare it alignas(16)
    # and nothing is lost).
    "allocator_objects": ((36, 4), (44, 4), (36, 4)),
    "builtin_data_allocator": 8,  # MicroBuiltinDataAllocator: a vtable and the persistent allocator
    "subgraph_allocations": 8,
    "eval_tensor": 12,
    "affine_quantization": 12,
    "pointer": 4,
    "scratch_request": 12,
    "scratch_handle": 4,
    "allocation_info": 24,
    "subgraph_offset": 4,
}
IDE_BUILD = {"tflite_tensor": 64, "node_and_registration": 44}
STATIC_MEMORY_BUILD = {"tflite_tensor": 32, "node_and_registration": 32}

ARM32 = RuntimeLayout(
    name="arm32",
    recipes="arm32",
    description=(
        "the Arduino library's TFLM (January 2023) with CMSIS-NN kernels on a 32-bit Cortex-M with the "
        "DSP extension, built as the Arduino IDE builds it (no TF_LITE_STATIC_MEMORY): struct sizes of "
        "that build, that version's kernels and CMSIS-NN scratch-buffer sizes"
    ),
    **_ARM32, **IDE_BUILD,
)

ARM32_STATIC = RuntimeLayout(
    name="arm32-static",
    recipes="arm32",
    description=(
        "the Arduino library's TFLM (January 2023) with CMSIS-NN kernels on a 32-bit Cortex-M, built with "
        "TF_LITE_STATIC_MEMORY (as TFLM's own Makefile builds it; the Arduino IDE does not)"
    ),
    **_ARM32, **STATIC_MEMORY_BUILD,
)

ARM32_REFERENCE = RuntimeLayout(
    name="arm32-reference",
    recipes="arm32-reference",
    description=(
        "the Arduino library's TFLM (January 2023) with its reference kernels on a 32-bit Cortex-M, built "
        "as the Arduino IDE builds it"
    ),
    **_ARM32, **IDE_BUILD,
)

LAYOUTS = {layout.name: layout for layout in (HOST, ARM32, ARM32_STATIC, ARM32_REFERENCE)}


@dataclass(frozen=True)
class Section:
    """A part of the tail, named as RecordingMicroAllocator::PrintAllocations() names it (or, for the
    parts the recorder does not itemise, as we name them)."""

    name: str
    used: int  # bytes including alignment padding
    requested: int
    count: int


@dataclass(frozen=True)
class Peak:
    """The condition that decides the arena's size."""

    phase: str  # "init", "prepare", "memory planning", "after planning"
    node: int | None
    what: str


@dataclass(frozen=True)
class TensorPlacement:
    """Where a planned buffer sits in the head, and when it is alive (allocation scopes: the graph's
    inputs at 0, operator i at i + 1)."""

    name: str
    tensor: int | None  # None for a kernel scratch buffer
    node: int | None  # the operator that asked for a scratch buffer
    offset: int
    size: int  # bytes reserved (rounded up to 16)
    nbytes: int
    first: int
    last: int


@dataclass(frozen=True)
class ArenaEstimate:
    target: str
    aligned16: int  # the smallest arena that is a multiple of 16: what to declare
    exact: int  # the smallest arena in bytes
    head: int  # the planned activations and scratch buffers
    tail: int  # persistent allocations, at `aligned16`
    lower_bound: int  # the largest sum of buffers alive at one step: no planner can do better
    sections: dict[str, Section]  # the tail, section by section, at `aligned16`
    peak: Peak
    placements: list[TensorPlacement]
    exact_model: bool  # False when an operator's own allocations are not modelled
    notes: tuple[str, ...]
    models: str  # what this figure is the arena of
    seconds: float = 0.0
    recorded: dict[str, Section] = field(default_factory=dict)  # the recorder's sections only

    @property
    def planner_overhead(self) -> int:
        """Head bytes the greedy planner leaves unused above the ideal."""
        return self.head - self.lower_bound


# ------------------------------------------------------------------------------ the allocation script

@dataclass(frozen=True)
class _Tail:
    nbytes: int
    alignment: int
    section: str
    count: int = 1


@dataclass(frozen=True)
class _Temp:
    nbytes: int
    alignment: int
    dead: int = 0  # bytes at its end that nothing reads once the tensor is set up (see _Replay)


@dataclass(frozen=True)
class _ResetTemps:
    pass


@dataclass(frozen=True)
class _Head:
    """ResizeBuffer / ReserveNonPersistentOverlayMemory at the start of the arena."""

    nbytes: int


@dataclass(frozen=True)
class _PlannerScratch:
    """CommitStaticMemoryPlan hands all free memory to the planner."""

    buffers: int


@dataclass(frozen=True)
class _Phase:
    phase: str
    node: int | None = None
    what: str = ""


def _tensor_allocations(layout: RuntimeLayout, graph: Graph, index: int, temporary: bool):
    """A TfLiteTensor and its quantization params (InitializeTfLiteTensorFromFlatbuffer): the struct,
    a TfLiteAffineQuantization {scale*, zero_point*, quantized_dimension} and the zero-point
    TfLiteIntArray {size, data[channels]}."""
    quantization = graph.tensors[index].quantization
    zero_points = 4 + 4 * len(quantization.scale) if quantization is not None else 0
    if temporary:
        events = [_Temp(layout.tflite_tensor, layout.pointer)]
        if quantization is not None:
            # The zero points and quantized_dimension are not read again once the tensor is set up;
            # the struct's two pointers are (DeallocateTempTfLiteTensor follows them).
            dead = zero_points + layout.affine_quantization - 2 * layout.pointer
            events += [_Temp(layout.affine_quantization, layout.pointer), _Temp(zero_points, 4, dead)]
        return events
    events = [_Tail(layout.tflite_tensor, layout.pointer, PERSISTENT_TENSORS)]
    if quantization is not None:
        events += [_Tail(layout.affine_quantization, layout.pointer, QUANTIZATION),
                   _Tail(zero_points, 4, QUANTIZATION)]
    return events


def _script(layout: RuntimeLayout, graph: Graph, recipes: list[KernelRecipe], planned: int, head: int):
    """Every arena operation of MicroInterpreter construction and AllocateTensors(), in order
    (`planned` buffers go to the memory planner, whose plan needs `head` bytes)."""
    yield _Phase("init", None, "allocator construction")
    for size, alignment in layout.allocator_objects:
        yield _Tail(size, alignment, ALLOCATOR_OBJECTS)
    yield _Tail(layout.builtin_data_allocator, layout.pointer, ALLOCATOR_OBJECTS)
    yield _Head(layout.scratch_request * MAX_SCRATCH_REQUESTS_PER_OP)
    yield _Tail(layout.subgraph_allocations * graph.subgraph_count, layout.pointer, SUBGRAPH_TABLE)
    yield _Tail(layout.eval_tensor * len(graph.tensors), layout.pointer, EVAL_TENSORS, len(graph.tensors))
    if graph.operators:
        yield _Tail(layout.node_and_registration * len(graph.operators), layout.pointer, NODES,
                    len(graph.operators))
    for recipe in recipes:
        if recipe.builtin_data is not None:
            yield _Tail(*recipe.builtin_data, OPTIONS)
    for recipe in recipes:
        for nbytes in recipe.init:
            yield _Tail(nbytes, BUFFER_ALIGNMENT, PERSISTENT_BUFFERS)
    scratch_requests = 0
    for node, (op, recipe) in enumerate(zip(graph.operators, recipes)):
        yield _Phase("prepare", node, op.opcode)
        for event in recipe.prepare:
            if isinstance(event, TempTensor):
                yield from _tensor_allocations(layout, graph, event.tensor, temporary=True)
            elif isinstance(event, Persistent):
                yield _Tail(event.nbytes, BUFFER_ALIGNMENT, PERSISTENT_BUFFERS)
            elif isinstance(event, Scratch):
                scratch_requests += 1
        yield _ResetTemps()
        yield _Head(layout.scratch_request * (scratch_requests + MAX_SCRATCH_REQUESTS_PER_OP))
    yield _Phase("memory planning", None, "allocation info, then 40 B of planner scratch a buffer")
    if scratch_requests:
        yield _Tail(layout.scratch_handle * scratch_requests, layout.pointer, SCRATCH_HANDLES)
    for tensor in graph.tensors:
        if tensor.is_variable:
            yield _Tail(tensor.nbytes, BUFFER_ALIGNMENT, VARIABLES)
    yield _Temp(layout.subgraph_offset * graph.subgraph_count, layout.subgraph_offset)
    yield _Temp(layout.allocation_info * (len(graph.tensors) + scratch_requests), layout.pointer)
    yield _PlannerScratch(planned)
    yield _ResetTemps()
    yield _Head(0)
    yield _Phase("after planning", None, "the planned head and the interpreter's input/output tensors")
    yield _Head(head)
    for indices in (graph.inputs, graph.outputs):
        yield _Tail(layout.pointer * len(indices), BUFFER_ALIGNMENT, PERSISTENT_BUFFERS)
        for index in indices:
            yield from _tensor_allocations(layout, graph, index, temporary=False)


def _planned_buffers(graph: Graph, recipes: list[KernelRecipe]) -> list[Buffer]:
    """Tensors in tensor order, then scratch buffers in request order (AllocationInfoBuilder's order)."""
    scratch = [scratch_buffer(event.nbytes, node)
               for node, recipe in enumerate(recipes)
               for event in recipe.prepare if isinstance(event, Scratch)]
    return tensor_buffers(graph) + scratch


@dataclass
class _Replay:
    """One pass over the script for arena sizes congruent to `residue` modulo 16."""

    residue: int
    required: int = 0  # the smallest arena size meeting every condition so far
    peak: Peak = Peak("init", None, "")
    depth: int = 0  # distance of the tail from the arena's end
    head: int = 0
    temp: int = 0
    sections: dict = field(default_factory=dict)  # name -> [used, requested, count]
    dead_top: int = 0  # bytes at the top of the temporaries that nothing reads any more
    pending: list = field(default_factory=list)  # tail conditions that depend on what follows

    def need(self, size: int, phase: _Phase) -> None:
        if size > self.required:
            self.required = size
            self.peak = Peak(phase.phase, phase.node, phase.what)

    def settle(self, strict: bool) -> None:
        """A tail allocation may overwrite the dead top of the temporaries only if no temporary is
        allocated after it (that one would land on the tail's data, which the kernel then writes)."""
        for over_temps, over_live_temps, phase in self.pending:
            self.need(over_temps if strict else over_live_temps, phase)
        self.pending.clear()

    def run(self, script) -> _Replay:
        phase = _Phase("init")
        for event in script:
            if isinstance(event, _Phase):
                self.settle(strict=False)
                phase = event
            elif isinstance(event, _Tail):
                # AlignPointerDown(tail - size, alignment) with tail = arena end - depth
                padding = (self.residue - self.depth - event.nbytes) % event.alignment
                self.depth += event.nbytes + padding
                # TFLM checks the tail against the head only; above live temporaries it corrupts them.
                self.need(self.depth + self.head, phase)
                self.pending.append((self.depth + self.temp, self.depth + self.temp - self.dead_top, phase))
                used, requested, count = self.sections.get(event.section, (0, 0, 0))
                self.sections[event.section] = (used + event.nbytes + padding, requested + event.nbytes,
                                                count + event.count)
            elif isinstance(event, _Temp):
                self.settle(strict=True)
                self.temp = align_up(self.temp, event.alignment) + event.nbytes
                self.dead_top = event.dead
                self.need(self.depth + self.temp, phase)
            elif isinstance(event, _ResetTemps):
                self.settle(strict=False)
                self.temp = self.head
                self.dead_top = 0
            elif isinstance(event, _Head):
                self.settle(strict=False)
                self.head = self.temp = event.nbytes
                self.need(self.depth + event.nbytes, phase)
            elif isinstance(event, _PlannerScratch):
                # available = AlignDown(tail, 16) - AlignUp(temp, 16) >= 40 bytes per buffer
                tail_padding = (self.residue - self.depth) % BUFFER_ALIGNMENT
                start = align_up(self.temp, BUFFER_ALIGNMENT)
                self.need(self.depth + tail_padding + start + PLANNER_BYTES_PER_BUFFER * event.buffers,
                          phase)
        self.settle(strict=False)
        return self

    def smallest_size(self) -> int:
        """The smallest size >= required that is congruent to the residue."""
        return self.required + (self.residue - self.required) % BUFFER_ALIGNMENT


def _check_supported(graph: Graph) -> None:
    floats = sorted({t.dtype for t in graph.tensors if not t.is_constant and t.dtype not in ("int8", "int32")})
    if floats:
        raise TinypruneError(
            f"the arena emulation models int8 kernels; this model has {', '.join(floats)} activations",
            "convert with full int8 quantization (tinyprune build does) or measure with the real interpreter",
        )
    if graph.subgraph_count != 1:
        raise TinypruneError(
            f"the model has {graph.subgraph_count} subgraphs; the arena emulation models one",
            "use `tinyprune verify` (the real TFLM interpreter) for control-flow models",
        )
    if "OfflineMemoryAllocation" in graph.metadata_names:
        raise TinypruneError(
            "the model carries an offline memory plan, which the arena emulation does not model",
            "remove the OfflineMemoryAllocation metadata or measure the arena with the real interpreter",
        )


def emulate_arena(graph: Graph, target: str = "host") -> ArenaEstimate:
    """The smallest TFLM arena for `graph` on `target`, with its breakdown: "host" is the tflite-micro
    package (exact: the tests hold it to the interpreter), "arm32" the Arduino library's TFLM of January
    2023 with CMSIS-NN kernels on a Cortex-M as the Arduino IDE builds it (the tests hold it to that build
    on qemu), "arm32-static" the same built with TF_LITE_STATIC_MEMORY and "arm32-reference" with
    reference kernels."""
    started = time.perf_counter()
    if target not in LAYOUTS:
        raise TinypruneError(f"unknown arena target {target!r}", f"use one of {sorted(LAYOUTS)}")
    _check_supported(graph)
    layout = LAYOUTS[target]
    recipes = [kernel_recipe(graph, op, layout.recipes) for op in graph.operators]
    buffers = _planned_buffers(graph, recipes)
    placements = plan_buffers(buffers)
    head = planned_size(placements)
    replays = [_Replay(residue).run(_script(layout, graph, recipes, len(buffers), head))
               for residue in range(BUFFER_ALIGNMENT)]
    aligned = replays[0]
    exact = min(replay.smallest_size() for replay in replays)
    sections = {name: Section(name, *figures) for name, figures in aligned.sections.items()}
    notes = tuple(recipe.note for recipe in recipes if recipe.note)
    return ArenaEstimate(
        target=target,
        aligned16=aligned.smallest_size(),
        exact=exact,
        head=head,
        tail=aligned.depth,
        lower_bound=lower_bound(buffers),
        sections=sections,
        recorded={name: sections[name] for name in RECORDED_SECTIONS if name in sections},
        peak=aligned.peak,
        placements=_describe(graph, placements),
        exact_model=all(recipe.known for recipe in recipes),
        notes=notes,
        models=layout.description,
        seconds=time.perf_counter() - started,
    )


def tensor_placements(graph: Graph, target: str = "host") -> list[TensorPlacement]:
    """Every planned buffer's offset in the head and its lifetime: for `inspect`."""
    layout = LAYOUTS[target]
    recipes = [kernel_recipe(graph, op, layout.recipes) for op in graph.operators]
    return _describe(graph, plan_buffers(_planned_buffers(graph, recipes)))


def _describe(graph: Graph, placements: list[Placement]) -> list[TensorPlacement]:
    described = []
    for placement in placements:
        buffer = placement.buffer
        if buffer.tensor is not None:
            name = graph.tensors[buffer.tensor].name
        else:
            name = f"scratch of operator {buffer.node} ({graph.operators[buffer.node].opcode})"
        described.append(TensorPlacement(name, buffer.tensor, buffer.node, placement.offset, buffer.size,
                                         buffer.nbytes, buffer.first, buffer.last))
    return described

"""TFLM's greedy memory planner, step for step: where every activation and scratch buffer goes in the
arena's head, and how far above the ideal that is.

The planner (tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc) takes buffers with a size
(rounded up to 16 bytes) and a lifetime [first, last] in "allocation scopes" (graph inputs live at scope 0,
operator i runs at scope i + 1). It sorts them largest first — a stable bubble sort over the buffers in
*reverse* order of addition, so among equal sizes the last added goes first — then places each one at the
lowest offset where it fits between the buffers already placed that are alive at the same time."""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from tinyprune.graph.ir import Graph
from tinyprune.sizes import align_up

BUFFER_ALIGNMENT = 16  # MicroArenaBufferAlignment()


@dataclass(frozen=True)
class Buffer:
    """One planned buffer: a tensor without data, or a kernel's scratch buffer."""

    size: int  # bytes, already rounded up to 16
    first: int  # first allocation scope it is alive in
    last: int  # last allocation scope it is alive in
    tensor: int | None = None  # tensor index, None for a scratch buffer
    node: int | None = None  # the operator that requested a scratch buffer
    nbytes: int = 0  # bytes before rounding


@dataclass(frozen=True)
class Placement:
    buffer: Buffer
    offset: int

    @property
    def end(self) -> int:
        return self.offset + self.buffer.size


def plan_buffers(buffers: list[Buffer]) -> list[Placement]:
    """Offsets as GreedyMemoryPlanner computes them, in the order the buffers were given."""
    if not buffers:
        return []
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, -i))  # ties: last added first
    offsets: list[int | None] = [None] * len(buffers)
    placed_offsets: list[int] = []  # offsets of placed buffers, ascending (ties: first placed first)
    placed_ids: list[int] = []
    for buffer_id in order:
        wanted = buffers[buffer_id]
        candidate = 0
        for offset, other_id in zip(placed_offsets, placed_ids):
            other = buffers[other_id]
            if other.first > wanted.last or wanted.first > other.last:
                continue  # not alive at the same time
            if offset - candidate >= wanted.size:
                break  # the gap before this simultaneously active buffer is big enough
            candidate = max(candidate, offset + other.size)
        offsets[buffer_id] = candidate
        position = bisect_right(placed_offsets, candidate)
        placed_offsets.insert(position, candidate)
        placed_ids.insert(position, buffer_id)
    return [Placement(buffer, offset) for buffer, offset in zip(buffers, offsets)]


def planned_size(placements: list[Placement]) -> int:
    """GetMaximumMemorySize(): the head the plan needs."""
    return max((p.end for p in placements), default=0)


def lower_bound(buffers: list[Buffer]) -> int:
    """The largest sum of simultaneously alive buffers: no planner can use less head than this."""
    scopes = {scope for b in buffers for scope in (b.first, b.last)}
    return max((sum(b.size for b in buffers if b.first <= scope <= b.last) for scope in scopes), default=0)


def tensor_buffers(graph: Graph) -> list[Buffer]:
    """The tensors TFLM plans, in tensor order, with the lifetimes AllocationInfoBuilder marks
    (tensorflow/lite/micro/micro_allocation_info.cc): graph inputs are created at scope 0, operator i
    creates its outputs and uses its inputs at scope i + 1, graph outputs live to the last scope.
    Constant tensors, variables and empty tensors are not planned."""
    unset = -1
    first = [unset] * len(graph.tensors)
    last = [unset] * len(graph.tensors)
    for index in graph.inputs:
        first[index] = 0 if first[index] == unset else first[index]
        last[index] = 0
    scope = 0
    for op in graph.operators:
        scope += 1
        for index in op.outputs:
            if index >= 0 and first[index] == unset:
                first[index] = scope
        for index in list(op.inputs) + list(op.outputs):
            if index >= 0:
                last[index] = scope
    for index in graph.outputs:
        if first[index] == unset:
            first[index] = scope
        last[index] = scope
    buffers = []
    for tensor in graph.tensors:
        if tensor.is_constant or tensor.is_variable or tensor.nbytes == 0:
            continue
        buffers.append(Buffer(align_up(tensor.nbytes, BUFFER_ALIGNMENT), first[tensor.index],
                              last[tensor.index], tensor=tensor.index, nbytes=tensor.nbytes))
    return buffers


def scratch_buffer(nbytes: int, node: int) -> Buffer:
    """A kernel's scratch buffer: alive only while its operator (scope node + 1) runs."""
    return Buffer(align_up(nbytes, BUFFER_ALIGNMENT), node + 1, node + 1, node=node, nbytes=nbytes)

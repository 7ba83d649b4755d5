"""The static memory plan: every activation buffer gets a fixed offset in one arena, computed before
the firmware is built. Buffers whose lifetimes (first to last step that touches them) do not overlap
may share bytes; the greedy placement puts the largest buffers first, each at the lowest offset that
collides with no buffer alive at the same time."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BufferRequest:
    key: int  # the caller's buffer id
    size: int  # bytes
    first: int  # first step that writes or reads it
    last: int  # last step that reads it


@dataclass(frozen=True)
class ArenaPlan:
    offsets: dict[int, int]  # key -> byte offset in the arena
    size: int  # arena bytes (a multiple of the alignment)


def _align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def plan_arena(requests: list[BufferRequest], alignment: int = 4) -> ArenaPlan:
    """Offsets for `requests` such that buffers alive at the same step never overlap."""
    placed: list[tuple[BufferRequest, int]] = []
    order = sorted(requests, key=lambda r: (-r.size, r.first, r.key))
    for request in order:
        alive = sorted(
            ((offset, offset + other.size) for other, offset in placed
             if other.first <= request.last and request.first <= other.last),
        )
        offset = 0
        for start, end in alive:
            if offset + request.size <= start:
                break
            offset = max(offset, _align(end, alignment))
        placed.append((request, offset))
    size = max((offset + request.size for request, offset in placed), default=0)
    return ArenaPlan({request.key: offset for request, offset in placed}, _align(size, alignment))

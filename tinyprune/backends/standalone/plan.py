"""The static memory plan: every activation buffer gets a fixed offset in one arena, computed before
the firmware is built. Buffers whose lifetimes (first to last step that touches them) do not overlap
may share bytes. No arena can be smaller than the largest sum of buffers alive at one step (the lower
bound); a greedy placement (each buffer at the lowest offset that collides with no placed buffer alive
at the same time) reaches it or comes close depending on the order it places buffers in, so the plan
tries several orders and keeps the smallest arena."""
from __future__ import annotations

from dataclasses import dataclass

from tinyprune.sizes import align_up


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
    lower_bound: int  # the largest sum of (aligned) buffers alive at one step


def live_bytes_bound(requests: list[BufferRequest], alignment: int = 4) -> int:
    """The largest sum of aligned buffer sizes alive at the same step: no placement does better."""
    steps = {step for r in requests for step in (r.first, r.last)}
    return max((sum(align_up(r.size, alignment) for r in requests if r.first <= step <= r.last) for step in steps),
               default=0)


# Orders the greedy placement is tried in: largest first (the classic heuristic), longest-lived
# first, earliest first, and largest area in the size x lifetime plane first.
PLACEMENT_ORDERS = (
    lambda r: (-r.size, r.first, r.key),
    lambda r: (-(r.last - r.first), -r.size, r.key),
    lambda r: (r.first, -r.size, r.key),
    lambda r: (-r.size * (r.last - r.first + 1), r.key),
)


def _greedy(requests: list[BufferRequest], order, alignment: int) -> dict[int, int]:
    placed: list[tuple[BufferRequest, int]] = []
    for request in sorted(requests, key=order):
        alive = sorted(
            (offset, offset + other.size) for other, offset in placed
            if other.first <= request.last and request.first <= other.last
        )
        offset = 0
        for start, end in alive:
            if offset + request.size <= start:
                break
            offset = max(offset, align_up(end, alignment))
        placed.append((request, offset))
    return {request.key: offset for request, offset in placed}


def plan_arena(requests: list[BufferRequest], alignment: int = 4) -> ArenaPlan:
    """Offsets for `requests` such that buffers alive at the same step never overlap: the smallest
    arena of the greedy placements in PLACEMENT_ORDERS (the first order wins ties)."""
    sizes = {r.key: r.size for r in requests}
    bound = live_bytes_bound(requests, alignment)
    best: tuple[int, dict[int, int]] | None = None
    for order in PLACEMENT_ORDERS:
        offsets = _greedy(requests, order, alignment)
        size = align_up(max((offset + sizes[key] for key, offset in offsets.items()), default=0), alignment)
        if best is None or size < best[0]:
            best = (size, offsets)
        if size == bound:
            break
    return ArenaPlan(best[1], best[0], bound)

"""Figures every stage shares: rounding up to an alignment, the deterministic gzip size the report and
the stage lines quote, and counts written as people read them. A leaf: it imports nothing of tinyprune."""
from __future__ import annotations

import gzip


def align_up(value: int, alignment: int) -> int:
    """The smallest multiple of `alignment` not below `value`."""
    return -(-value // alignment) * alignment


def gzip_size(data: bytes) -> int:
    """Deterministic gzip size (no timestamp in the header)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """"1 kind", "3 kinds", "12,500 weights": the count with its separators and the noun in agreement."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"

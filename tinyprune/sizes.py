"""Byte arithmetic every stage shares: rounding up to an alignment, and the deterministic gzip size the
report and the stage lines quote. A leaf: it imports nothing of tinyprune."""
from __future__ import annotations

import gzip


def align_up(value: int, alignment: int) -> int:
    """The smallest multiple of `alignment` not below `value`."""
    return -(-value // alignment) * alignment


def gzip_size(data: bytes) -> int:
    """Deterministic gzip size (no timestamp in the header)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))

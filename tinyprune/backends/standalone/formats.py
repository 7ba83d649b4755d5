"""Per-layer weight storage: a weight matrix (one row per output channel) is stored in the smallest of
the forms the kernels compute from directly, skipping zero weights (no decoding into RAM):

- dense: the int8 values, row after row;
- bitmask: per row, 32-bit words with a bit per position marking the nonzeros (position p of a word is
  bit 31 - p, so a count-leading-zeros finds the next one), then the nonzero values;
- delta: the gaps between nonzeros as `code_bits`-bit codes, one stream over the rows read as one
  sequence of positions (a row's trailing zeros count into the next row's first gap), then the nonzero
  values. A code c below the escape 2^bits - 1 says "c zeros, then a nonzero"; the escape says "that many
  zeros, no nonzero yet". The stream ends with the gap to a nonzero one past the last row's end, so a
  reader can always decode the next nonzero's position ahead;
- lut: a table of the k distinct values and, per position, a ceil(log2 k)-bit index (rows start on a
  byte boundary);
- bitmask_lut, delta_lut (sparse clustered): the nonzeros' positions as in bitmask or delta, their values
  as ceil(log2 k)-bit indices into a table of the k distinct nonzero values, one stream over the rows.

Bit streams (indices, codes) are little-endian: item i takes bits i * bits .. i * bits + bits - 1, bit b
of the stream being bit b % 8 of byte b / 8.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FORMATS = ("dense", "bitmask", "delta", "lut", "bitmask_lut", "delta_lut")
# the forms the kernels walk fastest (a count-leading-zeros finds each nonzero of a bitmask), the default;
# the others save flash (gap codes near the positions' entropy, 4-bit values of 16 clusters) and, read a
# few bits at a time, take several times the instructions (bench: pruned digits demo)
FAST_FORMATS = ("dense", "bitmask", "lut")
FORMAT_SETS = {"fast": FAST_FORMATS, "smallest": FORMATS}
MAX_TABLE = 128  # values a table holds: 7-bit indices (8-bit ones are never smaller than int8 values)


@dataclass(frozen=True)
class WeightEncoding:
    format: str
    rows: int
    row_len: int
    values: np.ndarray  # int8: dense all values, bitmask and delta the nonzeros, *lut the table
    mask: np.ndarray | None = None  # uint32 words (bitmask)
    indices: bytes | None = None  # packed indices (lut: of every position, *_lut: of the nonzeros)
    index_bits: int = 0
    row_stride: int = 0  # bitmask*: words a row; lut: index bytes a row
    codes: bytes | None = None  # packed gap codes (delta*)
    code_bits: int = 0

    @property
    def dense_bytes(self) -> int:
        return self.rows * self.row_len

    @property
    def stored_bytes(self) -> int:
        mask_bytes = 0 if self.mask is None else 4 * self.mask.size
        packed = sum(len(stream) for stream in (self.indices, self.codes) if stream is not None)
        return int(self.values.size) + mask_bytes + packed

    @property
    def skips_zeros(self) -> bool:
        return self.format != "dense"


def encode_dense(matrix: np.ndarray) -> WeightEncoding:
    rows, row_len = matrix.shape
    return WeightEncoding("dense", rows, row_len, np.ascontiguousarray(matrix, dtype=np.int8).ravel())


def pack_bits(items, bits: int) -> bytes:
    """Unsigned `items` (each below 2^bits) as one little-endian bit stream, padded to whole bytes."""
    items = np.asarray(items, dtype=np.uint32).ravel()
    stream = ((items[:, None] >> np.arange(bits, dtype=np.uint32)) & 1).astype(np.uint8).ravel()
    return np.packbits(stream, bitorder="little").tobytes()


def unpack_bits(stream: bytes, bits: int, count: int) -> np.ndarray:
    """The first `count` items of a stream pack_bits wrote."""
    flat = np.unpackbits(np.frombuffer(stream, dtype=np.uint8), bitorder="little")[:count * bits]
    return (flat.reshape(count, bits).astype(np.int64) << np.arange(bits)).sum(axis=1)


def _bits_for(count: int) -> int:
    return max(1, math.ceil(math.log2(count)))


def _gaps(matrix: np.ndarray) -> np.ndarray:
    """Zeros before each nonzero in row-major order, and before a nonzero one past the end."""
    ends = np.concatenate([np.flatnonzero(matrix.ravel()), [matrix.size]])
    return np.diff(ends, prepend=-1) - 1


def gap_codes(gaps: np.ndarray, bits: int) -> np.ndarray:
    """Each gap as escapes (2^bits - 1 zeros each) then one code below the escape."""
    escape = (1 << bits) - 1
    gaps = np.asarray(gaps, dtype=np.int64)
    counts = gaps // escape
    codes = np.full(int(counts.sum()) + len(gaps), escape, dtype=np.int64)
    codes[np.cumsum(counts + 1) - 1] = gaps % escape
    return codes


def delta_positions(codes: bytes, bits: int, end: int) -> tuple[np.ndarray, int]:
    """The flat (row-major) positions a gap-code stream encodes, up to its terminator at or past `end`
    (rows x row_len; absent when the stream ends first), and the codes read: what the kernels' reader
    walks, for tests and the export-time contract."""
    escape = (1 << bits) - 1
    items = unpack_bits(codes, bits, len(codes) * 8 // bits)
    positions, position = [], -1
    for read, code in enumerate(items, start=1):
        position += int(code)
        if code != escape:
            position += 1
            positions.append(position)
            if position >= end:
                return np.asarray(positions, dtype=np.int64), read
    return np.asarray(positions, dtype=np.int64), len(items)


def encode_delta(matrix: np.ndarray, value_table: bool = False) -> WeightEncoding | None:
    """The gap codes at the width that makes the stream shortest; values as int8 or (value_table) as
    indices into the nonzeros' table (None when that table would exceed MAX_TABLE)."""
    gaps = _gaps(matrix)
    bits = min(range(1, 9), key=lambda b: -(-len(gap_codes(gaps, b)) * b // 8))
    codes = pack_bits(gap_codes(gaps, bits), bits)
    values = _nonzero_values(matrix, "delta", value_table)
    return None if values is None else WeightEncoding(codes=codes, code_bits=bits, **values)


def _nonzero_values(matrix: np.ndarray, positions: str, value_table: bool) -> dict | None:
    """The value fields of a sparse encoding: int8 nonzeros, or a table and packed indices."""
    rows, row_len = matrix.shape
    nonzeros = matrix[matrix != 0]
    if not value_table:
        return dict(format=positions, rows=rows, row_len=row_len, values=nonzeros.astype(np.int8))
    table, indices = np.unique(nonzeros, return_inverse=True)
    if len(table) > MAX_TABLE or len(table) == 0:
        return None
    bits = _bits_for(len(table))
    return dict(format=f"{positions}_lut", rows=rows, row_len=row_len, values=table.astype(np.int8),
                indices=pack_bits(indices, bits), index_bits=bits)


def encode_bitmask(matrix: np.ndarray, value_table: bool = False) -> WeightEncoding | None:
    rows, row_len = matrix.shape
    words = -(-row_len // 32)
    nonzero = np.zeros((rows, words * 32), dtype=bool)
    nonzero[:, :row_len] = matrix != 0
    bit_values = (1 << np.arange(31, -1, -1, dtype=np.uint64)).astype(np.uint64)  # position 0 = bit 31
    mask = (nonzero.reshape(rows, words, 32).astype(np.uint64) * bit_values).sum(axis=2).astype(np.uint32)
    values = _nonzero_values(matrix, "bitmask", value_table)
    return None if values is None else WeightEncoding(mask=mask.ravel(), row_stride=words, **values)


def encode_lut(matrix: np.ndarray) -> WeightEncoding | None:
    """None when the matrix has more than 128 distinct values (an index would need 8 bits)."""
    rows, row_len = matrix.shape
    table, codes = np.unique(matrix, return_inverse=True)
    if len(table) > MAX_TABLE:
        return None
    bits = _bits_for(len(table))
    codes = codes.reshape(rows, row_len)
    packed = b"".join(pack_bits(row, bits) for row in codes)
    return WeightEncoding("lut", rows, row_len, table.astype(np.int8), indices=packed,
                          index_bits=bits, row_stride=-(-row_len * bits // 8))


def choose_encoding(matrix: np.ndarray, allowed: tuple[str, ...] = FAST_FORMATS) -> WeightEncoding:
    """The smallest allowed encoding of an int8 (rows, row_len) matrix; dense wins ties."""
    matrix = np.asarray(matrix, dtype=np.int8)
    encoders = {"bitmask": lambda: encode_bitmask(matrix), "delta": lambda: encode_delta(matrix),
                "lut": lambda: encode_lut(matrix), "bitmask_lut": lambda: encode_bitmask(matrix, True),
                "delta_lut": lambda: encode_delta(matrix, True)}
    candidates = [encode_dense(matrix)] + [encoders[name]() for name in FORMATS[1:] if name in allowed]
    return min((c for c in candidates if c is not None), key=lambda encoding: encoding.stored_bytes)


def interleave_row_pairs(matrix: np.ndarray) -> np.ndarray:
    """A dense (rows, depth) int8 matrix in the order tp_gemm reads it: each pair of rows interleaved
    four bytes at a time, then the pair's last depth % 4 bytes row after row; an odd last row as is."""
    matrix = np.asarray(matrix, dtype=np.int8)
    rows, depth = matrix.shape
    body = depth - depth % 4
    parts = []
    for row in range(0, rows - 1, 2):
        pair = matrix[row:row + 2]
        parts += [pair[:, :body].reshape(2, -1, 4).transpose(1, 0, 2).ravel(), pair[:, body:].ravel()]
    if rows % 2:
        parts.append(matrix[-1])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int8)

"""Per-layer weight storage: a weight matrix (one row per output channel) is stored in the smallest of
three forms the kernels compute from directly, skipping zero weights (no decoding into RAM):

- dense: the int8 values, row after row;
- bitmask: per row, 32-bit words with a bit per position marking the nonzeros (position p of a word is
  bit 31 - p, so a count-leading-zeros finds the next one), then the nonzero values;
- lut: a table of the k distinct values and, per position, a ceil(log2 k)-bit index (rows start on a
  byte boundary).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FORMATS = ("dense", "bitmask", "lut")


@dataclass(frozen=True)
class WeightEncoding:
    format: str
    rows: int
    row_len: int
    values: np.ndarray  # int8: dense all values, bitmask the nonzeros, lut the table
    mask: np.ndarray | None = None  # uint32 words (bitmask)
    indices: bytes | None = None  # packed indices (lut)
    index_bits: int = 0
    row_stride: int = 0  # bitmask: words a row; lut: index bytes a row

    @property
    def dense_bytes(self) -> int:
        return self.rows * self.row_len

    @property
    def stored_bytes(self) -> int:
        mask_bytes = 0 if self.mask is None else 4 * self.mask.size
        index_bytes = 0 if self.indices is None else len(self.indices)
        return int(self.values.size) + mask_bytes + index_bytes

    @property
    def skips_zeros(self) -> bool:
        return self.format != "dense"


def encode_dense(matrix: np.ndarray) -> WeightEncoding:
    rows, row_len = matrix.shape
    return WeightEncoding("dense", rows, row_len, np.ascontiguousarray(matrix, dtype=np.int8).ravel())


def encode_bitmask(matrix: np.ndarray) -> WeightEncoding:
    rows, row_len = matrix.shape
    words = -(-row_len // 32)
    nonzero = np.zeros((rows, words * 32), dtype=bool)
    nonzero[:, :row_len] = matrix != 0
    bit_values = (1 << np.arange(31, -1, -1, dtype=np.uint64)).astype(np.uint64)  # position 0 = bit 31
    mask = (nonzero.reshape(rows, words, 32).astype(np.uint64) * bit_values).sum(axis=2).astype(np.uint32)
    return WeightEncoding("bitmask", rows, row_len, matrix[matrix != 0].astype(np.int8),
                          mask=mask.ravel(), row_stride=words)


def encode_lut(matrix: np.ndarray) -> WeightEncoding | None:
    """None when the matrix has more than 128 distinct values (an index would need 8 bits)."""
    rows, row_len = matrix.shape
    table, codes = np.unique(matrix, return_inverse=True)
    if len(table) > 128:
        return None
    bits = max(1, math.ceil(math.log2(len(table))))
    row_bytes = -(-row_len * bits // 8)
    codes = codes.reshape(rows, row_len).astype(np.uint32)
    stream = np.zeros((rows, row_bytes * 8), dtype=np.uint8)
    for bit in range(bits):
        stream[:, np.arange(row_len) * bits + bit] = (codes >> bit) & 1
    packed = np.packbits(stream, axis=1, bitorder="little").tobytes()
    return WeightEncoding("lut", rows, row_len, table.astype(np.int8), indices=packed,
                          index_bits=bits, row_stride=row_bytes)


def choose_encoding(matrix: np.ndarray, allowed: tuple[str, ...] = FORMATS) -> WeightEncoding:
    """The smallest allowed encoding of an int8 (rows, row_len) matrix; dense wins ties."""
    matrix = np.asarray(matrix, dtype=np.int8)
    candidates = [encode_dense(matrix)]
    if "bitmask" in allowed:
        candidates.append(encode_bitmask(matrix))
    if "lut" in allowed:
        lut = encode_lut(matrix)
        if lut is not None:
            candidates.append(lut)
    return min(candidates, key=lambda encoding: encoding.stored_bytes)


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

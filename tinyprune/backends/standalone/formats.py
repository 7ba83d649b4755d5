"""Per-layer weight storage: a weight matrix (one row per output channel) is stored in the smallest of
the forms the kernels compute from directly, skipping zero weights (no decoding into RAM):

- dense: the int8 values, row after row;
- bitmask: per row, 32-bit words with a bit per position marking the nonzeros (position p of a word is
  bit 31 - p, so a count-leading-zeros finds the next one), then the nonzero values;
- delta: one stream over the rows, read as one sequence of positions (a row's trailing zeros count
  into the next row's first gap): per nonzero a `code_bits`-bit gap code, then its int8 value. A gap
  code c below the escape 2^bits - 1 says "c zeros, then a nonzero"; the escape says "that many zeros, no
  nonzero yet" and has no value. The stream ends with the gap to a nonzero one past the last row's end
  (with a zero value field), so a reader can always decode the next nonzero ahead;
- lut: a table of the k distinct values and, per position, a ceil(log2 k)-bit index (rows start on a
  byte boundary);
- bitmask_lut, delta_lut (sparse clustered): the nonzeros' positions as in bitmask or delta, their values
  as ceil(log2 k)-bit indices into a table of the k distinct nonzero values (bitmask_lut: one stream of
  indices over the rows; delta_lut: each index beside its gap code).

Bit streams (indices, codes) are little-endian: item i takes bits i * bits .. i * bits + bits - 1, bit b
of the stream being bit b % 8 of byte b / 8. The streams read item after item (gap codes, the nonzeros'
indices) end with STREAM_PADDING zero bytes, so that a kernel reads any item with one 32-bit load.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FORMATS = ("dense", "bitmask", "delta", "lut", "bitmask_lut", "delta_lut")
# the forms the kernels walk fastest, the default: a count-leading-zeros finds each nonzero of a bitmask,
# and bitmask_lut's values are 4-bit indices (up to 16 clusters; a smaller table's indices are widened to
# 4 bits), which the walks read two a byte; the others save flash (gap codes near the positions' entropy,
# 2- or 3-bit indices) and, read a few bits at a time, take several times the instructions (bench: the
# pruned digits demo)
FAST_FORMATS = ("dense", "bitmask", "lut", "bitmask_lut")
FAST_INDEX_BITS = 4  # the bitmask_lut index width the fast walks read (tp_weights.h, TP_*_LUT4)
FORMAT_SETS = {"fast": FAST_FORMATS, "smallest": FORMATS}
STREAM_PADDING = 3  # bytes after a gap-code or nonzero-index stream: a 32-bit load at its last byte stays inside
MAX_TABLE = 128  # values a table holds: 7-bit indices (8-bit ones are never smaller than int8 values)


@dataclass(frozen=True)
class WeightEncoding:
    format: str
    rows: int
    row_len: int
    values: np.ndarray  # int8: dense all values, bitmask the nonzeros, *lut the table (delta: none)
    mask: np.ndarray | None = None  # uint32 words (bitmask)
    indices: bytes | None = None  # packed indices (lut: of every position, bitmask_lut: of the nonzeros)
    index_bits: int = 0  # *lut: bits an index
    row_stride: int = 0  # bitmask*: words a row; lut: index bytes a row
    codes: bytes | None = None  # delta*: gap codes and the nonzeros' values or indices
    code_bits: int = 0  # delta*: bits a gap code

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


def pack_bits(items, bits: int, padding: int = 0) -> bytes:
    """Unsigned `items` (each below 2^bits) as one little-endian bit stream, padded to whole bytes, then
    `padding` zero bytes."""
    items = np.asarray(items, dtype=np.uint32).ravel()
    stream = ((items[:, None] >> np.arange(bits, dtype=np.uint32)) & 1).astype(np.uint8).ravel()
    return np.packbits(stream, bitorder="little").tobytes() + bytes(padding)


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


def _pack_fields(items, widths, padding: int) -> bytes:
    """Unsigned `items`, item i `widths[i]` bits wide, as one little-endian bit stream, then `padding` zero bytes."""
    bits = [(item >> bit) & 1 for item, width in zip(items, widths) for bit in range(width)]
    return np.packbits(np.asarray(bits, dtype=np.uint8), bitorder="little").tobytes() + bytes(padding)


def encode_delta(matrix: np.ndarray, value_table: bool = False) -> WeightEncoding | None:
    """A gap-code stream with each nonzero's value beside its gap, at the gap width that makes it
    shortest; values as int8 or (value_table) as indices into the nonzeros' table (None when that table
    would exceed MAX_TABLE)."""
    rows, row_len = matrix.shape
    nonzeros = matrix[matrix != 0]
    table = np.zeros(0, dtype=np.int8)
    if value_table:
        table, values = np.unique(nonzeros, return_inverse=True)
        if not 0 < len(table) <= MAX_TABLE:
            return None
        value_bits = _bits_for(len(table))
    else:
        values, value_bits = nonzeros.astype(np.uint8), 8
    gaps = _gaps(matrix)
    values = np.append(values.astype(np.int64), 0)  # the terminator's value field: zeros

    def stream_bits(gap_bits: int) -> int:
        return int((gaps // ((1 << gap_bits) - 1)).sum()) * gap_bits + len(gaps) * (gap_bits + value_bits)

    gap_bits = min(range(1, 9), key=lambda bits: -(-stream_bits(bits) // 8))
    escape = (1 << gap_bits) - 1
    items, widths = [], []
    for gap, value in zip(gaps.tolist(), values.tolist()):
        items += [escape] * (gap // escape) + [gap % escape, value]
        widths += [gap_bits] * (gap // escape + 1) + [value_bits]
    return WeightEncoding("delta_lut" if value_table else "delta", rows, row_len, table.astype(np.int8),
                          codes=_pack_fields(items, widths, STREAM_PADDING), code_bits=gap_bits,
                          index_bits=value_bits if value_table else 0)


def decode_delta(codes: bytes, gap_bits: int, value_bits: int, end: int) -> tuple[np.ndarray, np.ndarray, int]:
    """What a kernel reads from a gap-code stream: the flat (row-major) positions of the nonzeros up to
    the terminator at or past `end` (included; absent when the stream ends first), their value fields
    (int8 as unsigned bytes, or table indices) and the bits read: for tests and the export-time contract."""
    stream = np.unpackbits(np.frombuffer(bytes(codes), dtype=np.uint8), bitorder="little").tolist()
    escape = (1 << gap_bits) - 1
    positions, values, bit, position = [], [], 0, -1

    def field(width: int) -> int | None:
        nonlocal bit
        if bit + width > len(stream):
            return None
        bit += width
        return sum(stream[bit - width + i] << i for i in range(width))

    while position < end and (gap := field(gap_bits)) is not None:
        position += gap
        if gap == escape:
            continue
        value = field(value_bits)
        if value is None:
            break
        position += 1
        positions.append(position)
        values.append(value)
    return np.asarray(positions, dtype=np.int64), np.asarray(values, dtype=np.int64), bit


def _nonzero_values(matrix: np.ndarray, positions: str, value_table: bool, min_index_bits: int = 1) -> dict | None:
    """The value fields of a sparse encoding: int8 nonzeros, or a table and indices packed at least
    `min_index_bits` wide."""
    rows, row_len = matrix.shape
    nonzeros = matrix[matrix != 0]
    if not value_table:
        return dict(format=positions, rows=rows, row_len=row_len, values=nonzeros.astype(np.int8))
    table, indices = np.unique(nonzeros, return_inverse=True)
    if len(table) > MAX_TABLE or len(table) == 0:
        return None
    bits = max(min_index_bits, _bits_for(len(table)))
    return dict(format=f"{positions}_lut", rows=rows, row_len=row_len, values=table.astype(np.int8),
                indices=pack_bits(indices, bits, STREAM_PADDING), index_bits=bits)


def encode_bitmask(matrix: np.ndarray, value_table: bool = False, min_index_bits: int = 1) -> WeightEncoding | None:
    rows, row_len = matrix.shape
    words = -(-row_len // 32)
    nonzero = np.zeros((rows, words * 32), dtype=bool)
    nonzero[:, :row_len] = matrix != 0
    bit_values = (1 << np.arange(31, -1, -1, dtype=np.uint64)).astype(np.uint64)  # position 0 = bit 31
    mask = (nonzero.reshape(rows, words, 32).astype(np.uint64) * bit_values).sum(axis=2).astype(np.uint32)
    values = _nonzero_values(matrix, "bitmask", value_table, min_index_bits)
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


def encodings(matrix: np.ndarray, allowed: tuple[str, ...] = FAST_FORMATS,
              fast_walks: bool | None = None) -> dict[str, WeightEncoding]:
    """Every allowed encoding of an int8 (rows, row_len) matrix that can hold it, dense first; with
    `fast_walks` (default: when `allowed` is the fast storage's FAST_FORMATS), bitmask_lut only where its
    indices take FAST_INDEX_BITS (at most 16 values, widened)."""
    matrix = np.asarray(matrix, dtype=np.int8)
    fast_walks = tuple(allowed) == FAST_FORMATS if fast_walks is None else fast_walks
    encoders = {"bitmask": lambda: encode_bitmask(matrix), "delta": lambda: encode_delta(matrix),
                "lut": lambda: encode_lut(matrix),
                "bitmask_lut": lambda: encode_bitmask(matrix, True, FAST_INDEX_BITS if fast_walks else 1),
                "delta_lut": lambda: encode_delta(matrix, True)}
    found = {"dense": encode_dense(matrix)}
    found.update({name: encoders[name]() for name in FORMATS[1:] if name in allowed})
    if fast_walks and found.get("bitmask_lut") and found["bitmask_lut"].index_bits != FAST_INDEX_BITS:
        found["bitmask_lut"] = None
    return {name: encoding for name, encoding in found.items() if encoding is not None}


def choose_encoding(matrix: np.ndarray, allowed: tuple[str, ...] = FAST_FORMATS) -> WeightEncoding:
    """The smallest allowed encoding of an int8 (rows, row_len) matrix; dense wins ties."""
    return min(encodings(matrix, allowed).values(), key=lambda encoding: encoding.stored_bytes)


# Code bytes of each weighted kernel without any sparse format ("") and of each format's path in it:
# arm-none-eabi-gcc 12 -O2 for the Cortex-M4, measured by bench/format_code.py (a slow test re-measures).
KERNEL_CODE_BYTES = {
    "tp_conv2d": {"": 516, "bitmask": 460, "delta": 572, "lut": 448, "bitmask_lut": 604, "delta_lut": 612},
    "tp_fully_connected": {"": 228, "bitmask": 80, "delta": 240, "lut": 144, "bitmask_lut": 200, "delta_lut": 316},
}


# Instructions of each weighted kernel per format, as (per MAC, per MAC on a nonzero weight): a dense layer
# (tp_gemm for convolutions and fully connected layers) takes per_mac * MACs, a bitmask one per_mac * MACs +
# per_nonzero * nonzero MACs. Measured by bench/format_speed.py: qemu mps2-an386 (Cortex-M4, -icount),
# arm-none-eabi-gcc 12 -O2, the profiled build of the zoo's int8 DS-CNN (49x10 input: a 10x4 stride-2
# convolution, four 3x3 depthwise and four 1x1 convolutions of 64 channels, a 64x12 fully connected layer)
# with each layer's smallest weights zeroed, at 75 % and 90 % (two builds solve the two terms).
# `--weight-storage fast` stores a layer in a format stated here only where its estimate is below dense's:
# a pruned depthwise layer stays dense (its walks cost more than the MACs they skip), a convolution takes
# the bitmask from about 64 % zeros, a fully connected layer from about 63 %. LUT rows are weighed only in
# the depthwise kernel; bench/format_speed.py --formats lut measures them slower than dense in the others
# too (conv 5.53 + 4.79, FC 16.14 + 2.43), but weighing them there would store clustered models dense.
# bitmask_lut is measured on 16 clustered nonzeros a tensor (4-bit indices, the fast walks'): a fully
# connected layer takes it from about 73 % zeros. The convolution's figure is its in-place pointwise path's
# (most of DS-CNN's MACs), which walks the stored indices again for every four pixels; its pooled and plain
# paths unpack a row once and take about 3 % more than the int8 bitmask (the digits demo's conv_2: 86,367
# against 83,967 instructions); by the estimate a convolution takes it from about 79 % zeros.
KERNEL_INSTRUCTIONS = {
    "tp_conv2d": {"dense": (2.13, 0.0), "bitmask": (0.76, 3.78), "bitmask_lut": (0.79, 6.42)},
    "tp_depthwise_conv2d": {"dense": (3.60, 0.0), "bitmask": (11.63, 46.27), "lut": (30.87, 33.69)},
    "tp_fully_connected": {"dense": (3.46, 0.0), "bitmask": (0.89, 6.96), "bitmask_lut": (1.12, 8.35)},
}


def estimated_instructions(kernel: str, form: str, matrix: np.ndarray) -> float | None:
    """KERNEL_INSTRUCTIONS' estimate for one use of each weight of `matrix` stored in `form` (None: not stated)."""
    per_mac, per_nonzero = KERNEL_INSTRUCTIONS.get(kernel, {}).get(form, (None, None))
    return None if per_mac is None else per_mac * matrix.size + per_nonzero * np.count_nonzero(matrix)


def no_slower_than_dense(kernel: str, matrix: np.ndarray,
                         options: dict[str, WeightEncoding]) -> dict[str, WeightEncoding]:
    """The `options` (encodings of `matrix`) but those KERNEL_INSTRUCTIONS estimates at least as slow in
    `kernel` as dense (formats or kernels it does not state are kept)."""
    dense = estimated_instructions(kernel, "dense", matrix)
    slower = {name for name in options if name != "dense" and dense is not None
              and (estimate := estimated_instructions(kernel, name, matrix)) is not None and estimate >= dense}
    return {name: encoding for name, encoding in options.items() if name not in slower}


def formats_worth_compiling(layers: dict[tuple[str, str], dict[str, int]]) -> dict[str, tuple[str, ...]]:
    """Per weighted kernel, the formats worth compiling into it: the subset of its layers' sparse
    candidates ((kernel, layer) -> {format: stored bytes}) whose code plus the layers' bytes (each
    layer the smallest of dense and the subset) is least. A format saving a layer fewer bytes than its
    path costs is left out, and the kernel with it when no layer needs it."""
    chosen = {}
    for kernel, code in KERNEL_CODE_BYTES.items():
        sizes = [candidates for (owner, _), candidates in layers.items() if owner == kernel]
        sparse = sorted({name for candidates in sizes for name in candidates if name in code and name})

        def total(subset: tuple[str, ...]) -> int:
            stored, used = 0, set()
            for candidates in sizes:
                options = [("dense", candidates["dense"])] + [(f, candidates[f]) for f in subset if f in candidates]
                name, size = min(options, key=lambda option: option[1])
                stored += size
                used.add(name)
            used.discard("dense")
            return stored + (code[""] + sum(code[f] for f in used) if used else 0)

        subsets = [tuple(f for bit, f in enumerate(sparse) if mask >> bit & 1) for mask in range(1 << len(sparse))]
        if sizes:
            chosen[kernel] = ("dense",) + min(subsets, key=lambda subset: (total(subset), len(subset)))
    return chosen


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

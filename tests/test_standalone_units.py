"""The standalone backend's pure-Python parts: TFLM's multiplier arithmetic, the arena plan, the
weight storage forms (decoded back here in numpy to prove they hold the same matrix)."""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.backends.standalone.formats import (
    choose_encoding,
    encode_bitmask,
    encode_lut,
)
from tinyprune.backends.standalone.plan import BufferRequest, plan_arena
from tinyprune.backends.standalone.quantized import (
    activation_range,
    mean_multiplier,
    quantize_multiplier,
)


@pytest.mark.parametrize("real, expected", [(0.5, (1 << 30, 0)), (1.0, (1 << 30, 1)), (0.75, (3 << 29, 0)),
                                            (0.0, (0, 0)), (2.0**-40, (0, 0))])
def test_quantize_multiplier_known_values(real, expected):
    assert quantize_multiplier(real) == expected


@given(st.floats(min_value=2.0**-30, max_value=2.0**20, allow_nan=False))
def test_quantize_multiplier_represents_the_real_value(real):
    multiplier, shift = quantize_multiplier(real)
    assert (1 << 30) <= multiplier < (1 << 31)
    assert abs(multiplier * 2.0 ** (shift - 31) - real) <= real * 2.0**-31


def test_quantize_multiplier_rounds_half_away_from_zero():
    # 0.5 + 2^-32 has fraction 0.5 + 2^-32: its Q31 value is 2^30 + 0.5, which C's round() takes up
    assert quantize_multiplier(0.5 + 2.0**-32) == ((1 << 30) + 1, 0)


def test_activation_range_of_relu_and_relu6():
    assert activation_range("NONE", 0.05, 3) == (-128, 127)
    assert activation_range("RELU", 0.05, -128) == (-128, 127)
    assert activation_range("RELU", 0.05, 10) == (10, 127)
    assert activation_range("RELU6", 0.05, -128) == (-128, -8)


def test_mean_multiplier_folds_the_count_in():
    multiplier, shift = mean_multiplier(0.02, 0.01, 16)
    assert math.isclose(multiplier * 2.0 ** (shift - 31), 2.0 / 16, rel_tol=1e-8)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(0, 12), st.integers(0, 6)), min_size=1, max_size=25))
def test_arena_plan_never_overlaps_live_buffers(spec):
    requests = [BufferRequest(key, size, first, first + length) for key, (size, first, length) in enumerate(spec)]
    plan = plan_arena(requests)
    for a in requests:
        start = plan.offsets[a.key]
        assert start % 4 == 0 and start + a.size <= plan.size
        for b in requests:
            live_together = a.first <= b.last and b.first <= a.last
            if a.key < b.key and live_together:
                other = plan.offsets[b.key]
                assert start + a.size <= other or other + b.size <= start
    peak = max(sum(-(-r.size // 4) * 4 for r in requests if r.first <= step <= r.last) for step in range(20))
    assert plan.size >= plan.lower_bound == peak


def test_arena_plan_reports_the_live_bytes_bound_and_beats_largest_first_placement():
    requests = [BufferRequest(0, 16, 0, 1), BufferRequest(1, 12, 1, 2), BufferRequest(2, 16, 0, 2),
                BufferRequest(3, 16, 4, 4), BufferRequest(4, 4, 2, 4)]
    # largest first puts buffer 1 above buffers 0 and 2 (at 32): 44 + 4 for the last one = 48 B
    plan = plan_arena(requests)
    assert plan.lower_bound == 44  # step 1: buffers 0, 1 and 2 alive
    assert plan.size == 44


def test_arena_plan_reuses_dead_buffers():
    plan = plan_arena([BufferRequest(0, 100, 0, 1), BufferRequest(1, 100, 1, 2), BufferRequest(2, 100, 2, 3)])
    assert plan.size == 200
    assert plan.offsets[0] == plan.offsets[2]


def _decode_bitmask(encoding):
    bits = np.unpackbits(encoding.mask.astype(">u4").view(np.uint8)).reshape(encoding.rows, -1)
    nonzero = bits[:, :encoding.row_len].astype(bool)
    matrix = np.zeros((encoding.rows, encoding.row_len), dtype=np.int8)
    matrix[nonzero] = encoding.values
    return matrix


def _decode_lut(encoding):
    stream = np.unpackbits(np.frombuffer(encoding.indices, dtype=np.uint8), bitorder="little")
    stream = stream.reshape(encoding.rows, -1)[:, :encoding.row_len * encoding.index_bits]
    codes = stream.reshape(encoding.rows, encoding.row_len, encoding.index_bits)
    indices = (codes.astype(np.int64) << np.arange(encoding.index_bits)).sum(axis=2)
    return encoding.values[indices]


def test_bitmask_and_lut_hold_the_matrix(rng):
    matrix = rng.integers(-127, 128, size=(7, 45)).astype(np.int8)
    matrix[rng.random(matrix.shape) < 0.7] = 0
    bitmask = encode_bitmask(matrix)
    assert np.array_equal(_decode_bitmask(bitmask), matrix)
    assert bitmask.stored_bytes == 7 * 2 * 4 + np.count_nonzero(matrix)
    clustered = rng.choice(np.array([-90, -3, 0, 17, 64], dtype=np.int8), size=(9, 33))
    lut = encode_lut(clustered)
    assert lut.index_bits == 3 and len(lut.values) == 5
    assert np.array_equal(_decode_lut(lut), clustered)


def test_choose_encoding_takes_the_smallest(rng):
    dense = rng.integers(-127, 128, size=(8, 64)).astype(np.int8)
    assert choose_encoding(dense).format == "dense"
    sparse = dense.copy()
    sparse[rng.random(sparse.shape) < 0.8] = 0
    assert choose_encoding(sparse).format == "bitmask"
    clustered = rng.choice(np.array([-5, 0, 5, 9], dtype=np.int8), size=(8, 64))
    assert choose_encoding(clustered).format == "lut"
    assert choose_encoding(sparse, ("dense",)).format == "dense"


def test_equal_constant_arrays_are_defined_once():
    from tinyprune.backends.standalone.codegen import _share_constants
    from tinyprune.backends.standalone.ops import ConstArray, Step

    def step(name, shift):
        arrays = [ConstArray(f"{name}_multiplier", "int32_t", [1 << 30]), ConstArray(f"{name}_shift", "int8_t", shift)]
        return Step("tp_gemm", "tp_gemm_params", name, [("requant.multiplier", arrays[0].name),
                                                        ("requant.shift", arrays[1].name), ("rows", 2)], [], None, arrays)

    steps = [step("a", [-3]), step("b", [-3]), step("c", [-4])]
    _share_constants(steps)
    assert [array.name for s in steps for array in s.arrays] == ["a_multiplier", "a_shift", "c_shift"]
    assert steps[1].fields == [("requant.multiplier", "a_multiplier"), ("requant.shift", "a_shift"), ("rows", 2)]
    assert steps[2].fields[:2] == [("requant.multiplier", "a_multiplier"), ("requant.shift", "c_shift")]


def test_gap_codes_and_value_tables_hold_the_matrix(rng):
    """delta: escapes of 2^bits - 1 zeros, then the gap and the value; the stream ends one past the last
    row; the *_lut forms index the nonzeros' table. Decoding each gives the matrix back."""
    from tinyprune.backends.standalone.formats import STREAM_PADDING, decode_delta, encode_delta, unpack_bits

    matrix = rng.choice(np.array([-90, -3, 17, 64], dtype=np.int8), size=(6, 40))
    matrix[rng.random(matrix.shape) < 0.85] = 0
    matrix[2] = 0  # an empty row
    for value_table in (False, True):
        delta = encode_delta(matrix, value_table)
        positions, fields, read = decode_delta(delta.codes, delta.code_bits, delta.index_bits or 8, matrix.size)
        assert positions[-1] == matrix.size and len(delta.codes) == -(-read // 8) + STREAM_PADDING
        values = delta.values[fields[:-1]] if value_table else fields[:-1].astype(np.uint8).view(np.int8)
        decoded = np.zeros(matrix.size, dtype=np.int8)
        decoded[positions[:-1]] = values
        assert np.array_equal(decoded.reshape(matrix.shape), matrix), delta.format
        bitmask = encode_bitmask(matrix, value_table)
        nonzeros = np.count_nonzero(matrix)
        values = (bitmask.values[unpack_bits(bitmask.indices, bitmask.index_bits, nonzeros)] if value_table
                  else bitmask.values)
        assert np.array_equal(_decode_bitmask(dataclasses.replace(bitmask, values=values)), matrix)
    assert encode_delta(matrix, True).index_bits == 2 and len(encode_delta(matrix, True).values) == 4


def test_the_smallest_format_follows_sparsity_and_clusters(rng):
    from tinyprune.backends.standalone.formats import FORMATS

    dense = rng.integers(-127, 128, size=(16, 144)).astype(np.int8)
    very_sparse = dense.copy()
    very_sparse[rng.random(dense.shape) < 0.95] = 0
    assert choose_encoding(very_sparse).format == "bitmask"  # the fast forms by default
    assert choose_encoding(very_sparse, FORMATS).format == "delta"
    clustered = rng.choice(np.array([-40, -7, 5, 30], dtype=np.int8), size=dense.shape)
    clustered[rng.random(dense.shape) < 0.75] = 0
    best, fast = choose_encoding(clustered, FORMATS), choose_encoding(clustered)
    assert best.format == "delta_lut" and best.index_bits == 2
    assert (fast.format, fast.index_bits) == ("bitmask_lut", 4)  # the fast walks' width
    assert best.stored_bytes < 0.85 * fast.stored_bytes < 0.6 * choose_encoding(clustered, ("dense", "bitmask")).stored_bytes


def test_a_gap_code_stream_cut_short_is_a_contract_error(rng):
    from tinyprune.backends.standalone.contracts import ContractError, check_steps
    from tinyprune.backends.standalone.ops import Step, _weight_fields
    from tinyprune.backends.standalone.formats import encode_delta

    matrix = rng.integers(-127, 128, size=(4, 50)).astype(np.int8)
    matrix[rng.random(matrix.shape) < 0.8] = 0
    fields, arrays = _weight_fields("fc", encode_delta(matrix))
    step = Step("tp_fully_connected", "tp_fully_connected_params", "fc", fields + [("out_depth", 4)], [], None, arrays)
    check_steps([step])
    codes = next(a for a in arrays if a.name == "fc_codes")
    codes.values = codes.values[:-1]
    with pytest.raises(ContractError, match="gap-code stream"):
        check_steps([step])


def test_a_format_is_compiled_only_where_it_saves_more_than_its_code():
    from tinyprune.backends.standalone.formats import KERNEL_CODE_BYTES, formats_worth_compiling

    code = KERNEL_CODE_BYTES["tp_fully_connected"]
    # one small layer: 40 bytes saved by a bitmask do not pay for the kernel: dense (tp_gemm)
    small = {("tp_fully_connected", "a"): {"dense": 200, "bitmask": 160, "delta": 150}}
    assert formats_worth_compiling(small)["tp_fully_connected"] == ("dense",)
    # large layers: the gap codes save more than their path costs over the bitmask's
    saved = code["delta"] - code["bitmask"] + 100
    large = {("tp_fully_connected", name): {"dense": 8000, "bitmask": 3000, "delta": 3000 - saved // 2}
             for name in ("a", "b")}
    assert formats_worth_compiling(large)["tp_fully_connected"] == ("dense", "delta")
    # both paths where each saves one layer more than its own code
    mixed = {("tp_fully_connected", "a"): {"dense": 8000, "bitmask": 3000, "delta": 3000 - code["delta"] - 50},
             ("tp_fully_connected", "b"): {"dense": 8000, "bitmask": 2000, "delta": 2000 + code["bitmask"] + 50}}
    assert formats_worth_compiling(mixed)["tp_fully_connected"] == ("dense", "bitmask", "delta")


def test_fast_storage_keeps_dense_where_a_sparse_walk_is_slower(rng):
    """`fast`: a sparse format only where KERNEL_INSTRUCTIONS estimates it below dense. A 75 %-pruned
    depthwise layer (9 taps a channel) stays dense although the bitmask is smaller; a 95 %-pruned
    convolution and fully connected layer take the bitmask; a half-pruned convolution stays dense."""
    from tinyprune.backends.standalone.formats import FAST_FORMATS, encodings, no_slower_than_dense
    from tinyprune.backends.standalone.ops import DEPTHWISE_FORMATS

    def fastest_smallest(kernel, matrix):
        allowed = tuple(f for f in FAST_FORMATS if kernel != "tp_depthwise_conv2d" or f in DEPTHWISE_FORMATS)
        options = no_slower_than_dense(kernel, matrix, encodings(matrix, allowed, fast_walks=True))
        return min(options.values(), key=lambda encoding: encoding.stored_bytes).format

    depthwise = rng.integers(1, 128, size=(64, 9)).astype(np.int8)
    depthwise[:, rng.permutation(9)[:7]] = 0
    assert choose_encoding(depthwise).format == "bitmask"  # the smallest
    assert fastest_smallest("tp_depthwise_conv2d", depthwise) == "dense"
    convolution = rng.choice(np.r_[-127:0, 1:128], size=(32, 288)).astype(np.int8)  # too many values for a LUT
    very_sparse, half = convolution.copy(), convolution.copy()
    very_sparse[rng.random(convolution.shape) < 0.95] = 0
    half[rng.random(convolution.shape) < 0.5] = 0
    assert fastest_smallest("tp_conv2d", very_sparse) == "bitmask"
    assert fastest_smallest("tp_fully_connected", very_sparse) == "bitmask"
    assert choose_encoding(half).format == "bitmask" and fastest_smallest("tp_conv2d", half) == "dense"


@pytest.mark.parametrize("clusters, chosen, bits", [(16, "bitmask_lut", 4), (5, "bitmask_lut", 4), (32, "bitmask", 0)])
def test_fast_storage_takes_cluster_indices_the_fast_walks_read(rng, clusters, chosen, bits):
    """`fast` stores a pruned, clustered fully connected layer's nonzeros as 4-bit table indices (the width the
    walks read two a byte; a table of 5 values is widened to it), and a layer of 32 values as int8 nonzeros:
    5-bit indices have no fast walk."""
    from tinyprune.backends.standalone.formats import FAST_FORMATS, encodings, no_slower_than_dense

    values = np.r_[-clusters // 2:0, 1:clusters - clusters // 2 + 1]
    matrix = rng.choice(values, size=(64, 128)).astype(np.int8)
    matrix[rng.random(matrix.shape) < 0.8] = 0
    options = no_slower_than_dense("tp_fully_connected", matrix, encodings(matrix, FAST_FORMATS))
    smallest = min(options.values(), key=lambda encoding: encoding.stored_bytes)
    assert (smallest.format, smallest.index_bits) == (chosen, bits)

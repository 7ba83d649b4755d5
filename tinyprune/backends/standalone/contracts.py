"""What the C kernels assume of the parameters model.c hands them, checked when the C is generated, so that
a broken assumption is an error here and never undefined behaviour on the board:

- shifts: a multiplier's shift lies in [-31, 30] (the kernels shift left by at most 30 and right by at
  most 31 bits; TFLM's QuantizeMultiplier gives that range), a plain left shift in [0, 31] (SOFTMAX's,
  LOGISTIC's and TANH's input shift too: TFLM's input radius shifts by it);
- weights: a bitmask holds `row_stride` words a row and a compressed convolution row has a tap table with
  one entry a position; a LUT index stream holds exactly `row_stride` bytes a row (the kernel reads no
  byte past it), indices of 1 to 8 bits into a table they cannot overrun; a gap-code stream ends with its
  terminator past the last row (a reader stops there); gap-code and nonzero-index streams end with
  STREAM_PADDING bytes (a 32-bit load of their last item stays inside); the nonzeros' values or indices
  number exactly the nonzeros the positions mark;
- a fused pool's window holds 2 to POOL_MEMBERS convolution outputs (tp_conv2d's offset table).

A shift out of range comes from the model (a scale TFLM cannot compute either): a TinypruneError naming the
layer. Anything else is a bug in the lowering: a ContractError."""
from __future__ import annotations

from tinyprune.errors import TinypruneError
from tinyprune.backends.standalone.ops import POOL_MEMBERS
from tinyprune.backends.standalone.formats import STREAM_PADDING, decode_delta, unpack_bits

MULTIPLIER_SHIFT = (-31, 30)
LEFT_SHIFT = (0, 31)
# field -> the range of its shift; "requant.shift" names an int8_t array
SHIFT_FIELDS = {
    "input1_shift": MULTIPLIER_SHIFT, "input2_shift": MULTIPLIER_SHIFT, "output_shift": MULTIPLIER_SHIFT,
    "shift": MULTIPLIER_SHIFT, "requant.shift": MULTIPLIER_SHIFT, "left_shift": LEFT_SHIFT,
    "input_left_shift": LEFT_SHIFT,
}
ROWS_FIELD = {"tp_conv2d_params": "out_c", "tp_depthwise_conv2d_params": "out_c",
              "tp_fully_connected_params": "out_depth", "tp_gemm_params": "out_c"}


class ContractError(RuntimeError):
    """The lowering produced parameters the C kernels cannot take: a bug in tinyprune."""


def check_steps(steps) -> None:
    """Raise on the first step whose parameters break a kernel's assumption (steps are named after
    their layer and operator)."""
    for step in steps:
        fields = dict(step.fields)
        arrays = {array.name: array for array in step.arrays}
        for name, value in fields.items():
            allowed = SHIFT_FIELDS.get(name)
            if allowed is None:
                continue
            values = arrays[value].values if isinstance(value, str) else [value]
            bad = [v for v in values if not allowed[0] <= v <= allowed[1]]
            if bad:
                raise TinypruneError(
                    f"{step.name}: a rescaling shift of {bad[0]} is outside [{allowed[0]}, {allowed[1]}] "
                    f"({step.kernel}.{name}), a scale ratio TFLM cannot compute either",
                    "check the model's quantization: an activation range that is near zero or huge "
                    "(recalibrate with representative data)")
        if "weights.format" in fields:
            _check_weights(step, fields, arrays)
        members = fields.get("pool_h", 0) * fields.get("pool_w", 0)
        _require(members == 0 or 2 <= members <= POOL_MEMBERS, step, f"a fused pool window of {members} outputs")


def _check_weights(step, fields: dict, arrays: dict) -> None:
    form = fields["weights.format"]
    row_len, row_stride = fields["weights.row_len"], fields["weights.row_stride"]
    rows = fields.get(ROWS_FIELD.get(step.params_type, ""))
    values = arrays[fields["weights.values"]].values if "weights.values" in fields else []
    index_bits = fields["weights.index_bits"]
    if form == "TP_DENSE":
        return
    if form in ("TP_LUT", "TP_BITMASK_LUT", "TP_DELTA_LUT"):
        _require(1 <= index_bits <= 8 and len(values) <= 1 << index_bits, step,
                 f"{len(values)} values, {index_bits}-bit indices")
    if form == "TP_LUT":
        indices = arrays[fields["weights.indices"]].values
        _require(row_stride == -(-row_len * index_bits // 8) and len(indices) == rows * row_stride, step,
                 f"index stream of {len(indices)} bytes for {rows} rows of {row_stride}")
    elif form.startswith("TP_BITMASK"):
        mask = arrays[fields["weights.mask"]].values
        _require(row_stride == -(-row_len // 32) and len(mask) == rows * row_stride, step,
                 f"bitmask of {len(mask)} words for {rows} rows of {row_len}")
        nonzeros = sum(bin(word).count("1") for word in mask)
        if form == "TP_BITMASK":
            _require(len(values) == nonzeros, step, f"{len(values)} values for {nonzeros} nonzeros")
        else:
            indices = arrays[fields["weights.indices"]].values
            _require(len(indices) == -(-nonzeros * index_bits // 8) + STREAM_PADDING, step,
                     f"{len(indices)} index bytes for {nonzeros} nonzeros of {index_bits} bits")
            _require(int(unpack_bits(bytes(indices), index_bits, nonzeros).max(initial=0)) < len(values), step,
                     "an index past the table")
    elif form in ("TP_DELTA", "TP_DELTA_LUT"):
        gap_bits, codes = fields["weights.code_bits"], arrays[fields["weights.codes"]].values
        _require(1 <= gap_bits <= 8, step, f"{gap_bits}-bit gap codes")
        value_bits = index_bits if form == "TP_DELTA_LUT" else 8
        positions, fields_read, read = decode_delta(bytes(codes), gap_bits, value_bits, rows * row_len)
        _require(len(positions) > 0 and positions[-1] >= rows * row_len
                 and len(codes) == -(-read // 8) + STREAM_PADDING, step,
                 f"a gap-code stream of {len(codes)} bytes that does not end where the rows do")
        _require(form == "TP_DELTA" or int(fields_read[:-1].max(initial=0)) < len(values), step,
                 "an index past the table")
    else:
        _require(False, step, f"unknown weight format {form}")
    if step.params_type == "tp_conv2d_params":
        taps = arrays.get(fields.get("taps", ""))
        _require(taps is not None and len(taps.values) == row_len, step, "compressed rows need a tap table")


def _require(condition: bool, step, what: str) -> None:
    if not condition:
        raise ContractError(f"{step.name} ({step.kernel}): {what}")

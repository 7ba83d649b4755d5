"""One lowering a TFLite op: the op's tensors and options -> the kernel calls that compute it, with
their constant parameters computed as TFLM's Prepare step computes them (see quantized.py).

A lowering reads the graph through a `Lowering` context (codegen.py) and adds `Step`s to it: the
kernel to call, the fields of its parameter struct, the constant arrays it needs, and the buffers it
reads and writes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyprune.errors import TinypruneError
from tinyprune.backends.standalone import quantized
from tinyprune.backends.standalone.formats import WeightEncoding, encode_dense, interleave_row_pairs
from tinyprune.graph.ir import Operator, Tensor


@dataclass
class ConstArray:
    name: str
    ctype: str  # int8_t, int32_t, uint32_t, uint16_t, uint8_t, or tp_tap (codegen.tap_bytes)
    values: list[int]


@dataclass
class LayerReport:
    """What the report shows per weighted layer."""

    layer: str
    op: str
    format: str
    dense_bytes: int
    stored_bytes: int
    macs: int
    macs_skipped: int
    fused: str = ""  # an operator computed inside this layer's kernel, e.g. "MAX_POOL_2D (pool_1)"

    @property
    def bytes_saved(self) -> int:
        return self.dense_bytes - self.stored_bytes


@dataclass
class Step:
    kernel: str  # the C function, e.g. "tp_conv2d"
    params_type: str  # its parameter struct, e.g. "tp_conv2d_params"
    name: str  # the C identifier of this step's parameters
    fields: list[tuple[str, object]]  # designated initializer: ("weights.values", "conv_values"), ...
    inputs: list  # Buffers read, in the kernel's argument order
    output: object  # the Buffer written
    arrays: list[ConstArray] = field(default_factory=list)
    in_place: bool = False  # may write over an input that dies here (element-wise ops, staged kernels)
    staging: bool = False  # its last input is scratch used only when it writes over its input (codegen drops it)
    input_list: str = ""  # CONCATENATION: name of the local array of input pointers
    kind: str = ""  # what profiles group steps by: the kernel without its prefix unless a lowering says
    macs: int = 0  # multiply-accumulates of a weighted layer's step (from its LayerReport)

    def __post_init__(self):
        self.kind = self.kind or self.kernel.removeprefix("tp_")


SHORT_ROW = 8  # dense kernel rows (kernel_w x in_c bytes) shorter than this go through a tap table
DEPTHWISE_FORMATS = ("dense", "bitmask", "lut")  # what tp_depthwise_conv2d.c computes from


def _scale(tensor: Tensor) -> float:
    return tensor.quantization.scale[0]


def _zero_point(tensor: Tensor) -> int:
    return tensor.quantization.zero_point[0]


def _activation(op: Operator, output: Tensor) -> tuple[int, int]:
    return quantized.activation_range(op.options.get("fused_activation_function", "NONE"),
                                      _scale(output), _zero_point(output))


def _nhwc(tensor: Tensor) -> tuple[int, int, int]:
    if len(tensor.shape) != 4 or tensor.shape[0] != 1:
        raise TinypruneError(f"tensor {tensor.name!r} has shape {tensor.shape}, not [1, H, W, C]",
                             "export the model with batch size 1")
    return tensor.shape[1], tensor.shape[2], tensor.shape[3]


def same_or_valid_padding(padding: str, in_size: int, filter_size: int, stride: int, dilation: int,
                          out_size: int) -> tuple[int, int]:
    """TFLM's ComputePaddingHeightWidth along one axis: (before, after)."""
    effective = (filter_size - 1) * dilation + 1
    total = max((out_size - 1) * stride + effective - in_size, 0) if padding == "SAME" else 0
    return total // 2, total - total // 2


def _requant_fields(name: str, input_scale: float, filter_scales, output: Tensor,
                    activation: tuple[int, int]) -> tuple[list, list[ConstArray]]:
    pairs = quantized.channel_multipliers(input_scale, filter_scales, _scale(output))
    arrays = [ConstArray(f"{name}_multiplier", "int32_t", [m for m, _ in pairs]),
              ConstArray(f"{name}_shift", "int8_t", [s for _, s in pairs])]
    fields = [("requant.multiplier", arrays[0].name), ("requant.shift", arrays[1].name),
              ("requant.per_channel", int(len(pairs) > 1)),
              ("requant.output_zero_point", _zero_point(output)),
              ("requant.activation_min", activation[0]), ("requant.activation_max", activation[1])]
    return fields, arrays


def _folded_bias(ctx, op: Operator, weights: np.ndarray, input_zero_point: int, name: str) -> ConstArray:
    """bias - input_zero_point * sum(row): TFLM adds the offset to every input, we once per row."""
    bias = (ctx.tensor(op.inputs[2]).numpy().astype(np.int64) if len(op.inputs) > 2 and op.inputs[2] >= 0
            else np.zeros(weights.shape[0], dtype=np.int64))
    folded = bias - input_zero_point * weights.astype(np.int64).sum(axis=1)
    if np.abs(folded).max(initial=0) >= 2**31:
        raise TinypruneError(f"layer {ctx.layer(op)!r}: a bias overflows int32 once the input offset is "
                             "folded in", "check the model's quantization (bias scale)")
    return ConstArray(f"{name}_bias", "int32_t", folded.tolist())


def _weight_fields(name: str, encoding: WeightEncoding) -> tuple[list, list[ConstArray]]:
    arrays = [ConstArray(f"{name}_values", "int8_t", encoding.values.tolist())] if encoding.values.size else []
    fields = [("weights.values", arrays[0].name)] if arrays else []
    fields += [("weights.row_len", encoding.row_len),
              ("weights.row_stride", encoding.row_stride),
              ("weights.format", f"TP_{encoding.format.upper()}"), ("weights.index_bits", encoding.index_bits),
              ("weights.code_bits", encoding.code_bits)]
    if encoding.mask is not None:
        arrays.append(ConstArray(f"{name}_mask", "uint32_t", encoding.mask.tolist()))
        fields.append(("weights.mask", arrays[-1].name))
    if encoding.indices is not None:
        arrays.append(ConstArray(f"{name}_indices", "uint8_t", list(encoding.indices)))
        fields.append(("weights.indices", arrays[-1].name))
    if encoding.codes is not None:
        arrays.append(ConstArray(f"{name}_codes", "uint8_t", list(encoding.codes)))
        fields.append(("weights.codes", arrays[-1].name))
    return fields, arrays


def _report(ctx, op: Operator, encoding: WeightEncoding, matrix: np.ndarray, uses: int,
            pool: FusedPool | None = None) -> LayerReport:
    """`uses`: how many times each weight is multiplied in one inference (output pixels or batches)."""
    zeros = int(matrix.size - np.count_nonzero(matrix))
    return LayerReport(ctx.layer(op), op.opcode, encoding.format, encoding.dense_bytes,
                       encoding.stored_bytes, uses * matrix.size, zeros * uses if encoding.skips_zeros else 0,
                       f"MAX_POOL_2D ({ctx.layer(pool.op)})" if pool else "")


POOL_MEMBERS = 16  # the most convolution outputs one fused pooling window may take (tp_conv2d's offset table)


@dataclass(frozen=True)
class FusedPool:
    """A MAX_POOL_2D computed inside the convolution that feeds it: each pooled output is the largest
    accumulator of its window's convolution outputs, requantized once.

    That equals TFLM's max of requantized values because the requantization is monotone non-decreasing:
    acc -> acc * 2^left_shift (no int32 wrap: checked below against the accumulator's bound), the
    doubling high multiply by a multiplier >= 0 (floor((acc * m + 2^30) / 2^31), non-decreasing in acc),
    the rounding right shift (round half away from zero: a non-decreasing step function), adding the
    zero point and clamping are each non-decreasing, so max_i f(acc_i) = f(max_i acc_i). The pool copies
    its input's bytes (no rescaling) and clamps them: clamp(clamp(v, a, b), c, d) = clamp(v, max(a, c),
    min(b, d)) when the two ranges meet, so one clamp does both."""

    op: Operator
    height: int  # window = stride: the windows tile the convolution's output without overlap
    width: int
    out_h: int  # the pooled output
    out_w: int
    activation: tuple[int, int]  # the convolution's clamp and the pool's, as one

    @property
    def members(self) -> int:
        return self.height * self.width


def _fused_pool(ctx, op: Operator, matrix: np.ndarray) -> FusedPool | None:
    """The MAX_POOL_2D after this convolution when it is the conv output's only reader and the two can be
    one step: non-overlapping windows inside the output (no padding), the requantization monotone
    (see FusedPool) and the two clamps meeting."""
    output = op.outputs[0]
    readers = ctx.readers(output)
    if output in ctx.graph.outputs or len(readers) != 1 or readers[0].opcode != "MAX_POOL_2D":
        return None
    pool = readers[0]
    o = pool.options
    conv_h, conv_w, _ = _nhwc(ctx.tensor(output))
    out_h, out_w, _ = _nhwc(ctx.tensor(pool.outputs[0]))
    pads = (same_or_valid_padding(o["padding"], conv_h, o["filter_height"], o["stride_h"], 1, out_h)
            + same_or_valid_padding(o["padding"], conv_w, o["filter_width"], o["stride_w"], 1, out_w))
    if ((o["filter_height"], o["filter_width"]) != (o["stride_h"], o["stride_w"]) or any(pads)
            or not 2 <= o["filter_height"] * o["filter_width"] <= POOL_MEMBERS):
        return None
    # the largest |accumulator| of each channel: int8 inputs (within [-128, 127]) times the row, plus the
    # folded bias; shifted left by the channel's left shift it must stay inside int32
    source, filters = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1])
    bias = _folded_bias(ctx, op, matrix, _zero_point(source), "bound")
    shifts = [shift for _, shift in quantized.channel_multipliers(
        _scale(source), filters.quantization.scale, _scale(ctx.tensor(output)))]
    bound = np.abs(np.asarray(bias.values, dtype=np.int64)) + 128 * np.abs(matrix.astype(np.int64)).sum(axis=1)
    if np.any(bound << np.maximum(np.asarray(shifts, dtype=np.int64), 0) >= 2**31):
        return None
    conv_range = _activation(op, ctx.tensor(output))
    pool_range = _activation(pool, ctx.tensor(pool.outputs[0]))
    merged = (max(conv_range[0], pool_range[0]), min(conv_range[1], pool_range[1]))
    if merged[0] > merged[1]:
        return None
    ctx.fuse(pool)
    return FusedPool(pool, o["filter_height"], o["filter_width"], out_h, out_w, merged)


def _padded_input(ctx, op: Operator, source: Tensor, pads_h: tuple[int, int], pads_w: tuple[int, int]):
    """The buffer a convolution reads: the input itself, or a copy bordered with its zero point: written
    so by the pooled convolution that produces it, where one does, else by a pad step."""
    if pads_h == (0, 0) and pads_w == (0, 0):
        return ctx.buffer(source.index)
    height, width, channels = _nhwc(source)
    padded = ctx.scratch((height + sum(pads_h)) * (width + sum(pads_w)) * channels)
    producer = next((step for step in reversed(ctx.steps) if step.output is ctx.buffer(source.index)), None)
    if (producer is not None and producer.kernel == "tp_conv2d" and dict(producer.fields).get("pool_h")
            and ctx.readers(source.index) == [op] and not ctx.buffer(source.index).binding):
        padded_w = width + sum(pads_w)
        producer.output = padded
        producer.fields += [("border_bytes", padded.size),
                            ("border_offset", (pads_h[0] * padded_w + pads_w[0]) * channels),
                            ("border_gap", (padded_w - width) * channels), ("border_value", _zero_point(source))]
        return padded
    name = ctx.name(op, "pad")
    ctx.add(Step("tp_pad", "tp_pad_params", name,
                 _pad_fields([1, height, width, channels], [0, pads_h[0], pads_w[0], 0],
                             [0, pads_h[1], pads_w[1], 0], _zero_point(source)),
                 [ctx.buffer(source.index)], padded))
    return padded


def _pad_fields(dims: list[int], before: list[int], after: list[int], value: int) -> list[tuple[str, object]]:
    """tp_pad's parameters, worked out here so that the inlined kernel is a fill and loops of copies: every
    unpadded axis merged into the axis before it (a [1, H, W, C] input padded along H and W copies H runs of
    W x C bytes, not H x W runs of C), the last axis the run copied, up to three axes of runs around it,
    outermost first (count 1 where there are fewer), with the output bytes from one run to the next."""
    axes = [[dims[0], before[0], after[0]]]
    for size, pad_before, pad_after in zip(dims[1:], before[1:], after[1:]):
        if pad_before == pad_after == 0:
            axes[-1] = [part * size for part in axes[-1]]
        else:
            axes.append([size, pad_before, pad_after])
    strides = [1]  # output bytes a step along each merged axis, worked out from the last one
    for size, pad_before, pad_after in reversed(axes[1:]):
        strides.insert(0, strides[0] * (pad_before + size + pad_after))
    loops = [(1, 0)] * (4 - len(axes)) + [(size, stride) for (size, _, _), stride in zip(axes[:-1], strides)]
    return [("size", strides[0] * sum(axes[0])), ("first", sum(b * s for (_, b, _), s in zip(axes, strides))),
            ("run", axes[-1][0]), ("runs", [count for count, _ in loops]),
            ("strides", [stride for _, stride in loops]), ("value", value)]


GEMM_LIMIT = 2**16  # tp_gemm_params holds columns, depth and rows as uint16_t
GEMM_BLOCKS = (8, 4, 2)  # columns tp_gemm may take a pass, preferred first


def gemm_blocks(members: int) -> tuple[int, ...]:
    """The columns a tp_gemm pass may take, widest first: whole pooling windows of `members` columns
    (1 when no pool is fused)."""
    return tuple(sorted({max(block // members, 1) * members for block in GEMM_BLOCKS}, reverse=True))


def _lower_gemm(ctx, op: Operator, name: str, matrix: np.ndarray, columns: int, kind: str,
                window: list[tuple[str, int]] = (), pool: FusedPool | None = None) -> None:
    """Dense weights times `columns` input columns through tp_gemm: batches of a fully connected layer,
    pixels of a pointwise convolution (whose output may take the input's bytes, codegen.py: outputs
    are staged when that saves memory), or windows of any other convolution (`window`: its geometry
    and padding, applied as the windows are copied; with a fused pool, a pooled output's windows one
    after the other)."""
    source, filters, output = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    rows, depth = matrix.shape
    weights = ConstArray(f"{name}_weights", "int8_t", interleave_row_pairs(matrix).tolist())
    requant_fields, requant_arrays = _requant_fields(
        name, _scale(source), filters.quantization.scale, output,
        pool.activation if pool else _activation(op, output))
    bias = _folded_bias(ctx, op, matrix, _zero_point(source), name)
    # columns a pass: two, or more where the lowering found room for the scratch (codegen.lower):
    # windows copied, outputs staged in place
    in_place = not window and rows <= depth

    def scratch_for(block: int) -> int:
        return (block * depth if window else 0) + (block * rows if in_place else 0)

    blocks = gemm_blocks(pool.members if pool else 1)
    blocks = blocks if name in ctx.wide_gemms else blocks[-1:]
    block = next((b for b in blocks if b <= columns), blocks[-1])
    in_place = in_place and columns > block
    pool_fields = [("pool_h", pool.height), ("pool_w", pool.width)] if pool else []
    fields = [("weights", weights.name), ("bias", bias.name)] + requant_fields + [
        ("columns", columns), ("depth", depth), ("rows", rows), ("block", block),
        ("in_place", int(in_place))] + list(window) + pool_fields
    scratch = scratch_for(block) if in_place or window else 0
    target = ctx.buffer(pool.op.outputs[0] if pool else output.index)
    ctx.add(Step("tp_gemm", "tp_gemm_params", name, fields, [ctx.buffer(source.index), ctx.scratch(max(scratch, 1))],
                 target, [weights, bias] + requant_arrays, kind=kind, in_place=in_place),
            _report(ctx, op, encode_dense(matrix), matrix, output.num_elements // rows, pool))


def gemm_widening(step: Step) -> int:
    """Scratch bytes a tp_gemm step taking its narrowest pass would add if it took the widest."""
    fields = dict(step.fields)
    per_column = (fields["depth"] if fields.get("kernel_h") else 0) + (fields["rows"] if fields["in_place"] else 0)
    blocks = gemm_blocks(fields.get("pool_h", 1) * fields.get("pool_w", 1))
    return (blocks[0] - blocks[-1]) * per_column


def _gemm_fits(*sizes: int) -> bool:
    return all(size < GEMM_LIMIT for size in sizes)


def lower_conv2d(ctx, op: Operator) -> None:
    source, filters, output = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    in_h, in_w, in_c = _nhwc(source)
    out_h, out_w, out_c = _nhwc(output)
    _, kernel_h, kernel_w, filter_c = filters.shape
    if filter_c != in_c:
        raise TinypruneError(f"layer {ctx.layer(op)!r}: grouped convolution is not supported",
                             "use groups=1 or the tflm backend")
    o = op.options
    stride, dilation = (o["stride_h"], o["stride_w"]), (o["dilation_h_factor"], o["dilation_w_factor"])
    pads_h = same_or_valid_padding(o["padding"], in_h, kernel_h, stride[0], dilation[0], out_h)
    pads_w = same_or_valid_padding(o["padding"], in_w, kernel_w, stride[1], dilation[1], out_w)
    matrix = filters.numpy().reshape(out_c, -1)
    pool = _fused_pool(ctx, op, matrix)
    # what the kernel stores: the pooled output when a pool is fused, its windows pool_h x pool_w outputs
    stored_h, stored_w = (pool.out_h, pool.out_w) if pool else (out_h, out_w)
    computed = stored_h * stored_w * (pool.members if pool else 1)  # convolution outputs worked out
    kind = "conv2d + max_pool2d" if pool else "conv2d"
    if (ctx.encode(op, "tp_conv2d", matrix).format == "dense" and dilation[1] == 1
            and _gemm_fits(computed, matrix.shape[1], out_c, in_h, in_w * in_c)
            and max(stride + dilation + pads_h + pads_w) < 256):
        pointwise = kernel_h == kernel_w == 1 and stride == (1, 1) and pads_h == pads_w == (0, 0) and not pool
        window = [] if pointwise else [
            ("kernel_h", kernel_h), ("kernel_w", kernel_w), ("stride_h", stride[0]), ("stride_w", stride[1]),
            ("dilation_h", dilation[0]), ("pad_top", pads_h[0]), ("pad_left", pads_w[0]),
            ("input_zero_point", _zero_point(source)), ("in_h", in_h), ("in_w", in_w), ("in_c", in_c),
            ("out_w", stored_w)]
        _lower_gemm(ctx, op, ctx.name(op), matrix, computed, "conv2d 1x1" if pointwise else kind,
                    window=window, pool=pool)
        return
    padded = _padded_input(ctx, op, source, pads_h, pads_w)
    padded_w = in_w + sum(pads_w)
    pointwise = kernel_h == kernel_w == 1 and stride == (1, 1) and padded is ctx.buffer(source.index) and not pool
    name = ctx.name(op)
    ky, kx, c = np.meshgrid(np.arange(kernel_h), np.arange(kernel_w), np.arange(in_c), indexing="ij")
    taps = ((ky * dilation[0] * padded_w + kx * dilation[1]) * in_c + c).ravel()
    formats = ctx.formats if taps.max() < 2**16 else ("dense",)
    encoding = ctx.encode(op, "tp_conv2d", matrix, formats)
    weight_fields, arrays = _weight_fields(name, encoding)
    requant_fields, requant_arrays = _requant_fields(
        name, _scale(source), filters.quantization.scale, output,
        pool.activation if pool else _activation(op, output))
    bias = _folded_bias(ctx, op, matrix, _zero_point(source), name)
    if pointwise:
        # a compressed pointwise convolution is one matrix product over all pixels: one long row of them
        padded_w, stored_w, stored_h = in_h * in_w, out_h * out_w, 1
    fields = weight_fields + [("bias", bias.name)] + requant_fields + [
        ("in_w", padded_w), ("in_c", in_c), ("out_h", stored_h), ("out_w", stored_w), ("out_c", out_c),
        ("kernel_h", kernel_h), ("kernel_w", kernel_w), ("stride_h", stride[0]), ("stride_w", stride[1]),
        ("dilation_h", dilation[0]), ("dilation_w", dilation[1])]
    if pool:
        fields += [("pool_h", pool.height), ("pool_w", pool.width)]
    arrays += [bias] + requant_arrays
    if encoding.format != "dense" or kernel_w * in_c < SHORT_ROW:
        arrays.append(ConstArray(f"{name}_taps", "tp_tap", taps.tolist()))
        fields.append(("taps", arrays[-1].name))
    target = ctx.buffer(pool.op.outputs[0] if pool else output.index)
    # a pointwise convolution may write over its input (codegen.py): four pixels' outputs staged at a time
    in_place = pointwise and out_c <= in_c and ctx.convolutions_in_place
    staging = ctx.scratch(4 * out_c) if in_place else ctx.nothing()
    ctx.add(Step("tp_conv2d", "tp_conv2d_params", name, fields, [padded, staging], target, arrays,
                 kind="conv2d 1x1" if pointwise else kind, in_place=in_place, staging=in_place),
            _report(ctx, op, encoding, matrix, out_h * out_w, pool))


def lower_depthwise_conv2d(ctx, op: Operator) -> None:
    source, filters, output = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    in_h, in_w, in_c = _nhwc(source)
    out_h, out_w, out_c = _nhwc(output)
    _, kernel_h, kernel_w, _ = filters.shape
    o = op.options
    stride, dilation = (o["stride_h"], o["stride_w"]), (o["dilation_h_factor"], o["dilation_w_factor"])
    pads_h = same_or_valid_padding(o["padding"], in_h, kernel_h, stride[0], dilation[0], out_h)
    pads_w = same_or_valid_padding(o["padding"], in_w, kernel_w, stride[1], dilation[1], out_w)
    pad_top, pad_left = pads_h[0], pads_w[0]
    # every window inside the padded plane (VALID padding may leave rows or columns unread)
    padded_h = max(in_h + sum(pads_h), (out_h - 1) * stride[0] + (kernel_h - 1) * dilation[0] + 1)
    padded_w = max(in_w + sum(pads_w), (out_w - 1) * stride[1] + (kernel_w - 1) * dilation[1] + 1)

    name = ctx.name(op)
    taps_by_channel = filters.numpy().reshape(kernel_h * kernel_w, out_c)
    matrix = np.ascontiguousarray(taps_by_channel.T)  # a row of taps per output channel
    encoding = ctx.encode(op, "tp_depthwise_conv2d", matrix, tuple(f for f in ctx.formats if f in DEPTHWISE_FORMATS))
    # dense rows: input channels staged as int16 planes with their padding in scratch, two at a time with
    # depth multiplier 1 (tp_depthwise_conv2d.c: then a spare pixel for one-tap-wide windows, and but for
    # 3x3 windows a table of taps, two words a pair); bitmask and LUT rows with depth multiplier 1 and
    # whole blocks of four channels: a block staged as bytes. A staged channel's input bytes are dead,
    # so with depth multiplier 1 the output may take them (codegen.py)
    dense = encoding.format == "dense"
    staged = not dense and out_c == in_c and out_c % 4 == 0
    if dense:
        planes = (2 if out_c == in_c and in_c > 1 else 1) * padded_h * padded_w + (kernel_w == 1)
        pairs_per_row = (kernel_w + 1) // 2 if dilation[1] == 1 else kernel_w
        table = 0 if (kernel_h, kernel_w, dilation[1]) == (3, 3, 1) else 8 * kernel_h * pairs_per_row
        scratch_size = -(-2 * planes // 4) * 4 + table
    else:
        scratch_size = padded_h * padded_w * 4 if staged else 1
    weight_fields, arrays = _weight_fields(name, encoding)
    requant_fields, requant_arrays = _requant_fields(
        name, _scale(source), filters.quantization.scale, output, _activation(op, output))
    bias = ConstArray(f"{name}_bias", "int32_t",
                      ctx.tensor(op.inputs[2]).numpy().tolist() if len(op.inputs) > 2 and op.inputs[2] >= 0
                      else [0] * out_c)
    fields = weight_fields + [("bias", bias.name)] + requant_fields + [
        ("input_offset", -_zero_point(source)), ("in_h", in_h), ("in_w", in_w), ("in_c", in_c),
        ("out_h", out_h), ("out_w", out_w), ("out_c", out_c), ("depth_multiplier", out_c // in_c),
        ("kernel_h", kernel_h), ("kernel_w", kernel_w), ("stride_h", stride[0]), ("stride_w", stride[1]),
        ("dilation_h", dilation[0]), ("dilation_w", dilation[1]), ("pad_top", pad_top), ("pad_left", pad_left)]
    fields += [("staged", int(staged)), ("padded_h", padded_h), ("padded_w", padded_w)]
    ctx.add(Step("tp_depthwise_conv2d", "tp_depthwise_conv2d_params", name, fields,
                 [ctx.buffer(source.index), ctx.scratch(scratch_size)], ctx.buffer(output.index),
                 arrays + [bias] + requant_arrays, in_place=staged or (dense and out_c == in_c)),
            _report(ctx, op, encoding, matrix, out_h * out_w))


def lower_fully_connected(ctx, op: Operator) -> None:
    source, filters, output = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    units, depth = filters.shape
    batches = source.num_elements // depth
    name = ctx.name(op)
    matrix = filters.numpy()
    encoding = ctx.encode(op, "tp_fully_connected", matrix)
    if encoding.format == "dense" and _gemm_fits(batches, depth, units):
        _lower_gemm(ctx, op, name, matrix, batches, "fully_connected")
        return
    weight_fields, arrays = _weight_fields(name, encoding)
    requant_fields, requant_arrays = _requant_fields(
        name, _scale(source), filters.quantization.scale, output, _activation(op, output))
    bias = _folded_bias(ctx, op, matrix, _zero_point(source), name)
    fields = weight_fields + [("bias", bias.name)] + requant_fields + [
        ("batches", batches), ("out_depth", units)]
    ctx.add(Step("tp_fully_connected", "tp_fully_connected_params", name, fields, [ctx.buffer(source.index)],
                 ctx.buffer(output.index), arrays + [bias] + requant_arrays),
            _report(ctx, op, encoding, matrix, batches))


def _lower_pool(ctx, op: Operator, kernel: str) -> None:
    source, output = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    in_h, in_w, channels = _nhwc(source)
    out_h, out_w, _ = _nhwc(output)
    o = op.options
    pad_top, _ = same_or_valid_padding(o["padding"], in_h, o["filter_height"], o["stride_h"], 1, out_h)
    pad_left, _ = same_or_valid_padding(o["padding"], in_w, o["filter_width"], o["stride_w"], 1, out_w)
    low, high = _activation(op, output)
    fields = [("in_h", in_h), ("in_w", in_w), ("channels", channels), ("out_h", out_h), ("out_w", out_w),
              ("filter_h", o["filter_height"]), ("filter_w", o["filter_width"]), ("stride_h", o["stride_h"]),
              ("stride_w", o["stride_w"]), ("pad_top", pad_top), ("pad_left", pad_left),
              ("activation_min", low), ("activation_max", high)]
    ctx.add(Step(kernel, "tp_pool2d_params", ctx.name(op), fields, [ctx.buffer(source.index)],
                 ctx.buffer(output.index)))


def lower_max_pool2d(ctx, op: Operator) -> None:
    _lower_pool(ctx, op, "tp_max_pool2d")


def lower_average_pool2d(ctx, op: Operator) -> None:
    _lower_pool(ctx, op, "tp_average_pool2d")


def lower_reshape(ctx, op: Operator) -> None:
    """No code: the output names the input's bytes (a copy only from the graph input to its output)."""
    source, output = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    if not ctx.alias(output.index, source.index):
        ctx.add(Step("tp_copy", "tp_copy_params", ctx.name(op), [("size", output.nbytes)],
                     [ctx.buffer(source.index)], ctx.buffer(output.index)))


def _same_shapes(ctx, op: Operator) -> list[Tensor]:
    inputs = [ctx.tensor(i) for i in op.inputs]
    output = ctx.tensor(op.outputs[0])
    for tensor in inputs:
        if tensor.is_constant or tensor.num_elements != output.num_elements:
            raise TinypruneError(
                f"layer {ctx.layer(op)!r}: {op.opcode} with broadcasting or a constant operand is not "
                "supported by the standalone backend", "give both operands the same shape, or use --backend tflm")
    return inputs


def lower_add(ctx, op: Operator) -> None:
    first, second = _same_shapes(ctx, op)
    output = ctx.tensor(op.outputs[0])
    p = quantized.add_parameters(_scale(first), _scale(second), _scale(output))
    low, high = _activation(op, output)
    fields = [("input1_offset", -_zero_point(first)), ("input2_offset", -_zero_point(second)),
              ("output_offset", _zero_point(output)), ("input1_multiplier", p["input1"][0]),
              ("input2_multiplier", p["input2"][0]), ("output_multiplier", p["output"][0]),
              ("input1_shift", p["input1"][1]), ("input2_shift", p["input2"][1]),
              ("output_shift", p["output"][1]), ("left_shift", p["left_shift"]),
              ("activation_min", low), ("activation_max", high), ("size", output.num_elements)]
    ctx.add(Step("tp_add", "tp_add_params", ctx.name(op), fields,
                 [ctx.buffer(first.index), ctx.buffer(second.index)], ctx.buffer(output.index), in_place=True))


def lower_mul(ctx, op: Operator) -> None:
    first, second = _same_shapes(ctx, op)
    output = ctx.tensor(op.outputs[0])
    multiplier, shift = quantized.quantize_multiplier(_scale(first) * _scale(second) / _scale(output))
    low, high = _activation(op, output)
    fields = [("input1_offset", -_zero_point(first)), ("input2_offset", -_zero_point(second)),
              ("output_offset", _zero_point(output)), ("output_multiplier", multiplier),
              ("output_shift", shift), ("activation_min", low), ("activation_max", high),
              ("size", output.num_elements)]
    ctx.add(Step("tp_mul", "tp_mul_params", ctx.name(op), fields,
                 [ctx.buffer(first.index), ctx.buffer(second.index)], ctx.buffer(output.index), in_place=True))


def lower_mean(ctx, op: Operator) -> None:
    source, axes, output = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    rank = len(source.shape)
    reduced = sorted({int(a) % rank for a in axes.numpy().ravel()})
    if reduced != list(range(reduced[0], reduced[-1] + 1)):
        raise TinypruneError(f"layer {ctx.layer(op)!r}: MEAN over non-adjacent axes {reduced}",
                             "reduce over adjacent axes (e.g. GlobalAveragePooling), or use --backend tflm")
    shape = source.shape
    count = int(np.prod(shape[reduced[0]:reduced[-1] + 1]))
    multiplier, shift = quantized.mean_multiplier(_scale(source), _scale(output), count)
    plain = _scale(source) == _scale(output) and _zero_point(source) == _zero_point(output)
    fields = [("outer", int(np.prod(shape[:reduced[0]]))), ("reduced", count),
              ("inner", int(np.prod(shape[reduced[-1] + 1:]))), ("input_zero_point", _zero_point(source)),
              ("output_zero_point", _zero_point(output)), ("multiplier", multiplier), ("shift", shift),
              ("plain_average", int(plain))]
    ctx.add(Step("tp_mean", "tp_mean_params", ctx.name(op), fields, [ctx.buffer(source.index)],
                 ctx.buffer(output.index)))


def lower_softmax(ctx, op: Operator) -> None:
    source, output = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    if _zero_point(output) != -128 or abs(_scale(output) - 1 / 256) > 1e-9:
        raise TinypruneError(f"layer {ctx.layer(op)!r}: SOFTMAX output is not scaled 1/256 with zero point -128",
                             "convert with the TFLite converter's int8 defaults")
    p = quantized.softmax_parameters(float(op.options.get("beta", 1.0)), _scale(source))
    depth = source.shape[-1]
    fields = [("input_multiplier", p["input_multiplier"]), ("diff_min", p["diff_min"]),
              ("input_left_shift", p["input_left_shift"]), ("rows", source.num_elements // depth),
              ("depth", depth)]
    ctx.add(Step("tp_softmax", "tp_softmax_params", ctx.name(op), fields, [ctx.buffer(source.index)],
                 ctx.buffer(output.index)))


def _lower_requantize(ctx, op: Operator, activation: str) -> None:
    source, output = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    if source.dtype != "int8" or output.dtype != "int8":
        raise TinypruneError(f"layer {ctx.layer(op)!r}: {op.opcode} from {source.dtype} to {output.dtype}",
                             "convert with int8 input and output (inference_input_type=tf.int8)")
    if activation == "RELU6":  # TFLM's int8 RELU6 clamps in the input's quantization, ignoring the output's
        multiplier, shift = quantized.quantize_multiplier(1.0)
        zero_points = (0, 0)
        low, high = quantized.activation_range(activation, _scale(source), _zero_point(source))
    else:
        multiplier, shift = quantized.quantize_multiplier(_scale(source) / _scale(output))
        zero_points = (_zero_point(source), _zero_point(output))
        low, high = quantized.activation_range(activation, _scale(output), _zero_point(output))
    fields = [("input_zero_point", zero_points[0]), ("output_zero_point", zero_points[1]),
              ("multiplier", multiplier), ("shift", shift), ("activation_min", low),
              ("activation_max", high), ("size", output.num_elements)]
    ctx.add(Step("tp_requantize_tensor", "tp_requantize_params", ctx.name(op), fields,
                 [ctx.buffer(source.index)], ctx.buffer(output.index), in_place=True))


def lower_quantize(ctx, op: Operator) -> None:
    _lower_requantize(ctx, op, "NONE")


def lower_relu(ctx, op: Operator) -> None:
    _lower_requantize(ctx, op, "RELU")


def lower_relu6(ctx, op: Operator) -> None:
    _lower_requantize(ctx, op, "RELU6")


def _lower_sigmoid(ctx, op: Operator, kernel: str, output_quantization: tuple[float, int]) -> None:
    source, output = ctx.tensor(op.inputs[0]), ctx.tensor(op.outputs[0])
    scale, zero_point = output_quantization
    if _zero_point(output) != zero_point or abs(_scale(output) - scale) > 1e-9:
        raise TinypruneError(f"layer {ctx.layer(op)!r}: {op.opcode} output is not scaled {scale} with zero "
                             f"point {zero_point}", "convert with the TFLite converter's int8 defaults")
    p = quantized.sigmoid_parameters(_scale(source))
    fields = [("input_zero_point", _zero_point(source)), ("input_multiplier", p["input_multiplier"]),
              ("input_range_radius", p["input_range_radius"]), ("input_left_shift", p["input_left_shift"]),
              ("size", output.num_elements)]
    ctx.add(Step(kernel, "tp_activation_params", ctx.name(op), fields, [ctx.buffer(source.index)],
                 ctx.buffer(output.index), in_place=True))


def lower_logistic(ctx, op: Operator) -> None:
    _lower_sigmoid(ctx, op, "tp_logistic", (1 / 256, -128))


def lower_tanh(ctx, op: Operator) -> None:
    _lower_sigmoid(ctx, op, "tp_tanh", (1 / 128, 0))


def lower_pad(ctx, op: Operator) -> None:
    source, paddings, output = ctx.tensor(op.inputs[0]), ctx.tensor(op.inputs[1]), ctx.tensor(op.outputs[0])
    rank = len(source.shape)
    if rank > 4 or (len(op.inputs) > 2 and op.inputs[2] >= 0):
        raise TinypruneError(f"layer {ctx.layer(op)!r}: {op.opcode} of rank {rank} or with a pad value",
                             "pad at most 4-D tensors with zeros, or use --backend tflm")
    pads = np.zeros((4, 2), dtype=np.int64)
    pads[4 - rank:] = paddings.numpy().reshape(rank, 2)
    dims = [1] * (4 - rank) + list(source.shape)
    fields = _pad_fields(dims, pads[:, 0].tolist(), pads[:, 1].tolist(), _zero_point(output))
    ctx.add(Step("tp_pad", "tp_pad_params", ctx.name(op), fields, [ctx.buffer(source.index)],
                 ctx.buffer(output.index)))


def lower_concatenation(ctx, op: Operator) -> None:
    inputs = [ctx.tensor(i) for i in op.inputs]
    output = ctx.tensor(op.outputs[0])
    for tensor in inputs:
        if tensor.is_constant or tensor.quantization != output.quantization:
            raise TinypruneError(
                f"layer {ctx.layer(op)!r}: CONCATENATION of a constant or of inputs quantized unlike the output",
                "use --backend tflm for this model")
    axis = op.options["axis"] % len(output.shape)
    name = ctx.name(op)
    inner = ConstArray(f"{name}_inner", "uint32_t",
                       [int(np.prod(t.shape[axis:])) for t in inputs])
    fields = [("outer", int(np.prod(output.shape[:axis]))), ("count", len(inputs)), ("inner", inner.name)]
    ctx.add(Step("tp_concatenation", "tp_concatenation_params", name, fields,
                 [ctx.buffer(t.index) for t in inputs], ctx.buffer(output.index), [inner],
                 input_list=f"{name}_inputs"))


LOWERINGS = {
    "ADD": lower_add,
    "AVERAGE_POOL_2D": lower_average_pool2d,
    "CONCATENATION": lower_concatenation,
    "CONV_2D": lower_conv2d,
    "DEPTHWISE_CONV_2D": lower_depthwise_conv2d,
    "EXPAND_DIMS": lower_reshape,
    "FULLY_CONNECTED": lower_fully_connected,
    "LOGISTIC": lower_logistic,
    "MAX_POOL_2D": lower_max_pool2d,
    "MEAN": lower_mean,
    "MUL": lower_mul,
    "PAD": lower_pad,
    "QUANTIZE": lower_quantize,
    "RELU": lower_relu,
    "RELU6": lower_relu6,
    "RESHAPE": lower_reshape,
    "SOFTMAX": lower_softmax,
    "SQUEEZE": lower_reshape,
    "TANH": lower_tanh,
}

STANDALONE_OPS: tuple[str, ...] = tuple(sorted(LOWERINGS))
"""The TFLite builtin ops the standalone backend compiles (int8); the check stage treats it as a runtime."""

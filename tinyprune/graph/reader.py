"""Stage 4a: a TFLite flatbuffer -> Graph, in pure Python (no TensorFlow, so `inspect` starts fast).

Field numbers, defaults and enum values follow TFLite's schema.fbs (TF 2.21,
tensorflow/compiler/mlir/lite/schema/schema.fbs). Any malformed input raises TinypruneError.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from tinyprune.errors import TinypruneError
from tinyprune.graph.flatbuffer import FlatbufferError, Table, root_table
from tinyprune.graph.ir import TENSOR_TYPES, Graph, Operator, Quantization, Tensor

FILE_IDENTIFIER = b"TFL3"

# BuiltinOperator enum, in value order (0 = ADD ... 209 = STABLEHLO_CASE).
BUILTIN_OPERATORS: tuple[str, ...] = tuple(
    """
    ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
    EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
    LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1
    RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS
    SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER
    BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE
    UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT
    LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS NEG
    PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE TILE
    EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN FAKE_QUANT REDUCE_PROD
    REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV
    REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU
    SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE
    RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE
    NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM
    BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D
    IMAG REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL
    CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS
    RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE
    RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX UNSORTED_SEGMENT_SUM ATAN2
    UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT STABLEHLO_LOGISTIC STABLEHLO_ADD
    STABLEHLO_DIVIDE STABLEHLO_MULTIPLY STABLEHLO_MAXIMUM STABLEHLO_RESHAPE STABLEHLO_CLAMP
    STABLEHLO_CONCATENATE STABLEHLO_BROADCAST_IN_DIM STABLEHLO_CONVOLUTION STABLEHLO_SLICE
    STABLEHLO_CUSTOM_CALL STABLEHLO_REDUCE STABLEHLO_ABS STABLEHLO_AND STABLEHLO_COSINE
    STABLEHLO_EXPONENTIAL STABLEHLO_FLOOR STABLEHLO_LOG STABLEHLO_MINIMUM STABLEHLO_NEGATE
    STABLEHLO_OR STABLEHLO_POWER STABLEHLO_REMAINDER STABLEHLO_RSQRT STABLEHLO_SELECT
    STABLEHLO_SUBTRACT STABLEHLO_TANH STABLEHLO_SCATTER STABLEHLO_COMPARE STABLEHLO_CONVERT
    STABLEHLO_DYNAMIC_SLICE STABLEHLO_DYNAMIC_UPDATE_SLICE STABLEHLO_PAD STABLEHLO_IOTA
    STABLEHLO_DOT_GENERAL STABLEHLO_REDUCE_WINDOW STABLEHLO_SORT STABLEHLO_WHILE
    STABLEHLO_GATHER STABLEHLO_TRANSPOSE DILATE STABLEHLO_RNG_BIT_GENERATOR REDUCE_WINDOW
    STABLEHLO_COMPOSITE STABLEHLO_SHIFT_LEFT STABLEHLO_CBRT STABLEHLO_CASE
    """.split()
)
CUSTOM_CODE = BUILTIN_OPERATORS.index("CUSTOM")

# Enums used by the options, value order.
_PADDINGS = ("SAME", "VALID")
_ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")
_WEIGHTS_FORMATS = ("DEFAULT", "SHUFFLED4x16INT8")
_TENSOR_TYPE_NAMES = tuple(
    "FLOAT32 FLOAT16 INT32 UINT8 INT64 STRING BOOL INT16 COMPLEX64 INT8 FLOAT64 COMPLEX128 UINT64 "
    "RESOURCE VARIANT UINT32 UINT16 INT4 BFLOAT16 INT2 UINT4".split()
)


class OptionField(NamedTuple):
    """One field of a builtin options table; its position in the table's list is its field number."""

    name: str  # as in schema.fbs
    fmt: str  # struct code of the scalar ("b", "i", "f", "?"), or "[i" for a vector of int32
    default: object = 0
    enum: tuple[str, ...] | None = None  # value names when the field is an enum


def _int(name: str, default: int = 0) -> OptionField:
    return OptionField(name, "i", default)


def _bool(name: str, default: bool = False) -> OptionField:
    return OptionField(name, "?", default)


_ACTIVATION = OptionField("fused_activation_function", "b", 0, _ACTIVATIONS)
_PADDING = OptionField("padding", "b", 0, _PADDINGS)
_BIAS_TYPE = OptionField("quantized_bias_type", "b", 0, _TENSOR_TYPE_NAMES)
_STRIDES = [_int("stride_w"), _int("stride_h")]
_DILATIONS = [_int("dilation_w_factor", 1), _int("dilation_h_factor", 1)]
_POOL = [_PADDING, *_STRIDES, _int("filter_width"), _int("filter_height"), _ACTIVATION]
_ADD_SUB = [_ACTIVATION, _bool("pot_scale_int16", True)]
_REDUCER = [_bool("keep_dims")]

# Operator -> (BuiltinOptions union value of its options table, the table's fields in schema order).
# An operator stored without its table gets the schema defaults.
BUILTIN_OPTIONS: dict[str, tuple[int, list[OptionField]]] = {
    "CONV_2D": (1, [_PADDING, *_STRIDES, _ACTIVATION, *_DILATIONS, _BIAS_TYPE]),
    "DEPTHWISE_CONV_2D": (2, [_PADDING, *_STRIDES, _int("depth_multiplier"), _ACTIVATION,
                              *_DILATIONS]),
    "AVERAGE_POOL_2D": (5, _POOL),
    "MAX_POOL_2D": (5, _POOL),
    "L2_POOL_2D": (5, _POOL),
    "FULLY_CONNECTED": (8, [_ACTIVATION, OptionField("weights_format", "b", 0, _WEIGHTS_FORMATS),
                            _bool("keep_num_dims"), _bool("asymmetric_quantize_inputs"),
                            _BIAS_TYPE]),
    "SOFTMAX": (9, [OptionField("beta", "f", 0.0)]),
    "CONCATENATION": (10, [_int("axis"), _ACTIVATION]),
    "ADD": (11, _ADD_SUB),
    "RESHAPE": (17, [OptionField("new_shape", "[i", ())]),
    "MUL": (21, [_ACTIVATION]),
    "GATHER": (23, [_int("axis"), _int("batch_dims")]),
    "MEAN": (27, _REDUCER),
    "SUM": (27, _REDUCER),
    "REDUCE_MAX": (27, _REDUCER),
    "REDUCE_MIN": (27, _REDUCER),
    "REDUCE_PROD": (27, _REDUCER),
    "SUB": (28, _ADD_SUB),
    "DIV": (29, [_ACTIVATION]),
    "SQUEEZE": (30, [OptionField("squeeze_dims", "[i", ())]),
    "STRIDED_SLICE": (32, [_int("begin_mask"), _int("end_mask"), _int("ellipsis_mask"),
                           _int("new_axis_mask"), _int("shrink_axis_mask"), _bool("offset")]),
    "SPLIT": (35, [_int("num_splits")]),
    "TRANSPOSE_CONV": (49, [_PADDING, *_STRIDES, _ACTIVATION, _BIAS_TYPE]),
    "PACK": (59, [_int("values_count"), _int("axis")]),
    "UNPACK": (64, [_int("num"), _int("axis")]),
    "LEAKY_RELU": (75, [OptionField("alpha", "f", 0.0)]),
    "SPLIT_V": (79, [_int("num_splits")]),
}

_CORRUPT_FIX = ("re-create the .tflite with the TFLite converter (tinyprune build does this) "
                "and check the file was copied completely")


def read_graph_file(path: str | Path) -> Graph:
    """Read a .tflite file into a Graph."""
    path = Path(path)
    try:
        model = path.read_bytes()
    except FileNotFoundError:
        raise TinypruneError(f"{path} does not exist", "give the path of a .tflite file") from None
    except IsADirectoryError:
        raise TinypruneError(f"{path} is a folder, not a .tflite file",
                             "give the path of a .tflite file") from None
    except OSError as exc:
        raise TinypruneError(f"{path} cannot be read: {exc.strerror}",
                             "check the file's permissions") from None
    return read_graph(model, source=str(path))


def read_graph(model: bytes, source: str = "the TFLite model") -> Graph:
    """Read the first subgraph of a TFLite flatbuffer (and the model-level facts) into a Graph."""
    if isinstance(model, (str, Path)):
        raise TinypruneError(f"read_graph got the path {str(model)!r}, not the model's bytes",
                             "call read_graph_file(path) for a file")
    try:
        model = bytes(model)
    except TypeError:
        raise TinypruneError(f"read_graph got a {type(model).__name__}, not the model's bytes",
                             "pass the .tflite contents as bytes") from None
    if not model:
        raise TinypruneError(f"{source} is empty (0 bytes)", _CORRUPT_FIX)
    if len(model) < 8:
        raise TinypruneError(f"{source} is only {len(model)} bytes, too short for a TFLite flatbuffer",
                             _CORRUPT_FIX)
    if model[4:8] != FILE_IDENTIFIER:
        raise TinypruneError(
            f"{source} is not a TFLite flatbuffer (its identifier is {model[4:8]!r}, not b'TFL3')",
            "give a .tflite file written by the TFLite converter, not a Keras, SavedModel or other file",
        )
    try:
        return _read_model(model)
    except FlatbufferError as exc:
        raise TinypruneError(f"{source} is corrupt or truncated: {exc}", _CORRUPT_FIX) from None


def _read_model(model: bytes) -> Graph:
    root = root_table(model, "Model")
    buffers = root.tables(4, "buffers")
    subgraphs = root.tables(2, "subgraphs")
    if not subgraphs:
        raise FlatbufferError("the model has no subgraph")
    opcodes = [_opcode_name(code) for code in root.tables(1, "operator_codes")]
    subgraph = subgraphs[0]
    tensors = [_read_tensor(i, t, buffers, model) for i, t in enumerate(subgraph.tables(0, "tensors"))]
    operators = [_read_operator(i, op, opcodes, len(tensors))
                 for i, op in enumerate(subgraph.tables(3, "operators"))]
    return Graph(
        tensors=tensors,
        operators=operators,
        inputs=_tensor_indices(subgraph.vector(1, "i"), len(tensors), "SubGraph.inputs"),
        outputs=_tensor_indices(subgraph.vector(2, "i"), len(tensors), "SubGraph.outputs"),
        model_bytes=len(model),
        version=root.scalar(0, "I", 0),
        description=root.string(3),
        subgraph_count=len(subgraphs),
        buffer_count=len(buffers),
        metadata_names=tuple(m.string(0) for m in root.tables(6, "metadata")),
    )


def _opcode_name(code: Table) -> tuple[str, int, bool]:
    """(name, version, is_custom) of an OperatorCode. Old files carry the code only in the int8
    deprecated_builtin_code; new ones put codes > 127 in builtin_code, hence the max."""
    value = max(code.scalar(0, "b", 0), code.scalar(3, "i", 0))
    if not 0 <= value < len(BUILTIN_OPERATORS):
        raise FlatbufferError(f"{code.path}: builtin operator code {value} is not in the TFLite schema "
                              f"tinyprune knows (codes 0..{len(BUILTIN_OPERATORS) - 1})")
    version = code.scalar(2, "i", 1)
    if value == CUSTOM_CODE:
        return code.string(1, "CUSTOM"), version, True
    return BUILTIN_OPERATORS[value], version, False


def _read_tensor(index: int, table: Table, buffers: list[Table], model: bytes) -> Tensor:
    type_code = table.scalar(1, "b", 0)
    if type_code not in TENSOR_TYPES:
        type_name = (_TENSOR_TYPE_NAMES[type_code] if 0 <= type_code < len(_TENSOR_TYPE_NAMES)
                     else f"code {type_code}")
        raise FlatbufferError(f"{table.path}: tensor type {type_name} is not supported by tinyprune")
    shape = table.vector(0, "i")
    if any(dim < 0 for dim in shape):
        raise FlatbufferError(f"{table.path}: shape {list(shape)} has a negative dimension")
    buffer = table.scalar(2, "I", 0)
    if buffer >= max(len(buffers), 1):
        raise FlatbufferError(f"{table.path}: buffer {buffer} does not exist ({len(buffers)} buffers)")
    data = _buffer_data(buffers[buffer], model) if buffers else None
    tensor = Tensor(
        index=index,
        name=table.string(3),
        shape=tuple(shape),
        dtype=TENSOR_TYPES[type_code][0],
        type_code=type_code,
        buffer=buffer,
        data=data,
        quantization=_read_quantization(table.table(4, "quantization")),
        is_variable=table.scalar(5, "?", False),
    )
    quantization = tensor.quantization
    if quantization and quantization.per_channel and (
            not 0 <= quantization.axis < len(shape) or shape[quantization.axis] != len(quantization.scale)):
        raise FlatbufferError(f"{table.path}: {len(quantization.scale)} per-channel scales along "
                              f"dimension {quantization.axis} of shape {list(shape)}")
    is_sparse = table.has(6)  # sparse tensors store compressed data; their shape is the dense one
    if data is not None and not is_sparse and len(data) != tensor.nbytes:
        raise FlatbufferError(f"{table.path}: {len(data)} data bytes for shape {list(shape)} "
                              f"{tensor.dtype} ({tensor.nbytes} bytes)")
    return tensor


def _buffer_data(buffer: Table, model: bytes) -> bytes | None:
    """A buffer's bytes, inside the flatbuffer or, for models over 2 GB, after it (Buffer.offset and
    Buffer.size count from the start of the file; offset 0 or 1 means "not used")."""
    data = buffer.raw_bytes(0)
    offset, size = buffer.scalar(1, "Q", 0), buffer.scalar(2, "Q", 0)
    if offset > 1:
        if offset + size > len(model):
            raise FlatbufferError(f"{buffer.path}: {size} bytes at offset {offset} lie outside the "
                                  f"{len(model)}-byte file")
        data = model[offset : offset + size]
    return data or None


def _read_quantization(table: Table | None) -> Quantization | None:
    if table is None:
        return None
    scale = table.vector(2, "f")
    zero_point = table.vector(3, "q")
    if not scale:
        return None
    if zero_point and len(zero_point) != len(scale):
        raise FlatbufferError(f"{table.path}: {len(scale)} scales but {len(zero_point)} zero points")
    return Quantization(
        scale=tuple(float(s) for s in scale),
        zero_point=tuple(int(z) for z in zero_point) or (0,) * len(scale),
        axis=table.scalar(6, "i", 0),
    )


def _read_operator(index: int, table: Table, opcodes: list[tuple[str, int, bool]],
                   tensor_count: int) -> Operator:
    opcode_index = table.scalar(0, "I", 0)
    if opcode_index >= len(opcodes):
        raise FlatbufferError(f"{table.path}: opcode index {opcode_index} does not exist "
                              f"({len(opcodes)} operator codes)")
    name, version, custom = opcodes[opcode_index]
    where = table.path
    return Operator(
        index=index,
        opcode=name,
        version=version,
        inputs=_tensor_indices(table.vector(1, "i"), tensor_count, f"{where}.inputs", optional=True),
        outputs=_tensor_indices(table.vector(2, "i"), tensor_count, f"{where}.outputs"),
        options=_read_options(table, name),
        intermediates=_tensor_indices(table.vector(8, "i"), tensor_count, f"{where}.intermediates"),
        custom=custom,
    )


def _read_options(operator: Table, opcode: str) -> dict:
    """The operator's builtin options as {schema field name: value}, enums as their names; {} for
    operators whose options tinyprune does not decode."""
    if opcode not in BUILTIN_OPTIONS:
        return {}
    union_type, fields = BUILTIN_OPTIONS[opcode]
    found_type = operator.scalar(3, "B", 0)
    options_table = operator.table(4, "builtin_options") if found_type else None
    if found_type not in (0, union_type):
        raise FlatbufferError(f"{operator.path}: {opcode} has options of type {found_type}, "
                              f"not {union_type}")
    options = {}
    for number, (name, fmt, default, enum) in enumerate(fields):
        if options_table is None:
            value = default
        elif fmt.startswith("["):
            value = options_table.vector(number, fmt[1:])
        else:
            value = options_table.scalar(number, fmt, default)
        if enum is not None:
            if not 0 <= value < len(enum):
                raise FlatbufferError(f"{operator.path}: {name} = {value} is not a valid value")
            value = enum[value]
        options[name] = value
    return options


def _tensor_indices(indices: tuple[int, ...], tensor_count: int, where: str,
                    optional: bool = False) -> tuple[int, ...]:
    """Tensor indices checked against the tensor list (-1 marks an omitted optional input)."""
    lowest = -1 if optional else 0
    for i in indices:
        if not lowest <= i < tensor_count:
            raise FlatbufferError(f"{where}: tensor index {i} does not exist ({tensor_count} tensors)")
    return tuple(indices)

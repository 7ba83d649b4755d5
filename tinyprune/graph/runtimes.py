"""The target runtimes: which TFLM a model will run on, the operators it has, and its known defects.

The board does not run the TFLM the host verifies with: the Arduino library is TFLM as of January 2023,
the `tflite-micro` package is current TFLM. The op check (graph/check.py), the conversion
(quantize.py) and the sketch's MicroMutableOpResolver all take their facts from here. Other backends
(the standalone C code generator) add their own Runtime with `register_runtime`.
"""
from __future__ import annotations

from dataclasses import dataclass

from tinyprune.errors import TinypruneError


@dataclass(frozen=True)
class Runtime:
    name: str  # what users type: --runtime NAME
    title: str  # for people: reports and messages
    tflm_revision: str  # which TFLM sources it is built from
    ops: dict[str, str]  # BuiltinOperator name -> tflite::MicroMutableOpResolver method
    per_channel_fully_connected: bool  # computes per-channel FULLY_CONNECTED weights correctly
    arduino_architectures: tuple[str, ...] = ()  # the Arduino cores it builds for; () = not Arduino
    notes: tuple[str, ...] = ()  # known defects and differences, for the report

    def supports(self, opcode: str) -> bool:
        return opcode in self.ops


# MicroMutableOpResolver's builtin Add* methods in TFLM as of January 2023. Read from
# tensorflow/lite/micro/micro_mutable_op_resolver.h at commit
# 4a0076b32bb3511e37f47116eb5f0ea143a28cf5 (suleshahid/tflite-micro, a fork of tensorflow/tflite-micro,
# at the upstream state between the tflite_bridge change of Nov 2022, PR #1560, and the
# TfLiteRegistration_V1 rename of Mar 2023, PR #1818: `TfLiteRegistration`, MicroPrintf, the
# ErrorReporter argument kept only for b/246776144). The next builtins upstream added were
# EMBEDDING_LOOKUP (PR #1872, resolver PR #2148, 2023), then BATCH_MATMUL, REDUCE_MIN and REVERSE_V2.
TFLM_JANUARY_2023_OPS: dict[str, str] = {
    "ABS": "AddAbs",
    "ADD": "AddAdd",
    "ADD_N": "AddAddN",
    "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo",
    "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast",
    "CEIL": "AddCeil",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "COS": "AddCos",
    "CUMSUM": "AddCumSum",
    "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize",
    "DIV": "AddDiv",
    "ELU": "AddElu",
    "EQUAL": "AddEqual",
    "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims",
    "FILL": "AddFill",
    "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected",
    "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater",
    "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish",
    "IF": "AddIf",
    "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu",
    "LESS": "AddLess",
    "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog",
    "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr",
    "LOGISTIC": "AddLogistic",
    "LOG_SOFTMAX": "AddLogSoftmax",
    "MAXIMUM": "AddMaximum",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MEAN": "AddMean",
    "MINIMUM": "AddMinimum",
    "MIRROR_PAD": "AddMirrorPad",
    "MUL": "AddMul",
    "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual",
    "PACK": "AddPack",
    "PAD": "AddPad",
    "PADV2": "AddPadV2",
    "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable",
    "REDUCE_MAX": "AddReduceMax",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "ROUND": "AddRound",
    "RSQRT": "AddRsqrt",
    "SELECT_V2": "AddSelectV2",
    "SHAPE": "AddShape",
    "SIN": "AddSin",
    "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV",
    "SQRT": "AddSqrt",
    "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub",
    "SUM": "AddSum",
    "SVDF": "AddSvdf",
    "TANH": "AddTanh",
    "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "UNPACK": "AddUnpack",
    "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile",
    "ZEROS_LIKE": "AddZerosLike",
}

# Current TFLM: the January 2023 set plus the builtins added since, read from the 2025
# micro_mutable_op_resolver.h (every Add* method taking an optional TFLMRegistration, PR #3178,
# Aug 2025). The `tflite-micro` package installed here (0.dev20261023, g8f6596d) links a kernel for
# every one of them; tests/test_graph_check.py checks that against its shared library.
TFLM_CURRENT_OPS: dict[str, str] = {
    **TFLM_JANUARY_2023_OPS,
    "BATCH_MATMUL": "AddBatchMatMul",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "REDUCE_MIN": "AddReduceMin",
    "REVERSE_V2": "AddReverseV2",
    # TFLM's DECODE, which expands compressed constant tensors at run time; a custom operator in the
    # flatbuffer (custom code "TFLM_DECODE"), registered with AddDecode() in builds that have it
    "TFLM_DECODE": "AddDecode",
}

TFLM_PACKAGE = Runtime(
    name="tflm",
    title="TFLM (the tflite-micro Python package)",
    tflm_revision="current TFLM, as packaged on PyPI as tflite-micro",
    ops=dict(sorted(TFLM_CURRENT_OPS.items())),
    per_channel_fully_connected=True,
)

ARDUINO_LIBRARY = Runtime(
    name="arduino",
    title="Chirale_TensorFlowLite 2.0.0 (Arduino library)",
    tflm_revision="TFLM as of January 2023 with CMSIS-NN kernels",
    ops=dict(sorted(TFLM_JANUARY_2023_OPS.items())),
    per_channel_fully_connected=False,
    arduino_architectures=("mbed_nano", "esp32", "mbed_nicla", "mbed_portenta", "mbed_giga"),
    notes=(
        "FULLY_CONNECTED applies the first channel's scale to every output of per-channel weights: "
        "convert dense layers with per-tensor weights",
    ),
)

_RUNTIMES: dict[str, Runtime] = {}


def register_runtime(runtime: Runtime) -> Runtime:
    """Make a runtime selectable by name (a backend with its own kernels registers its op list)."""
    _RUNTIMES[runtime.name] = runtime
    return runtime


def runtime_names() -> list[str]:
    return sorted(_RUNTIMES)


def get_runtime(name: str) -> Runtime:
    try:
        return _RUNTIMES[name]
    except KeyError:
        raise TinypruneError(
            f"unknown target runtime {name!r}",
            f"choose one of: {', '.join(runtime_names())}",
        ) from None


register_runtime(TFLM_PACKAGE)
register_runtime(ARDUINO_LIBRARY)

"""The graph IR: the facts about a TFLite model that the checks, the memory emulation, the code
generators and the report all need, as plain dataclasses (no flatbuffer, no LiteRT)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# TFLite TensorType enum value -> (name, numpy dtype, bytes per element)
TENSOR_TYPES: dict[int, tuple[str, str, int]] = {
    0: ("float32", "<f4", 4),
    1: ("float16", "<f2", 2),
    2: ("int32", "<i4", 4),
    3: ("uint8", "u1", 1),
    4: ("int64", "<i8", 8),
    6: ("bool", "u1", 1),
    7: ("int16", "<i2", 2),
    8: ("complex64", "<c8", 8),
    9: ("int8", "i1", 1),
    10: ("float64", "<f8", 8),
    11: ("complex128", "<c16", 16),
    12: ("uint64", "<u8", 8),
    15: ("uint32", "<u4", 4),
    16: ("uint16", "<u2", 2),
}


@dataclass(frozen=True)
class Quantization:
    """Affine quantization: real = scale * (q - zero_point), per tensor (one entry) or per channel
    along `axis`."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # a name from TENSOR_TYPES, e.g. "int8"
    type_code: int  # the TensorType enum value in the file
    buffer: int  # index into the model's buffers; 0 means no data
    data: bytes | None  # constant contents, None for activations and variables
    quantization: Quantization | None
    is_variable: bool = False

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def itemsize(self) -> int:
        for name, _, size in TENSOR_TYPES.values():
            if name == self.dtype:
                return size
        raise ValueError(f"unknown dtype {self.dtype}")

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.num_elements * self.itemsize

    def numpy(self) -> np.ndarray:
        """The constant contents shaped as the tensor (raises for activations)."""
        if self.data is None:
            raise ValueError(f"tensor {self.name!r} has no constant data")
        numpy_dtype = next(d for n, d, _ in TENSOR_TYPES.values() if n == self.dtype)
        return np.frombuffer(self.data, dtype=numpy_dtype).reshape(self.shape)


@dataclass
class Operator:
    index: int
    opcode: str  # builtin operator name as in the schema ("FULLY_CONNECTED"), or the custom code
    version: int
    inputs: tuple[int, ...]  # tensor indices; -1 marks an omitted optional input
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)  # decoded builtin options, schema field names
    intermediates: tuple[int, ...] = ()
    custom: bool = False


@dataclass
class Graph:
    """The first subgraph of a TFLite model (TFLM runs subgraph 0; others only via control-flow ops)."""

    tensors: list[Tensor]
    operators: list[Operator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    model_bytes: int  # size of the whole flatbuffer file
    version: int = 3
    description: str = ""
    subgraph_count: int = 1
    buffer_count: int = 0
    metadata_names: tuple[str, ...] = ()

    @property
    def op_names(self) -> list[str]:
        """The distinct operators, sorted: what a MicroMutableOpResolver must register."""
        return sorted({op.opcode for op in self.operators})

    def input_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.inputs]

    def output_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.outputs]

    def lifetimes(self) -> dict[int, tuple[int, int]]:
        """First and last operator step at which each non-constant tensor is alive.

        Graph inputs are alive from step 0, graph outputs until the last step, as in TFLM's planner."""
        last_step = max(len(self.operators) - 1, 0)
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for i in self.inputs:
            first[i] = 0
            last[i] = 0
        for op in self.operators:
            for i in op.outputs:
                if i >= 0:
                    first.setdefault(i, op.index)
                    last[i] = max(last.get(i, op.index), op.index)
            for i in op.inputs:
                if i >= 0 and not self.tensors[i].is_constant:
                    first.setdefault(i, op.index)
                    last[i] = max(last.get(i, op.index), op.index)
        for i in self.outputs:
            first.setdefault(i, 0)
            last[i] = last_step
        return {i: (first[i], last[i]) for i in sorted(first) if not self.tensors[i].is_constant}

    def producer_layer(self, op: Operator) -> str:
        """The Keras layer an operator came from, read from its tensors' names (the converter names
        them "model/layer/Op;..."; a graph output is renamed "StatefulPartitionedCall:0", so the
        operator's weights, then its other inputs, are tried after its outputs): for messages that
        point at the layer. "?" when no tensor carries a layer name."""
        inputs = [i for i in op.inputs if i >= 0]
        weights = [i for i in inputs if self.tensors[i].is_constant]
        outputs = [i for i in op.outputs if i >= 0]
        for index in (*outputs, *weights, *inputs):
            parts = self.tensors[index].name.split(";")[0].split("/")
            if len(parts) > 2:
                return parts[1]
        return "?"

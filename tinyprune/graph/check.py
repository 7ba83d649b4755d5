"""Stage 4b: will this int8 graph run on the target runtime? Checked before anything is exported.

Three things make TFLM refuse a model or, worse, run it wrongly: an operator its resolver lacks, a
tensor that is not integer (TFLM has no hybrid kernels), and for the Arduino library's TFLM a
per-channel FULLY_CONNECTED weight, which it silently computes with the first channel's scale.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tinyprune.errors import TinypruneError
from tinyprune.graph.ir import Graph, Operator, Tensor
from tinyprune.graph.runtimes import Runtime, get_runtime, runtime_names

FLOAT_DTYPES = frozenset({"float16", "float32", "float64"})
_INT8_FIX = ("convert with full-integer quantization: optimizations=[tf.lite.Optimize.DEFAULT], a "
             "representative_dataset, supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8], int8 inference input "
             "and output types; or give tinyprune build the Keras model, which does this")


@dataclass(frozen=True)
class OpSupport:
    name: str  # BuiltinOperator name, or the custom code of a custom op
    count: int  # how many operators of the graph use it
    supported: bool
    resolver_method: str | None  # the MicroMutableOpResolver method that adds it, None if none


@dataclass(frozen=True)
class OpCheck:
    """The graph's distinct operators, sorted by name, as the target runtime sees them."""

    runtime: Runtime
    ops: tuple[OpSupport, ...]

    @property
    def resolver_methods(self) -> list[str]:
        """The Add* calls a MicroMutableOpResolver<len(...)> needs for this model, sorted."""
        return [op.resolver_method for op in self.ops if op.resolver_method]


def check_graph(graph: Graph, runtime: Runtime) -> OpCheck:
    """The op table for `runtime`; raises TinypruneError when the model cannot run correctly on it."""
    _require_full_integer(graph)
    counts = Counter(op.opcode for op in graph.operators)
    ops = tuple(
        OpSupport(name, counts[name], runtime.supports(name), runtime.ops.get(name))
        for name in sorted(counts)
    )
    missing = [op.name for op in ops if not op.supported]
    if missing:
        raise TinypruneError(
            f"{runtime.title} ({runtime.tflm_revision}) lacks "
            + ", ".join(_describe_missing(graph, name) for name in missing),
            "replace those layers with ones made of supported ops (Conv, Dense, pooling, ReLU, "
            "Add, Concatenate, Reshape...) or target a runtime that has them "
            f"(runtimes: {', '.join(_runtimes_having(missing)) or 'none'})",
        )
    if not runtime.per_channel_fully_connected:
        _require_per_tensor_fully_connected(graph, runtime)
    return OpCheck(runtime=runtime, ops=ops)


def _describe_missing(graph: Graph, name: str) -> str:
    users = [op for op in graph.operators if op.opcode == name]
    kind = f"the custom op {name!r}" if users[0].custom else name
    layers = sorted({graph.producer_layer(op) for op in users})
    return f"{kind} (from layer {', '.join(repr(layer) for layer in layers)})"


def _runtimes_having(ops: list[str]) -> list[str]:
    return [name for name in runtime_names() if all(get_runtime(name).supports(op) for op in ops)]


def _require_full_integer(graph: Graph) -> None:
    """TFLM runs integer kernels only: no hybrid operator (float activations with int8 weights), no
    float input or output, no float activation."""
    problem = _hybrid_op(graph) or _float_interface(graph) or _float_activation(graph)
    if problem:
        raise TinypruneError(f"{problem}; tinyprune targets full-integer int8 models (TFLM's int8 and CMSIS-NN "
                             "kernels: the arena, flash and firmware it proves are int8's)", _INT8_FIX)


def _float_tensors(graph: Graph, op: Operator) -> list[Tensor]:
    return [graph.tensors[i] for i in (*op.inputs, *op.outputs)
            if i >= 0 and not graph.tensors[i].is_constant and graph.tensors[i].dtype in FLOAT_DTYPES]


def _hybrid_op(graph: Graph) -> str | None:
    for op in graph.operators:
        floats = _float_tensors(graph, op)
        int8_weights = [graph.tensors[i] for i in op.inputs
                        if i >= 0 and graph.tensors[i].is_constant and graph.tensors[i].dtype == "int8"]
        if floats and int8_weights:
            return (f"layer {graph.producer_layer(op)!r} is a hybrid {op.opcode} (int8 weights, "
                    f"{floats[0].dtype} activations: dynamic-range quantization)")
    return None


def _float_interface(graph: Graph) -> str | None:
    for role, tensors in (("input", graph.input_tensors()), ("output", graph.output_tensors())):
        for tensor in tensors:
            if tensor.dtype in FLOAT_DTYPES:
                return f"the model's {role} {tensor.name!r} is {tensor.dtype}, not int8"
    return None


def _float_activation(graph: Graph) -> str | None:
    for op in graph.operators:
        floats = _float_tensors(graph, op)
        if floats:
            return (f"layer {graph.producer_layer(op)!r} computes {op.opcode} in {floats[0].dtype} "
                    f"(tensor {floats[0].name!r})")
    return None


def _require_per_tensor_fully_connected(graph: Graph, runtime: Runtime) -> None:
    for op in graph.operators:
        weights = _fully_connected_weights(graph, op)
        if weights is not None and weights.quantization and weights.quantization.per_channel:
            raise TinypruneError(
                f"layer {graph.producer_layer(op)!r} has per-channel FULLY_CONNECTED weights "
                f"({len(weights.quantization.scale)} scales), which {runtime.title} computes "
                "wrongly (it applies the first channel's scale to every output)",
                "convert with per-tensor dense weights: quantize_int8(..., per_channel_dense=False) "
                f"(tinyprune build does this for the {runtime.name} target)",
            )


def _fully_connected_weights(graph: Graph, op: Operator) -> Tensor | None:
    if op.opcode != "FULLY_CONNECTED" or len(op.inputs) < 2 or op.inputs[1] < 0:
        return None
    return graph.tensors[op.inputs[1]]

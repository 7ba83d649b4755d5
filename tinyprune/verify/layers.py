"""Where LiteRT and TFLM part ways, operator by operator, the way TFLM's layer-by-layer debugger does it:
every intermediate tensor made a model output (the subgraph's output vector rewritten in the flatbuffer),
both interpreters run on the same int8 inputs, and each operator's output compared byte for byte. The first
operator whose output differs is where the two runtimes' kernels disagree; everything after it inherits
the difference."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyprune.graph.flatbuffer import root_table, with_int32_vector
from tinyprune.graph.ir import Graph

SUBGRAPH_OUTPUTS = 2  # SubGraph.outputs in the TFLite schema


@dataclass(frozen=True)
class LayerDivergence:
    """The first operator whose int8 output differs between LiteRT and TFLM, over the inputs compared."""

    operator: int  # index in execution order
    opcode: str
    tensor: str  # its output tensor's name
    differing_bytes: int
    total_bytes: int
    max_difference: int
    samples: int

    def describe(self) -> str:
        return (f"first difference at operator {self.operator} ({self.opcode}, output {self.tensor!r}): "
                f"{self.differing_bytes:,} of {self.total_bytes:,} bytes differ (up to {self.max_difference}) "
                f"over {self.samples} inputs" + ("; the operators before it agree byte for byte" if self.operator else ""))


def with_every_tensor_as_output(model_bytes: bytes, graph: Graph) -> tuple[bytes, list[int]]:
    """The model with each operator's int8 outputs added to the subgraph's outputs (after the original
    ones, in execution order); returns the bytes and the output list."""
    intermediates = [index for op in graph.operators for index in op.outputs
                     if index not in graph.outputs and graph.tensors[index].dtype == "int8"]
    outputs = list(graph.outputs) + intermediates
    subgraph = root_table(model_bytes, "Model").tables(2, "subgraphs")[0]
    return with_int32_vector(model_bytes, subgraph, SUBGRAPH_OUTPUTS, outputs), outputs


def tflm_tensors(model_bytes: bytes, graph: Graph, x_int8: np.ndarray,
                 arena_size: int = 1 << 22) -> dict[int, np.ndarray]:
    """Today's TFLM (the tflite-micro package) on `x_int8`: every int8 tensor an operator writes, and the
    model's input, by tensor index, each shaped (samples, *the tensor's shape)."""
    from tflite_micro.python.tflite_micro import runtime

    debug_bytes, outputs = with_every_tensor_as_output(model_bytes, graph)
    tflm = runtime.Interpreter.from_bytes(debug_bytes, arena_size=arena_size)
    shape = graph.input_tensors()[0].shape
    x = np.asarray(x_int8, dtype=np.int8).reshape((-1,) + tuple(shape[1:]))
    runs = []
    for sample in x:
        tflm.set_input(sample.reshape(shape), 0)
        tflm.invoke()
        runs.append([tflm.get_output(n).copy() for n in range(len(outputs))])
    tensors = {tensor: np.stack([run[n] for run in runs]).reshape((len(x),) + tuple(graph.tensors[tensor].shape))
               for n, tensor in enumerate(outputs)}
    return {graph.inputs[0]: x.reshape((len(x),) + tuple(shape)), **tensors}


def first_divergence(model_bytes: bytes, graph: Graph, x_int8: np.ndarray, arena_size: int = 1 << 22,
                     samples: int = 32) -> LayerDivergence | None:
    """Run LiteRT and TFLM on the first `samples` inputs with every intermediate tensor as an output; the
    first operator (in execution order) whose output differs, or None when every operator agrees."""
    from ai_edge_litert.interpreter import Interpreter as LiteRT

    debug_bytes, outputs = with_every_tensor_as_output(model_bytes, graph)
    x = np.asarray(x_int8[:samples], dtype=np.int8)
    tflm = tflm_tensors(model_bytes, graph, x, arena_size)
    litert = LiteRT(model_content=debug_bytes)
    litert.allocate_tensors()
    input_index = litert.get_input_details()[0]["index"]
    output_tensors = [detail["index"] for detail in litert.get_output_details()]  # = `outputs`, in order
    shape = graph.input_tensors()[0].shape
    differences: dict[int, list[np.ndarray]] = {tensor: [] for tensor in outputs}
    for number, sample in enumerate(x):
        litert.set_tensor(input_index, sample.reshape(shape))
        litert.invoke()
        for tensor in output_tensors:
            ours = tflm[tensor][number].astype(np.int16).reshape(-1)
            differences[tensor].append(np.abs(ours - litert.get_tensor(tensor).astype(np.int16).reshape(-1)))
    for op in graph.operators:
        for tensor in op.outputs:
            difference = np.concatenate(differences[tensor]) if differences.get(tensor) else None
            if difference is not None and np.any(difference):
                return LayerDivergence(op.index, op.opcode, graph.tensors[tensor].name,
                                       int(np.count_nonzero(difference)), int(difference.size),
                                       int(difference.max()), len(x))
    return None

"""The int8 model as plain data: read the flatbuffer once, every later stage takes a Graph."""
from tinyprune.graph.ir import Graph, Operator, Quantization, Tensor

__all__ = ["Graph", "Operator", "Quantization", "Tensor"]

"""Single-operator int8 .tflite models for the fast kernel tests, built without TensorFlow through the
schema the tflite-micro package ships (its generated Python object API), so TFLM reads exactly what we
wrote. Quantization is chosen as TF's converter chooses it: symmetric per-channel int8 weights, int32
bias at input scale x weight scale, and an output scale that spreads the accumulator over int8."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import flatbuffers
import numpy as np

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema


@dataclass
class SingleOpModel:
    """An int8 model under construction: tensors and constant buffers, one operator."""

    rng: np.random.Generator
    tensors: list = field(default_factory=list)
    buffers: list = field(default_factory=lambda: [schema.BufferT()])
    operators: list = field(default_factory=list)
    opcodes: list = field(default_factory=list)

    def tensor(self, shape, scale=None, zero_point=0, data=None, dtype=schema.TensorType.INT8, axis=0) -> int:
        t = schema.TensorT()
        t.name = f"t{len(self.tensors)}"
        t.shape = list(shape)
        t.type = dtype
        t.buffer = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
            self.buffers.append(buffer)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = schema.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(scale)]
            q.zeroPoint = [int(z) for z in np.broadcast_to(zero_point, len(q.scale))]
            q.quantizedDimension = axis
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def activation(self, shape, scale=None, zero_point=None) -> int:
        """A non-constant int8 tensor with a random scale and zero point unless given."""
        scale = scale if scale is not None else float(self.rng.uniform(0.01, 0.1))
        zero_point = zero_point if zero_point is not None else int(self.rng.integers(-20, 21))
        return self.tensor(shape, scale, zero_point)

    def weights(self, shape, axis: int, sparsity: float = 0.0, clusters: int = 0) -> tuple[int, np.ndarray]:
        """Symmetric per-channel int8 weights along `axis`, a fraction `sparsity` of them zero, or drawn
        from `clusters` values (a LUT-friendly weight-shared layer)."""
        if clusters:
            values = self.rng.integers(-127, 128, size=clusters)
            data = self.rng.choice(values, size=shape).astype(np.int8)
        else:
            data = self.rng.integers(-127, 128, size=shape).astype(np.int8)
        data[self.rng.random(shape) < sparsity] = 0
        scales = self.rng.uniform(0.002, 0.02, size=shape[axis])
        return self.tensor(shape, scales, 0, data, axis=axis), scales

    def bias(self, input_scale: float, weight_scales: np.ndarray) -> int:
        scales = input_scale * weight_scales
        data = self.rng.integers(-2000, 2000, size=len(scales)).astype(np.int32)
        return self.tensor([len(scales)], scales, 0, data, dtype=schema.TensorType.INT32)

    def output_for(self, shape, input_scale: float, weight_scales: np.ndarray, fan_in: int) -> int:
        """An output scale a few accumulator standard deviations wide (random int8 data: ~74 each)."""
        spread = 3 * 74 * 74 * math.sqrt(max(fan_in, 1)) * input_scale * float(np.mean(weight_scales))
        return self.activation(shape, spread / 128)

    def op(self, opcode: str, inputs, outputs, options_type: str | None = None, options=None) -> int:
        if opcode not in self.opcodes:
            self.opcodes.append(opcode)
        op = schema.OperatorT()
        op.opcodeIndex = self.opcodes.index(opcode)
        op.inputs = list(inputs)
        op.outputs = list(outputs)
        if options_type:
            op.builtinOptionsType = getattr(schema.BuiltinOptions, options_type)
            op.builtinOptions = options
        self.operators.append(op)
        return outputs[0]

    def requantized(self, source: int) -> int:
        """`source` through QUANTIZE onto another scale and zero point: a second operand from one input."""
        return self.op("QUANTIZE", [source], [self.activation(self.tensors[source].shape)])

    def pooled(self, source: int) -> int:
        """`source` through a 3x3 stride-1 SAME max pool: other values, the same quantization."""
        q = self.tensors[source].quantization
        o = schema.Pool2DOptionsT()
        o.padding, o.strideH, o.strideW, o.filterHeight, o.filterWidth = schema.Padding.SAME, 1, 1, 3, 3
        output = self.activation(self.tensors[source].shape, q.scale[0], q.zeroPoint[0])
        return self.op("MAX_POOL_2D", [source], [output], "Pool2DOptions", o)

    def finish(self, opcode: str, inputs, outputs, options_type: str | None = None, options=None) -> bytes:
        """The model with one more operator, `opcode`, whose output is the model's."""
        self.op(opcode, inputs, outputs, options_type, options)
        codes = []
        for name in self.opcodes:
            code = schema.OperatorCodeT()
            code.builtinCode = getattr(schema.BuiltinOperator, name)
            code.deprecatedBuiltinCode = min(code.builtinCode, 127)
            code.version = 1
            codes.append(code)
        graph = schema.SubGraphT()
        graph.tensors = self.tensors
        produced = {o for op in self.operators for o in op.outputs}
        graph.inputs = sorted({i for op in self.operators for i in op.inputs
                               if i >= 0 and self.tensors[i].buffer == 0 and i not in produced})
        graph.outputs = list(outputs)
        graph.operators = self.operators
        model = schema.ModelT()
        model.version = 3
        model.operatorCodes = codes
        model.subgraphs = [graph]
        model.buffers = self.buffers
        model.description = f"single {opcode}"
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _activation_code(name: str) -> int:
    return getattr(schema.ActivationFunctionType, name)


def _padding_code(name: str) -> int:
    return getattr(schema.Padding, name)


def conv2d(seed: int, height: int, width: int, in_c: int, out_c: int, kernel: tuple[int, int],
           stride: tuple[int, int] = (1, 1), dilation: tuple[int, int] = (1, 1), padding: str = "VALID",
           activation: str = "NONE", sparsity: float = 0.0, clusters: int = 0) -> bytes:
    m = SingleOpModel(np.random.default_rng(seed))
    source = m.activation([1, height, width, in_c])
    inputs, output, options = _conv2d_parts(m, source, out_c, kernel, stride, dilation, padding, activation,
                                             sparsity, clusters)
    return m.finish("CONV_2D", inputs, [output], "Conv2DOptions", options)


def conv2d_max_pool(seed: int, height: int, width: int, in_c: int, out_c: int, kernel: tuple[int, int],
                    pool: tuple[int, int], pool_stride: tuple[int, int] | None = None, padding: str = "SAME",
                    pool_padding: str = "VALID", activation: str = "RELU", pool_activation: str = "NONE",
                    sparsity: float = 0.0, clusters: int = 0, dilation: tuple[int, int] = (1, 1),
                    conv_scale: float | None = None, then: tuple[int, int] | None = None) -> bytes:
    """CONV_2D then MAX_POOL_2D (`pool` window, stride `pool_stride`, the window by default): the pair the
    standalone backend fuses when the windows tile the convolution's output. `conv_scale`: the
    convolution output's scale instead of one that spreads its accumulators over int8. `then`: (out_c,
    kernel) of a SAME CONV_2D after the pool, as sparse as the first."""
    m = SingleOpModel(np.random.default_rng(seed))
    source = m.activation([1, height, width, in_c])
    inputs, conv_out, options = _conv2d_parts(m, source, out_c, kernel, (1, 1), dilation, padding, activation,
                                              sparsity, clusters)
    if conv_scale is not None:
        m.tensors[conv_out].quantization.scale = [conv_scale]
    m.op("CONV_2D", inputs, [conv_out], "Conv2DOptions", options)
    pool_stride = pool_stride or pool
    _, conv_h, conv_w, _ = m.tensors[conv_out].shape
    out_h, out_w = (_out_size(size, f, s, 1, pool_padding) for size, f, s in zip((conv_h, conv_w), pool, pool_stride))
    q = m.tensors[conv_out].quantization
    output = m.activation([1, out_h, out_w, out_c], q.scale[0], q.zeroPoint[0])
    o = schema.Pool2DOptionsT()
    o.padding, o.strideH, o.strideW = _padding_code(pool_padding), *pool_stride
    o.filterHeight, o.filterWidth = pool
    o.fusedActivationFunction = _activation_code(pool_activation)
    if then is None:
        return m.finish("MAX_POOL_2D", [conv_out], [output], "Pool2DOptions", o)
    pooled = m.op("MAX_POOL_2D", [conv_out], [output], "Pool2DOptions", o)
    inputs, conv_out, options = _conv2d_parts(m, pooled, then[0], (then[1], then[1]), (1, 1), (1, 1), "SAME",
                                              activation, sparsity, clusters)
    return m.finish("CONV_2D", inputs, [conv_out], "Conv2DOptions", options)


def conv2d_chain(seed: int, height: int, width: int, channels: list[int], kernels: list[int],
                 sparsity: float = 0.0, activation: str = "RELU") -> bytes:
    """CONV_2D layers one after the other, SAME padding: layer i maps channels[i] to channels[i + 1] with a
    kernels[i] x kernels[i] window (pointwise ones with 1), the first dense, the others `sparsity` zero."""
    m = SingleOpModel(np.random.default_rng(seed))
    source = m.activation([1, height, width, channels[0]])
    for i, (out_c, kernel) in enumerate(zip(channels[1:], kernels)):
        inputs, output, options = _conv2d_parts(m, source, out_c, (kernel, kernel), (1, 1), (1, 1), "SAME",
                                                activation, sparsity if i else 0.0, 0)
        if i + 2 < len(channels):
            source = m.op("CONV_2D", inputs, [output], "Conv2DOptions", options)
    return m.finish("CONV_2D", inputs, [output], "Conv2DOptions", options)


def _conv2d_parts(m: SingleOpModel, source: int, out_c: int, kernel, stride, dilation, padding: str,
                  activation: str, sparsity: float, clusters: int):
    """A CONV_2D's inputs (source, filters, bias), its output tensor and options, reading `source`."""
    _, height, width, in_c = m.tensors[source].shape
    filters, scales = m.weights([out_c, *kernel, in_c], 0, sparsity, clusters)
    bias = m.bias(m.tensors[source].quantization.scale[0], scales)
    out_h, out_w = (_out_size(size, k, s, d, padding)
                    for size, k, s, d in zip((height, width), kernel, stride, dilation))
    output = m.output_for([1, out_h, out_w, out_c], m.tensors[source].quantization.scale[0], scales,
                          kernel[0] * kernel[1] * in_c * (1 - sparsity))
    o = schema.Conv2DOptionsT()
    o.padding, o.strideH, o.strideW = _padding_code(padding), *stride
    o.dilationHFactor, o.dilationWFactor = dilation
    o.fusedActivationFunction = _activation_code(activation)
    return [source, filters, bias], output, o


def depthwise_conv2d(seed: int, height: int, width: int, in_c: int, multiplier: int, kernel: tuple[int, int],
                     stride: tuple[int, int] = (1, 1), dilation: tuple[int, int] = (1, 1), padding: str = "SAME",
                     activation: str = "NONE", sparsity: float = 0.0, clusters: int = 0,
                     output_scale: float = 1.0) -> bytes:
    """`output_scale` multiplies the output scale output_for picks (far below 1: a rescaling that shifts left)."""
    m = SingleOpModel(np.random.default_rng(seed))
    out_c = in_c * multiplier
    source = m.activation([1, height, width, in_c])
    filters, scales = m.weights([1, *kernel, out_c], 3, sparsity, clusters)
    bias = m.bias(m.tensors[source].quantization.scale[0], scales)
    out_h, out_w = (_out_size(size, k, s, d, padding)
                    for size, k, s, d in zip((height, width), kernel, stride, dilation))
    output = m.output_for([1, out_h, out_w, out_c], m.tensors[source].quantization.scale[0], scales,
                          kernel[0] * kernel[1] * (1 - sparsity))
    m.tensors[output].quantization.scale = [m.tensors[output].quantization.scale[0] * output_scale]
    o = schema.DepthwiseConv2DOptionsT()
    o.padding, o.strideH, o.strideW = _padding_code(padding), *stride
    o.dilationHFactor, o.dilationWFactor = dilation
    o.depthMultiplier = multiplier
    o.fusedActivationFunction = _activation_code(activation)
    return m.finish("DEPTHWISE_CONV_2D", [source, filters, bias], [output], "DepthwiseConv2DOptions", o)


def fully_connected(seed: int, batches: int, depth: int, units: int, per_channel: bool = False,
                    activation: str = "NONE", sparsity: float = 0.0, clusters: int = 0,
                    output_scale: float = 1.0) -> bytes:
    """`output_scale` multiplies the output scale output_for picks (far below 1: a rescaling that shifts left)."""
    m = SingleOpModel(np.random.default_rng(seed))
    source = m.activation([batches, depth])
    filters, scales = m.weights([units, depth], 0, sparsity, clusters)
    if not per_channel:  # one scale for the tensor
        scales = scales[:1]
        m.tensors[filters].quantization.scale = [float(scales[0])]
        m.tensors[filters].quantization.zeroPoint = [0]
    bias = m.bias(m.tensors[source].quantization.scale[0], np.broadcast_to(scales, units))
    output = m.output_for([batches, units], m.tensors[source].quantization.scale[0], scales, depth * (1 - sparsity))
    m.tensors[output].quantization.scale = [m.tensors[output].quantization.scale[0] * output_scale]
    o = schema.FullyConnectedOptionsT()
    o.fusedActivationFunction = _activation_code(activation)
    return m.finish("FULLY_CONNECTED", [source, filters, bias], [output], "FullyConnectedOptions", o)


def pool2d(seed: int, kind: str, height: int, width: int, channels: int, filter_hw: tuple[int, int],
           stride: tuple[int, int], padding: str = "VALID", activation: str = "NONE") -> bytes:
    """MAX_POOL_2D or AVERAGE_POOL_2D: same scale and zero point in and out, as TFLM requires."""
    m = SingleOpModel(np.random.default_rng(seed))
    source = m.activation([1, height, width, channels])
    q = m.tensors[source].quantization
    out_h, out_w = (_out_size(size, f, s, 1, padding) for size, f, s in zip((height, width), filter_hw, stride))
    output = m.activation([1, out_h, out_w, channels], q.scale[0], q.zeroPoint[0])
    o = schema.Pool2DOptionsT()
    o.padding, o.strideH, o.strideW = _padding_code(padding), *stride
    o.filterHeight, o.filterWidth = filter_hw
    o.fusedActivationFunction = _activation_code(activation)
    return m.finish(kind, [source], [output], "Pool2DOptions", o)


def elementwise(seed: int, kind: str, shape, activation: str = "NONE") -> bytes:
    """ADD or MUL of the input and its requantized copy (two scales, one model input)."""
    m = SingleOpModel(np.random.default_rng(seed))
    first = m.activation(shape)
    second = m.requantized(first)
    scale = float(m.rng.uniform(0.02, 0.2)) if kind == "ADD" else 0.05 * float(m.rng.uniform(0.02, 0.1))
    output = m.activation(shape, scale)
    options = schema.AddOptionsT() if kind == "ADD" else schema.MulOptionsT()
    options.fusedActivationFunction = _activation_code(activation)
    return m.finish(kind, [first, second], [output], "AddOptions" if kind == "ADD" else "MulOptions", options)


def unary(seed: int, kind: str, shape, input_scale: float | None = None) -> bytes:
    """LOGISTIC, TANH, SOFTMAX, RELU, RELU6 or QUANTIZE (int8 -> int8 requantization), with the fixed
    output quantization TFLM requires where it has one."""
    m = SingleOpModel(np.random.default_rng(seed))
    source = m.activation(shape, input_scale or float(m.rng.uniform(0.02, 0.2)))
    fixed = {"LOGISTIC": (1 / 256, -128), "TANH": (1 / 128, 0), "SOFTMAX": (1 / 256, -128)}
    output = m.activation(shape, *fixed[kind]) if kind in fixed else m.activation(shape)
    if kind == "SOFTMAX":
        o = schema.SoftmaxOptionsT()
        o.beta = 1.0
        return m.finish(kind, [source], [output], "SoftmaxOptions", o)
    return m.finish(kind, [source], [output])


def mean(seed: int, height: int, width: int, channels: int, source_quantization: tuple[float, int] | None = None,
         output_quantization: tuple[float, int] | None = None) -> bytes:
    """MEAN over height and width, keeping dims (global average pooling as the converter writes it); each
    (scale, zero point) random unless given."""
    m = SingleOpModel(np.random.default_rng(seed))
    source = m.activation([1, height, width, channels], *(source_quantization or (None, None)))
    axes = m.tensor([2], data=np.array([1, 2], dtype=np.int32), dtype=schema.TensorType.INT32)
    output = m.activation([1, 1, 1, channels], *(output_quantization or (None, None)))
    o = schema.ReducerOptionsT()
    o.keepDims = True
    return m.finish("MEAN", [source, axes], [output], "ReducerOptions", o)


def pad(seed: int, shape: list[int], paddings: list[tuple[int, int]]) -> bytes:
    """PAD of a tensor of `shape` (any rank up to 4) by (before, after) along each axis."""
    m = SingleOpModel(np.random.default_rng(seed))
    source = m.activation(list(shape))
    q = m.tensors[source].quantization
    widths = m.tensor([len(shape), 2], data=np.array(paddings, dtype=np.int32), dtype=schema.TensorType.INT32)
    output = m.activation([size + sum(pad) for size, pad in zip(shape, paddings)], q.scale[0], q.zeroPoint[0])
    return m.finish("PAD", [source, widths], [output], "PadOptions", schema.PadOptionsT())


def concatenation(seed: int, height: int, width: int, channels: int, count: int) -> bytes:
    """The input and `count - 1` max-pooled copies of it concatenated along the channels (TFLM and the
    standalone backend want one quantization for all)."""
    m = SingleOpModel(np.random.default_rng(seed))
    sources = [m.activation([1, height, width, channels])]
    for _ in range(count - 1):
        sources.append(m.pooled(sources[-1]))
    q = m.tensors[sources[0]].quantization
    output = m.activation([1, height, width, channels * count], q.scale[0], q.zeroPoint[0])
    o = schema.ConcatenationOptionsT()
    o.axis = 3
    return m.finish("CONCATENATION", sources, [output], "ConcatenationOptions", o)


def _out_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    effective = (kernel - 1) * dilation + 1
    return -(-size // stride) if padding == "SAME" else (size - effective) // stride + 1

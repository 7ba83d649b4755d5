"""Structured compaction: remove whole channels from a tf_keras model and rebuild it smaller and dense.

A channel removed from a layer's output must also disappear wherever that channel flows: BatchNorm
statistics, a depthwise convolution's per-channel kernel, the next layer's input rows, the rows of a
Dense after Flatten (one per spatial position), and every tensor an ADD ties it to. So the model is
first read as a *channel graph*: every tensor's last axis is described as a layout of channel groups,
and layers that tie channels together (ADD, MAXIMUM, ...) merge their groups. A group can be pruned
when a Dense / convolution creates it and neither the model input, the model output nor a layer this
module does not understand (Reshape, Lambda, a shared layer, ...) touches it; those groups keep all
their channels, so the rebuilt model stays exactly equivalent on what is kept.

Layouts: a tensor's flattened last axis is a sequence of blocks, a block being `repeat` copies of
concatenated segments, a segment being (group, multiplicity) -- each channel of the group followed by
its `multiplicity - 1` depthwise copies. A conv output is ((1, ((g, 1),)),); Flatten of an HxW map
turns it into ((H*W, ((g, 1),)),) because channels-last flattening is position-major.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyprune.errors import TinypruneError

Segment = tuple[int, int]
Block = tuple[int, tuple[Segment, ...]]
Layout = tuple[Block, ...]


@dataclass
class ChannelGroup:
    size: int
    producers: list[str] = field(default_factory=list)
    frozen_by: str | None = None


@dataclass
class ChannelGraph:
    """The channel groups of a model and, per layer, the layouts of its inputs and output."""

    groups: list[ChannelGroup] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    inputs: dict[str, list[Layout]] = field(default_factory=dict)
    output: dict[str, Layout] = field(default_factory=dict)
    shared_layers: set[str] = field(default_factory=set)

    def new_group(self, size: int, producer: str | None = None, frozen_by: str | None = None) -> Layout:
        self.groups.append(ChannelGroup(int(size), [producer] if producer else [], frozen_by))
        self.parent.append(len(self.parent))
        return ((1, ((len(self.groups) - 1, 1),)),)

    def find(self, group: int) -> int:
        while self.parent[group] != group:
            self.parent[group] = self.parent[self.parent[group]]
            group = self.parent[group]
        return group

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        if self.groups[a].size != self.groups[b].size:  # broadcasting: channels do not pair up
            self.freeze_group(a, "a broadcasting element-wise op")
            self.freeze_group(b, "a broadcasting element-wise op")
            return
        self.parent[b] = a
        self.groups[a].producers += self.groups[b].producers
        self.groups[a].frozen_by = self.groups[a].frozen_by or self.groups[b].frozen_by

    def freeze_group(self, group: int, reason: str) -> None:
        root = self.groups[self.find(group)]
        root.frozen_by = root.frozen_by or reason

    def freeze(self, layout: Layout, reason: str) -> None:
        for _, segments in layout:
            for group, _ in segments:
                self.freeze_group(group, reason)

    def prunable_groups(self) -> list[int]:
        """Root groups a Dense / convolution creates that nothing forces to keep every channel."""
        roots = sorted({self.find(g) for g in range(len(self.groups))})
        return [g for g in roots if self.groups[g].producers and self.groups[g].frozen_by is None]

    def group_of(self, layer_name: str) -> int:
        """The root group of a producing layer's output channels."""
        (_, ((group, _),)), = self.output[layer_name]
        return self.find(group)

    def indices(self, layout: Layout, keep: dict[int, np.ndarray]) -> np.ndarray:
        """Positions along a tensor's flattened last axis that survive when groups keep `keep`."""
        kept, offset = [], 0
        for repeat, segments in layout:
            width = sum(self.groups[self.find(g)].size * m for g, m in segments)
            within, seg_offset = [], 0
            for group, multiplicity in segments:
                root = self.find(group)
                channels = keep.get(root, np.arange(self.groups[root].size))
                copies = (channels[:, None] * multiplicity + np.arange(multiplicity)).ravel()
                within.append(seg_offset + copies)
                seg_offset += self.groups[root].size * multiplicity
            within = np.concatenate(within) if within else np.zeros(0, np.int64)
            kept.append((offset + np.arange(repeat)[:, None] * width + within[None, :]).ravel())
            offset += repeat * width
        return np.concatenate(kept).astype(np.int64) if kept else np.zeros(0, np.int64)


def _layer_classes():
    import tf_keras as keras

    L = keras.layers
    pass_through = (
        L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.ThresholdedReLU, L.Dropout, L.SpatialDropout1D,
        L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianNoise, L.GaussianDropout, L.AlphaDropout,
        L.ActivityRegularization, L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D,
        L.AveragePooling2D, L.AveragePooling3D, L.GlobalMaxPooling1D, L.GlobalMaxPooling2D,
        L.GlobalMaxPooling3D, L.GlobalAveragePooling1D, L.GlobalAveragePooling2D,
        L.GlobalAveragePooling3D, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D, L.Cropping1D,
        L.Cropping2D, L.Cropping3D, L.UpSampling1D, L.UpSampling2D, L.UpSampling3D,
    )
    elementwise = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)
    depthwise = (L.DepthwiseConv1D, L.DepthwiseConv2D)
    separable = (L.SeparableConv1D, L.SeparableConv2D)
    transpose = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
    conv = (L.Conv1D, L.Conv2D, L.Conv3D)
    return L, pass_through, elementwise, depthwise, separable, transpose, conv


def _channels_last(layer) -> bool:
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def channel_graph(model) -> ChannelGraph:
    """Read a functional or Sequential tf_keras model into channel groups (see the module doc)."""
    L, pass_through, elementwise, depthwise, separable, _, _ = _layer_classes()
    if not getattr(model, "_is_graph_network", False) or not model.inputs:
        raise TinypruneError(
            f"model {model.name!r} is not a functional or Sequential model with a known input",
            "build it with keras.Input(...) first (subclassed models cannot be rebuilt smaller)",
        )
    graph = ChannelGraph()
    layouts: dict[tuple, Layout] = {}
    node_of_layer: dict[str, tuple] = {}

    def visit(tensor) -> Layout:
        layer, node_index, tensor_index = tensor._keras_history
        key = (layer.name, node_index, tensor_index)
        if key in layouts:
            return layouts[key]
        node = layer._inbound_nodes[node_index]
        inputs = [] if isinstance(layer, L.InputLayer) else [visit(t) for t in node.keras_inputs]
        layouts[key] = _output_layout(layer, inputs, tensor)
        if node_of_layer.setdefault(layer.name, key[:2]) != key[:2]:  # called twice: shared weights
            graph.shared_layers.add(layer.name)
        graph.inputs.setdefault(layer.name, inputs)
        graph.output.setdefault(layer.name, layouts[key])
        return layouts[key]

    def _output_layout(layer, inputs: list[Layout], tensor) -> Layout:
        shape = tuple(tensor.shape)
        name = layer.name
        if isinstance(layer, L.InputLayer):
            return graph.new_group(shape[-1], frozen_by="the model input")
        if len(inputs) == 1 and isinstance(layer, L.Dense):
            return graph.new_group(layer.units, producer=name)
        # a feature map's layout is one block of repeat 1 (only Flatten creates other blocks)
        single = len(inputs) == 1 and len(inputs[0]) == 1 and inputs[0][0][0] == 1 and _channels_last(layer)
        if single and isinstance(layer, depthwise):
            (_, segments), = inputs[0]
            return ((1, tuple((g, m * layer.depth_multiplier) for g, m in segments)),)
        if single and isinstance(layer, separable):
            return graph.new_group(layer.filters, producer=name)
        if single and _plain_conv(layer) and layer.groups == 1:
            return graph.new_group(layer.filters, producer=name)
        if (isinstance(layer, L.BatchNormalization) and len(inputs) == 1
                and list(layer.axis) == [len(shape) - 1]):
            return inputs[0]
        if isinstance(layer, pass_through) and len(inputs) == 1 and _channels_last(layer):
            return inputs[0]
        if isinstance(layer, L.Flatten) and len(inputs) == 1:
            spatial = int(np.prod(layer.input_shape[1:-1], dtype=np.int64)) if len(layer.input_shape) > 2 else 1
            if spatial == 1:
                return inputs[0]
            if len(inputs[0]) == 1:
                (repeat, segments), = inputs[0]
                return ((repeat * spatial, segments),)
        if isinstance(layer, elementwise) and inputs and all(_same_structure(inputs[0], x) for x in inputs):
            for other in inputs[1:]:
                for (_, segments_a), (_, segments_b) in zip(inputs[0], other):
                    for (a, _), (b, _) in zip(segments_a, segments_b):
                        graph.union(a, b)
            return inputs[0]
        if isinstance(layer, L.Concatenate) and layer.axis in (-1, len(shape) - 1):
            if len(shape) == 2:
                return tuple(block for x in inputs for block in x)
            if all(len(x) == 1 and x[0][0] == 1 for x in inputs):
                return ((1, tuple(s for x in inputs for (_, segments) in x for s in segments)),)
        reason = f"layer {name!r} ({type(layer).__name__})"
        for layout in inputs:
            graph.freeze(layout, reason)
        return graph.new_group(shape[-1] if len(shape) > 1 else 1, frozen_by=reason)

    for tensor in model.outputs:
        graph.freeze(visit(tensor), "the model output")
    for name in graph.shared_layers:
        for layout in graph.inputs[name] + [graph.output[name]]:
            graph.freeze(layout, f"shared layer {name!r}")
    return graph


def _plain_conv(layer) -> bool:
    """An ordinary convolution: kernel (*window, in_channels, filters)."""
    _, _, _, depthwise, separable, transpose, conv = _layer_classes()
    return isinstance(layer, conv) and not isinstance(layer, depthwise + separable + transpose)


def _same_structure(a: Layout, b: Layout) -> bool:
    return len(a) == len(b) and all(
        ra == rb and len(sa) == len(sb) and all(ma == mb for (_, ma), (_, mb) in zip(sa, sb))
        for (ra, sa), (rb, sb) in zip(a, b)
    )


def _weight_axes(layer, graph: ChannelGraph, keep: dict[int, np.ndarray]) -> list[tuple] | None:
    """For each of the layer's weights, the kept indices per axis (None: all); None when the layer's
    weights stay as they are."""
    L, _, _, depthwise, separable, _, _ = _layer_classes()
    name = layer.name
    if name in graph.shared_layers or not layer.weights or name not in graph.inputs:
        return None
    inputs = graph.inputs[name]
    if len(inputs) != 1:
        return None
    kept_in = graph.indices(inputs[0], keep)
    kept_out = graph.indices(graph.output[name], keep)
    rank = len(layer.weights[0].shape)

    def on(axis_indices: dict[int, np.ndarray], weight_rank: int) -> tuple:
        return tuple(axis_indices.get(axis - weight_rank, None) for axis in range(weight_rank))

    if isinstance(layer, L.Dense) or (_plain_conv(layer) and layer.groups == 1):
        return [on({-2: kept_in, -1: kept_out}, rank)] + [on({-1: kept_out}, 1)] * (len(layer.weights) - 1)
    if isinstance(layer, depthwise):
        return [on({-2: kept_in}, rank)] + [on({-1: kept_out}, 1)] * (len(layer.weights) - 1)
    if isinstance(layer, separable):
        multiplier = layer.depth_multiplier
        kept_mid = (kept_in[:, None] * multiplier + np.arange(multiplier)).ravel()
        axes = [on({-2: kept_in}, rank), on({-2: kept_mid, -1: kept_out}, rank)]
        return axes + [on({-1: kept_out}, 1)] * (len(layer.weights) - 2)
    if isinstance(layer, L.BatchNormalization) and graph.output[name] is inputs[0]:
        return [on({-1: kept_in}, 1)] * len(layer.weights)
    return None


def _transform_weights(model, graph: ChannelGraph, keep: dict[int, np.ndarray], mode: str) -> dict:
    """Per layer name, its weights either sliced down to the kept channels ("slice") or kept at full
    size with every removed channel's entries zeroed ("mask")."""
    new_weights = {}
    for layer in model.layers:
        axes_per_weight = _weight_axes(layer, graph, keep)
        weights = layer.get_weights()
        if axes_per_weight is None:
            new_weights[layer.name] = weights
            continue
        transformed = []
        for weight, axes in zip(weights, axes_per_weight):
            for axis, kept in enumerate(axes):
                if kept is None:
                    continue
                if mode == "slice":
                    weight = np.take(weight, kept, axis=axis)
                else:
                    dropped = np.setdiff1d(np.arange(weight.shape[axis]), kept)
                    weight = weight.copy()
                    weight[(slice(None),) * axis + (dropped,)] = 0
            transformed.append(weight)
        new_weights[layer.name] = transformed
    return new_weights


def masked_copy(model, graph: ChannelGraph, keep: dict[int, np.ndarray]):
    """The model at full size with every removed channel's weights zeroed: what the compacted model
    must compute (a removed channel then contributes nothing to any kept output)."""
    import tf_keras as keras

    copy = keras.models.clone_model(model)
    weights = _transform_weights(model, graph, keep, "mask")
    for layer in copy.layers:
        layer.set_weights(weights[layer.name])
    return copy


def compact(model, graph: ChannelGraph, keep: dict[int, np.ndarray]):
    """A new, smaller dense model of the same class: producers get fewer units / filters, every
    dependent weight is sliced to the kept channels, everything else is copied."""

    for group, channels in keep.items():
        if group not in graph.prunable_groups():
            raise ValueError(f"channel group {group} cannot be pruned")
        if len(channels) == 0:
            raise TinypruneError(
                f"pruning would remove every unit of {', '.join(graph.groups[group].producers)}",
                "lower the pruning ratio for that layer (at least one unit must stay)",
            )
    sizes = {}
    for group in keep:
        for producer in graph.groups[group].producers:
            sizes[producer] = len(keep[group])
    config = model.get_config()
    for layer_config in config["layers"]:
        layer_config.pop("build_config", None)  # the recorded input shapes are the old, larger ones
        inner = layer_config["config"]
        if inner.get("name") in sizes:
            inner["units" if "units" in inner else "filters"] = sizes[inner["name"]]
    smaller = model.__class__.from_config(config, custom_objects=_custom_objects(model))
    weights = _transform_weights(model, graph, keep, "slice")
    for layer in smaller.layers:
        layer.set_weights(weights[layer.name])
    return smaller


def _custom_objects(model) -> dict:
    return {type(layer).__name__: type(layer) for layer in model.layers}


def unit_scores(model, graph: ChannelGraph) -> dict[int, np.ndarray]:
    """Per prunable group, each channel's L1 norm summed over the layers producing it."""
    scores = {}
    for group in graph.prunable_groups():
        total = np.zeros(graph.groups[group].size)
        for producer in graph.groups[group].producers:
            kernel = np.asarray(_producer_kernel(model.get_layer(producer)))
            total += np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
        scores[group] = total
    return scores


def _producer_kernel(layer):
    """The weight whose last axis is the layer's output units."""
    return layer.pointwise_kernel if hasattr(layer, "pointwise_kernel") else layer.kernel


def group_lasso_penalty(model, graph: ChannelGraph):
    """Sum over prunable channels of the L2 norm of everything producing that channel: trained in,
    it drives whole channels towards zero together (Wen et al. 2016, structured sparsity)."""
    import tensorflow as tf

    penalty = tf.constant(0.0)
    for group in graph.prunable_groups():
        squares = 0.0
        for producer in graph.groups[group].producers:
            kernel = _producer_kernel(model.get_layer(producer))
            squares += tf.reduce_sum(tf.reshape(tf.square(kernel), (-1, kernel.shape[-1])), axis=0)
        penalty += tf.reduce_sum(tf.sqrt(squares + 1e-12))
    return penalty

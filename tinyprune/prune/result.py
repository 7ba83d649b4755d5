"""What every pruning method returns, and the two figures every report compares: how many weights
are left (zeros in the kernels) and how much arithmetic the model does (multiply-accumulates)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyprune.verify.accuracy import keras_outputs, score


@dataclass
class PruneResult:
    """A pruned model (plain tf_keras layers, no pruning wrappers, not compiled: ready for
    quantize_int8), the method's name, its JSON-serialisable details and its per-epoch/round figures."""

    model: object
    method: str
    details: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


def history_recorder(phase: str, history: list[dict]):
    """A Keras callback appending each epoch's figures, tagged with the phase, to `history`."""
    import tf_keras as keras

    class HistoryRecorder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            history.append({"phase": phase, "epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})

    return HistoryRecorder()


def detached_copy(model):
    """An uncompiled copy with the same weights: what a method returns, never the caller's object."""
    import tf_keras as keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def model_score(model, x: np.ndarray, y: np.ndarray, task: str) -> float:
    """Float Keras accuracy for classification, negative mean squared error for regression: higher
    is better either way, so the methods compare scores without knowing the task."""
    result = score(keras_outputs(model, x), y, task, stage="float")
    return result.value if result.metric == "accuracy" else -result.value


def model_score_name(task: str) -> str:
    """What model_score's figure is for a task, for the methods' details."""
    return "accuracy" if task == "classification" else "negative mse"


def kernels_of(layer) -> list:
    """The multiply weights of a layer (what pruning zeroes), not its biases or normalisation."""
    names = ("kernel", "depthwise_kernel", "pointwise_kernel")
    return [getattr(layer, name) for name in names if getattr(layer, name, None) is not None]


def leaf_layers(model):
    """Every layer, with nested models opened up."""
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from leaf_layers(layer)
        else:
            yield layer


def weight_sparsity(model) -> dict[str, float]:
    """Per layer with kernels: the fraction of kernel entries that are exactly zero."""
    sparsity = {}
    for layer in leaf_layers(model):
        kernels = [np.asarray(k) for k in kernels_of(layer)]
        if kernels:
            total = sum(k.size for k in kernels)
            sparsity[layer.name] = float(sum(np.count_nonzero(k == 0) for k in kernels) / total)
    return sparsity


def kernel_weight_counts(model) -> tuple[int, int]:
    """(non-zero kernel entries, all kernel entries) over the whole model."""
    nonzero = total = 0
    for layer in leaf_layers(model):
        for kernel in kernels_of(layer):
            kernel = np.asarray(kernel)
            nonzero += int(np.count_nonzero(kernel))
            total += int(kernel.size)
    return nonzero, total


def _positions(shape) -> int:
    """How many times a layer applies its kernel: the product of the non-batch, non-channel dims."""
    return int(np.prod([int(d) for d in shape[1:-1]], dtype=np.int64)) if len(shape) > 2 else 1


def layer_macs(layer) -> int:
    """Multiply-accumulates of one Dense / convolution layer for one sample (channels-last);
    0 for layers without kernels. Depthwise and separable are tested first: they subclass Conv."""
    import tf_keras as keras

    layers = keras.layers
    if isinstance(layer, layers.Dense):
        return _positions(layer.output_shape) * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    if isinstance(layer, (layers.DepthwiseConv2D, layers.DepthwiseConv1D)):
        return _positions(layer.output_shape) * int(np.prod(layer.depthwise_kernel.shape))
    if isinstance(layer, (layers.SeparableConv1D, layers.SeparableConv2D)):
        depthwise = int(np.prod(layer.depthwise_kernel.shape))
        pointwise = int(np.prod(layer.pointwise_kernel.shape))
        return _positions(layer.output_shape) * (depthwise + pointwise)
    if isinstance(layer, (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)):
        # every input position scatters the whole kernel once
        return _positions(layer.input_shape) * int(np.prod(layer.kernel.shape))
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D)):
        # kernel (*window, in_channels / groups, filters): every output position uses all of it once
        return _positions(layer.output_shape) * int(np.prod(layer.kernel.shape))
    return 0


def count_macs(model) -> int:
    """Multiply-accumulates for one inference, counting Dense and convolution layers (the ops that
    dominate a microcontroller's time); element-wise ops, pooling and activations are left out."""
    return int(sum(layer_macs(layer) for layer in leaf_layers(model)))

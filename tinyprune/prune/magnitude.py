"""Magnitude pruning with fine-tuning (TF-MOT `prune_low_magnitude`), overall or per layer.

Unstructured: the zeros stay in the tensors, so the flatbuffer keeps its size (gzip and the
standalone backend's sparse formats are what shrink it); the structured methods compact instead."""
from __future__ import annotations

import functools
import math

from tinyprune.io.data import Dataset
from tinyprune.errors import TinypruneError
from tinyprune.prune.result import (PruneResult, detached_copy, history_recorder, kernels_of, leaf_layers,
                                    weight_sparsity)
from tinyprune.train import Progress, compile_for_task, fit

SCHEDULES = ("polynomial", "constant")
# Layers whose kernels TF-MOT 0.8.1's registry leaves (partly) unpruned: none of DepthwiseConv2D's, only the
# pointwise kernel of the separable convolutions, and DepthwiseConv1D is not registered at all.
COMPLETED_LAYERS = ("DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D")


@functools.cache
def _prunable_class(base: type) -> type:
    """`base` with TF-MOT's PrunableLayer interface offering every kernel it multiplies with."""
    import tensorflow_model_optimization as tfmot

    def get_prunable_weights(self):
        return kernels_of(self)

    return type(f"Prunable{base.__name__}", (base, tfmot.sparsity.keras.PrunableLayer),
                {"get_prunable_weights": get_prunable_weights, "__module__": __name__})


def _completed(layer) -> bool:
    return type(layer).__name__ in COMPLETED_LAYERS and type(layer).__module__.startswith("tf_keras")


def unprunable_layers(model, m_by_n: tuple[int, int] | None = None) -> dict[str, str]:
    """Layers with kernels that magnitude pruning leaves dense, and why. (With M:N sparsity the separable
    convolutions keep their depthwise kernel dense, as TF-MOT does.)"""
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    reasons = {}
    for layer in model.layers:
        if getattr(layer, "layers", None):  # a nested model: the clone that wraps the layers stops at it
            reasons.update({inner.name: f"inside the nested model {layer.name}"
                            for inner in leaf_layers(layer) if kernels_of(inner)})
        elif not kernels_of(layer):
            continue
        elif _completed(layer):
            if m_by_n is not None and "Depthwise" in type(layer).__name__:
                reasons[layer.name] = ("M:N groups run along input channels, and a depthwise kernel has one "
                                       "input channel per output")
        elif not (PruneRegistry.supports(layer) or hasattr(layer, "get_prunable_weights")):
            reasons[layer.name] = f"TF-MOT cannot prune {type(layer).__name__}"
    return reasons


def prunable_layer_names(model, m_by_n: tuple[int, int] | None = None) -> list[str]:
    """Layers whose kernels magnitude pruning zeroes: what TF-MOT prunes, and the depthwise and separable
    convolutions through a PrunableLayer of our own."""
    unprunable = unprunable_layers(model, m_by_n)
    return [layer.name for layer in model.layers if kernels_of(layer) and layer.name not in unprunable]


def _schedule(kind: str, sparsity: float, end_step: int, frequency: int):
    import tensorflow_model_optimization as tfmot

    if kind == "constant":
        return tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=frequency)
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0, end_step=end_step, frequency=frequency
    )


def magnitude_prune(model, data: Dataset, sparsity: float, layer_sparsity: dict[str, float] | None = None,
                    schedule: str = "polynomial", epochs: int = 10, batch_size: int = 32,
                    learning_rate: float = 1e-3, m_by_n: tuple[int, int] | None = None,
                    progress: Progress | None = None) -> PruneResult:
    """Wrap every prunable layer with its target sparsity, fine-tune, strip the wrappers.

    The schedule reaches its target two thirds into fine-tuning, so the last third trains with the
    final mask held. `m_by_n=(2, 4)` asks TF-MOT for 2:4 structured sparsity instead."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    layer_sparsity = dict(layer_sparsity or {})
    unprunable = unprunable_layers(model, m_by_n)
    prunable = prunable_layer_names(model, m_by_n)
    refused = [name for name in layer_sparsity if name in unprunable]
    if refused:
        raise TinypruneError(
            f"--layer-sparsity names {', '.join(refused)}, which magnitude pruning cannot prune ("
            + "; ".join(f"{name}: {unprunable[name]}" for name in refused) + ")",
            f"drop {'it' if len(refused) == 1 else 'them'}; prunable layers: {', '.join(prunable)}")
    unknown = sorted(set(layer_sparsity) - set(prunable))
    if unknown:
        raise TinypruneError(f"--layer-sparsity names {', '.join(unknown)}, not a prunable layer of the model",
                             f"use one of: {', '.join(prunable)}")
    for name, value in [("--sparsity", sparsity), *((f"--layer-sparsity {k}", v) for k, v in layer_sparsity.items())]:
        if not 0.0 <= value < 1.0:
            raise TinypruneError(f"{name} is {value}, outside [0, 1)", "give a fraction such as 0.75")
    if schedule not in SCHEDULES:
        raise TinypruneError(f"unknown pruning schedule {schedule!r}", f"use one of: {', '.join(SCHEDULES)}")
    if epochs < 1:
        raise TinypruneError("magnitude pruning needs at least one fine-tuning epoch",
                             "set --fine-tune-epochs to 1 or more")

    steps_per_epoch = math.ceil(len(data.x_train) / batch_size)
    end_step = max(1, (2 * epochs * steps_per_epoch) // 3)
    frequency = max(1, steps_per_epoch // 4)
    targets = {name: layer_sparsity.get(name, sparsity) for name in prunable}

    # what the prune line names: the layers left dense against --sparsity (with --sparsity 0, all are)
    not_pruned = {**unprunable, **{name: "--layer-sparsity 0" for name, target in layer_sparsity.items()
                                   if target == 0.0 and sparsity > 0}}

    def wrap(layer):
        target = targets.get(layer.name)
        if target is None or (target == 0.0 and m_by_n is None):
            return layer
        if _completed(layer) and m_by_n is None:  # a copy with the same weights offering its kernels to TF-MOT
            prunable_layer = _prunable_class(type(layer)).from_config(layer.get_config())
            prunable_layer.build(layer.input_shape)
            prunable_layer.set_weights(layer.get_weights())
            layer = prunable_layer
        if m_by_n is not None:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, sparsity_m_by_n=m_by_n)
        return tfmot.sparsity.keras.prune_low_magnitude(
            layer, pruning_schedule=_schedule(schedule, target, end_step, frequency))

    # The wrappers reuse the layers they wrap: prune a copy so the caller's model stays as it was.
    wrapped = keras.models.clone_model(detached_copy(model), clone_function=wrap)
    compile_for_task(wrapped, data.task, learning_rate)
    history: list[dict] = []
    fit(wrapped, data.x_train, data.y_train, epochs, batch_size, "fine-tune", progress,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep(), history_recorder("fine-tune", history)])
    stripped = _plain_layers(tfmot.sparsity.keras.strip_pruning(wrapped))
    achieved = weight_sparsity(stripped)
    details = {
        "schedule": schedule if m_by_n is None else f"{m_by_n[0]}:{m_by_n[1]}",
        "target_sparsity": {name: (f"{m_by_n[0]}:{m_by_n[1]}" if m_by_n else t) for name, t in targets.items()},
        "achieved_sparsity": achieved,
        "not_pruned": not_pruned,
        "fine_tune_epochs": epochs,
    }
    return PruneResult(model=stripped, method="magnitude", details=details, history=history)



def _plain_layers(model):
    """The model with our prunable layers back to the tf_keras classes they extend (same weights), so it
    saves and loads without tinyprune."""
    import tf_keras as keras

    def plain(layer):
        base = type(layer).__bases__[0] if type(layer).__module__ == __name__ else type(layer)
        return base.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=plain)
    copy.set_weights(model.get_weights())
    return copy

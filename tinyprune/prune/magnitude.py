"""Magnitude pruning with fine-tuning (TF-MOT `prune_low_magnitude`), overall or per layer.

Unstructured: the zeros stay in the tensors, so the flatbuffer keeps its size (gzip and the
standalone backend's sparse formats are what shrink it); the structured methods compact instead."""
from __future__ import annotations

import math

from tinyprune.io.data import Dataset
from tinyprune.errors import TinypruneError
from tinyprune.prune.result import PruneResult, detached_copy, history_recorder, weight_sparsity
from tinyprune.train import Progress, compile_for_task, fit

SCHEDULES = ("polynomial", "constant")


def prunable_layer_names(model) -> list[str]:
    """Layers whose kernel TF-MOT prunes (Dense, convolutions)."""
    return [layer.name for layer in model.layers
            if hasattr(layer, "kernel") or hasattr(layer, "depthwise_kernel")]


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
    prunable = prunable_layer_names(model)
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

    def wrap(layer):
        target = targets.get(layer.name)
        if target is None or (target == 0.0 and m_by_n is None):
            return layer
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
    stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    achieved = weight_sparsity(stripped)
    details = {
        "schedule": schedule if m_by_n is None else f"{m_by_n[0]}:{m_by_n[1]}",
        "target_sparsity": {name: (f"{m_by_n[0]}:{m_by_n[1]}" if m_by_n else t) for name, t in targets.items()},
        "achieved_sparsity": achieved,
        "fine_tune_epochs": epochs,
    }
    return PruneResult(model=stripped, method="magnitude", details=details, history=history)


"""Lottery tickets (Frankle & Carbin 2019), with rewinding (Frankle et al. 2019).

Iterative magnitude pruning: train, remove `prune_fraction` of the remaining weights of each layer
(half that in the output layer, as the paper does for its conv nets), reset the survivors to their
values after `rewind_epoch` epochs (0: the original initialisation, the paper's "winning ticket"),
retrain with the mask held, repeat for `rounds`. The control trains the same mask from a fresh random
initialisation: if the ticket beats it, the initial values mattered, not just the sparse structure."""
from __future__ import annotations

import numpy as np

from tinyprune.errors import TinypruneError
from tinyprune.prune.result import (PruneResult, detached_copy, history_recorder, kernel_weight_counts,
                                    kernels_of, leaf_layers, model_score)
from tinyprune.train import Progress, compile_for_task, fit, seed_everything


def lottery_ticket(model_or_fn, data, rounds: int = 8, prune_fraction: float = 0.2, rewind_epoch: int = 0,
                   train_epochs: int = 20, seed: int = 0, compare_random_reinit: bool = True,
                   learning_rate: float = 1e-3, batch_size: int = 32,
                   progress: Progress | None = None) -> PruneResult:
    """`model_or_fn`: a callable returning a fresh untrained model, or a model whose architecture is
    re-initialised with `seed` (a ticket is about the initial weights, so trained ones are not used).
    Every round trains `train_epochs - rewind_epoch` epochs, after the first full training run."""
    if rounds < 1 or not 0.0 < prune_fraction < 1.0:
        raise TinypruneError(f"lottery ticket needs rounds >= 1 and 0 < prune_fraction < 1 (got {rounds}, "
                             f"{prune_fraction})", "e.g. 8 rounds of 0.2 leave 17 % of the weights")
    if not 0 <= rewind_epoch < train_epochs:
        raise TinypruneError(f"rewind epoch {rewind_epoch} is not within the {train_epochs} training epochs",
                             f"give a rewind epoch from 0 (the original initialisation) to {train_epochs - 1}")
    import tf_keras as keras

    seed_everything(seed)
    network = _reinitialised(model_or_fn, seed) if isinstance(model_or_fn, keras.Model) else model_or_fn()
    kernels = _prunable_kernels(network)
    masks = [np.ones(k.shape, np.float32) for _, k in kernels]
    history: list[dict] = []

    rewind_point = network.get_weights()
    compile_for_task(network, data.task, learning_rate)
    if rewind_epoch:
        fit(network, data.x_train, data.y_train, rewind_epoch, batch_size, "dense", progress,
            callbacks=[history_recorder("dense", history)])
        rewind_point = network.get_weights()
    fit(network, data.x_train, data.y_train, train_epochs - rewind_epoch, batch_size, "dense", progress,
        callbacks=[history_recorder("dense", history)])
    dense_accuracy = model_score(network, data.x_test, data.y_test, data.task)
    rounds_report = [{"round": 0, "remaining_weights": 1.0, "test_accuracy": dense_accuracy}]

    for round_index in range(1, rounds + 1):
        output_kernel = len(kernels) - 1
        masks = [_prune_smallest(np.asarray(k), mask, prune_fraction / 2 if i == output_kernel else prune_fraction)
                 for i, ((_, k), mask) in enumerate(zip(kernels, masks))]
        network.set_weights(rewind_point)
        _apply(kernels, masks)
        _train_masked(network, kernels, masks, data, train_epochs - rewind_epoch, learning_rate, batch_size,
                      f"round {round_index}", history, progress)
        rounds_report.append({"round": round_index, "remaining_weights": _remaining(network),
                              "test_accuracy": model_score(network, data.x_test, data.y_test, data.task)})

    details = {
        "rounds": rounds_report,
        "prune_fraction": prune_fraction,
        "rewind_epoch": rewind_epoch,
        "train_epochs": train_epochs,
        "dense_accuracy": dense_accuracy,
        "ticket_accuracy": rounds_report[-1]["test_accuracy"],
        "remaining_weights": rounds_report[-1]["remaining_weights"],
        "layer_remaining": {name: float(mask.mean()) for (name, _), mask in zip(kernels, masks)},
    }
    if compare_random_reinit:
        control = _reinitialised(network, seed + 1)
        control_kernels = _prunable_kernels(control)
        _apply(control_kernels, masks)
        _train_masked(control, control_kernels, masks, data, train_epochs, learning_rate, batch_size,
                      "random reinit", history, progress)
        details["random_reinit_accuracy"] = model_score(control, data.x_test, data.y_test, data.task)
    return PruneResult(detached_copy(network), "lottery", details, history)


def _reinitialised(model, seed: int):
    """The same architecture with fresh initial weights drawn with `seed`."""
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)


def _prunable_kernels(model) -> list[tuple[str, object]]:
    """(layer name, kernel variable) of every Dense / convolution kernel, in model order."""
    return [(layer.name, kernel) for layer in leaf_layers(model) for kernel in kernels_of(layer)]


def _prune_smallest(kernel: np.ndarray, mask: np.ndarray, fraction: float) -> np.ndarray:
    """The mask with `fraction` of its surviving entries, the smallest in magnitude, removed.
    Ties are broken by position (a stable sort), so the mask is reproducible."""
    alive = np.flatnonzero(mask)
    count = int(round(fraction * alive.size))
    weakest = alive[np.argsort(np.abs(kernel.ravel()[alive]), kind="stable")[:count]]
    pruned = mask.copy().ravel()
    pruned[weakest] = 0
    return pruned.reshape(mask.shape)


def _apply(kernels, masks) -> None:
    for (_, kernel), mask in zip(kernels, masks):
        kernel.assign(kernel * mask)


def _train_masked(model, kernels, masks, data, epochs: int, learning_rate: float, batch_size: int,
                  phase: str, history: list[dict], progress: Progress | None) -> None:
    """Train with a fresh optimiser, zeroing the pruned weights after every step (the mask is held)."""
    import tf_keras as keras

    class HoldMask(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            _apply(kernels, masks)

    compile_for_task(model, data.task, learning_rate)
    fit(model, data.x_train, data.y_train, epochs, batch_size, phase, progress,
        callbacks=[HoldMask(), history_recorder(phase, history)])


def _remaining(model) -> float:
    nonzero, total = kernel_weight_counts(model)
    return nonzero / total

"""M:N structured sparsity (TF-MOT `sparsity_m_by_n`, 2:4 by default): in every group of N weights
along the input-channel axis, exactly M stay. Sparse tensor cores and TFLM's pruned format like it.

TF-MOT keeps exactly M per group in float, but int8 conversion rounds a kept weight smaller than
half a quantization step to zero, breaking the pattern (measured on the digits CNN: 2 of 2,048
dense_1 groups). `hold_int8_nonzeros` lifts such weights to one step before conversion: a change
below one int8 step, invisible to accuracy, that keeps every group exactly M:N in the flatbuffer."""
from __future__ import annotations

import numpy as np

from tinyprune.io.data import Dataset
from tinyprune.prune.magnitude import magnitude_prune
from tinyprune.prune.result import PruneResult
from tinyprune.train import Progress

INT8_STEPS = 127  # symmetric int8 weights: scale = max|w| / 127


def prune_m_by_n(model, data: Dataset, m: int = 2, n: int = 4, epochs: int = 3, batch_size: int = 32,
                 learning_rate: float = 1e-3, progress: Progress | None = None) -> PruneResult:
    """2:4 (or m:n) pruning of every layer TF-MOT supports, fine-tuned, with kept weights held
    nonzero through int8 conversion."""
    result = magnitude_prune(model, data, 0.0, epochs=epochs, batch_size=batch_size,
                             learning_rate=learning_rate, m_by_n=(m, n), progress=progress)
    result.details["lifted_to_one_int8_step"] = hold_int8_nonzeros(result.model)
    result.method = f"{m}:{n}"
    return result


def hold_int8_nonzeros(model) -> int:
    """Lift every nonzero kernel weight smaller than one per-tensor int8 step to that step (keeping
    its sign), so per-tensor or per-channel int8 keeps it nonzero. Works on plain and QAT-wrapped
    models; returns how many weights moved."""
    moved = 0
    for variable in model.weights:
        name = variable.name.split("/")[-1]
        if not name.startswith(("kernel", "depthwise_kernel", "pointwise_kernel")):
            continue
        weights = variable.numpy()
        step = np.abs(weights).max() / INT8_STEPS
        small = (weights != 0) & (np.abs(weights) < step)
        if small.any():
            variable.assign(np.where(small, np.sign(weights) * step, weights).astype(weights.dtype))
            moved += int(small.sum())
    return moved


def group_nonzeros(values: np.ndarray, n: int = 4) -> np.ndarray:
    """Nonzero count of each group of n consecutive entries along the last axis (TFLite's
    input-channel axis for FULLY_CONNECTED and CONV_2D weights)."""
    if values.shape[-1] % n:
        raise ValueError(f"last axis {values.shape[-1]} is not a multiple of {n}")
    return np.count_nonzero(values.reshape(-1, n), axis=1)

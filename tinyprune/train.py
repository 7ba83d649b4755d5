"""Training and fine-tuning, shared by every pruning method: the loss follows the task, runs are
seeded and deterministic, and progress goes to a callable instead of Keras' own printing."""
from __future__ import annotations

from typing import Callable

import numpy as np

from tinyprune.io.keras2 import outputs_probabilities

Progress = Callable[[str, int, int, dict], None]
"""progress(phase, step, total, figures): called after every epoch."""


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds plus deterministic kernels: same inputs, same bytes."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def compile_for_task(model, task: str, learning_rate: float = 1e-3):
    """Adam with cross-entropy (logits or probabilities, as the last layer gives) or MSE."""
    import tf_keras as keras

    if task == "classification":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not outputs_probabilities(model))
        metrics = ["accuracy"]
    else:
        loss, metrics = "mse", ["mse"]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
    return model


def progress_callback(phase: str, epochs: int, progress: Progress | None):
    """A Keras callback that reports each epoch's figures to `progress`."""
    import tf_keras as keras

    class _EpochProgress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if progress is not None:
                progress(phase, epoch + 1, epochs, {k: float(v) for k, v in (logs or {}).items()})

    return _EpochProgress()


def fit(model, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, phase: str,
        progress: Progress | None = None, callbacks=()):
    """model.fit without Keras' console output, reporting per epoch."""
    if epochs <= 0:
        return model
    model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
              callbacks=[*callbacks, progress_callback(phase, epochs, progress)])
    return model

"""Stage 2: pruning methods, one a file. `run_method` picks the one the configuration names."""
from __future__ import annotations

from tinyprune.prune.result import PruneResult


def run_method(model, data, config, progress=None) -> PruneResult:
    """Prune `model` with the configured method; the caller's model is left as it was."""
    if config.method == "magnitude":
        from tinyprune.prune.magnitude import magnitude_prune

        return magnitude_prune(model, data, config.sparsity, config.layer_sparsity, config.schedule,
                               config.fine_tune_epochs, config.batch_size, config.learning_rate,
                               progress=progress)
    raise NotImplementedError(config.method)

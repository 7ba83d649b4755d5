"""Stage 2: pruning methods, one a file. `run_method` picks the one the configuration names."""
from __future__ import annotations

import numpy as np

from tinyprune.errors import TinypruneError
from tinyprune.prune.result import PruneResult


def run_method(model, data, config, progress=None) -> tuple[PruneResult, object]:
    """Prune `model` with the configured method; the caller's model is left as it was.

    Returns the result and the data the pruned model reads: LassoNet keeps only some input features."""
    if config.method == "magnitude":
        return _magnitude(model, data, config, progress), data
    if config.method == "structured":
        from tinyprune.prune.structured import structured_prune

        result = structured_prune(model, data, ratio=None if config.layer_ratio else config.ratio,
                                  layer_ratios=config.layer_ratio or None, criterion=config.criterion,
                                  sensitivity_scan=config.sensitivity_scan, fine_tune_epochs=config.fine_tune_epochs,
                                  learning_rate=config.learning_rate, batch_size=config.batch_size, seed=config.seed,
                                  progress=progress)
        if config.sparsity > 0 or config.layer_sparsity:  # compose: magnitude pruning of what remains
            then = _magnitude(result.model, data, config, progress)
            then.details = {**result.details, "then_magnitude": then.details}
            result = PruneResult(then.model, "structured + magnitude", then.details, result.history + then.history)
        return result, data
    if config.method == "lottery":
        from tinyprune.prune.lottery import lottery_ticket

        return lottery_ticket(model, data, rounds=config.rounds, prune_fraction=config.prune_fraction,
                              rewind_epoch=config.rewind_epoch, train_epochs=max(config.fine_tune_epochs, 1),
                              seed=config.seed, learning_rate=config.learning_rate, batch_size=config.batch_size,
                              progress=progress), data
    if config.method == "lassonet":
        from tinyprune.prune.lassonet import lassonet_select, restrict_features

        if np.ndim(data.x_train) != 2:
            raise TinypruneError(
                f"LassoNet selects input features of tabular data, but x_train has shape {data.x_train.shape}",
                "give x as (samples, features), or use --method structured for images",
            )
        result = lassonet_select(data, M=config.lassonet_m, max_features=config.max_features or None,
                                 seed=config.seed, progress=progress)
        return result, restrict_features(data, result.details["kept_features"]["indices"])
    raise TinypruneError(f"unknown pruning method {config.method!r}", "use magnitude, structured, lottery or lassonet")


def _magnitude(model, data, config, progress) -> PruneResult:
    from tinyprune.prune.magnitude import magnitude_prune

    if config.m_by_n:
        from tinyprune.prune.m_by_n import prune_m_by_n

        m, n = (int(part) for part in config.m_by_n.split(":"))
        return prune_m_by_n(model, data, m, n, config.fine_tune_epochs, config.batch_size, config.learning_rate,
                            progress)

    return magnitude_prune(model, data, config.sparsity, config.layer_sparsity, config.schedule,
                           config.fine_tune_epochs, config.batch_size, config.learning_rate, progress=progress)

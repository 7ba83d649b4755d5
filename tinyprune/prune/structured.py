"""Structured pruning: remove whole Dense units and convolution filters, then rebuild a smaller *dense*
model (compaction.py) and fine-tune it. Unlike magnitude pruning, the int8 flatbuffer, the MACs and
the arena really shrink, with no sparse kernels needed on the microcontroller.

Units are ranked by the L1 norm of their weights (Li et al. 2017), optionally after training with a
group-lasso penalty that pushes whole units to zero first (Wen et al. 2016). How much each layer loses
is given per layer, or as one global ratio that a sensitivity scan spreads over the layers: robust
layers are pruned harder than the ones the accuracy depends on."""
from __future__ import annotations

import numpy as np

from tinyprune.errors import TinypruneError
from tinyprune.prune import compaction
from tinyprune.prune.result import (PruneResult, count_macs, detached_copy, history_recorder, model_score,
                                    model_score_name)
from tinyprune.train import Progress, compile_for_task, fit, seed_everything

CRITERIA = ("l1", "group_lasso")
SCAN_RATIOS = tuple(round(0.1 * step, 1) for step in range(10))
SCAN_SAMPLES = 512


def structured_prune(model, data, ratio: float | None = None, layer_ratios: dict[str, float] | None = None,
                     criterion: str = "l1", sensitivity_scan: bool = False, fine_tune_epochs: int = 10,
                     group_lasso_epochs: int = 10, group_lasso_strength: float = 1e-3,
                     learning_rate: float = 1e-3, batch_size: int = 32, seed: int = 0,
                     progress: Progress | None = None) -> PruneResult:
    """Remove the weakest `ratio` of the units of every prunable layer (or `layer_ratios[name]` per
    layer; or, with `sensitivity_scan`, `ratio` of all prunable units spread by sensitivity), compact
    and fine-tune. The input model is left unchanged."""
    layer_ratios = layer_ratios or None  # an empty mapping (a CLI default) means "not given"
    if criterion not in CRITERIA:
        raise TinypruneError(f"unknown structured pruning criterion {criterion!r}",
                             f"use one of: {', '.join(CRITERIA)}")
    if (ratio is None) == (layer_ratios is None):
        raise TinypruneError("structured pruning needs either one global ratio or per-layer ratios",
                             "give ratio=0.5 (or --ratio) or layer_ratios={'conv_2': 0.5, ...}, not both")
    if sensitivity_scan and layer_ratios is not None:
        raise TinypruneError("the sensitivity scan spreads one global ratio, but per-layer ratios were given",
                             "give either ratio with sensitivity_scan, or layer_ratios without it")
    for name, value in ({"ratio": ratio} if ratio is not None else layer_ratios).items():
        if not 0.0 <= value < 1.0:
            raise TinypruneError(f"pruning ratio {value} for {name} is outside [0, 1)",
                                 "give the fraction of units to remove, e.g. 0.5")
    seed_everything(seed)
    history: list[dict] = []
    work = detached_copy(model)
    graph = compaction.channel_graph(work)
    prunable = graph.prunable_groups()
    if not prunable:
        raise TinypruneError(f"model {model.name!r} has no layer whose units can be removed",
                             "structured pruning needs Dense or Conv layers that are not the output layer")
    if criterion == "group_lasso":
        work.add_loss(lambda: group_lasso_strength * compaction.group_lasso_penalty(work, graph))
        compile_for_task(work, data.task, learning_rate)
        fit(work, data.x_train, data.y_train, group_lasso_epochs, batch_size, "group_lasso", progress,
            callbacks=[history_recorder("group_lasso", history)])
    scores = compaction.unit_scores(work, graph)
    sensitivity = {}
    if layer_ratios is not None:
        group_ratios = _ratios_from_layers(graph, prunable, layer_ratios)
    elif sensitivity_scan:
        sensitivity = _sensitivity(work, graph, scores, data, seed)
        group_ratios = _allocate(graph, sensitivity, ratio)
    else:
        group_ratios = {group: ratio for group in prunable}
    keep = {group: _strongest(scores[group], group_ratios[group]) for group in prunable}
    smaller = compaction.compact(work, graph, keep)
    score_compacted = model_score(smaller, data.x_test, data.y_test, data.task)
    compile_for_task(smaller, data.task, learning_rate)
    fit(smaller, data.x_train, data.y_train, fine_tune_epochs, batch_size, "fine_tune", progress,
        callbacks=[history_recorder("fine_tune", history)])
    details = {
        "criterion": criterion,
        "ratio": ratio,
        "layers": {
            producer: {"units_before": graph.groups[group].size, "units_after": int(len(keep[group])),
                       "ratio": round(1 - len(keep[group]) / graph.groups[group].size, 4),
                       "tied_with": [p for p in graph.groups[group].producers if p != producer]}
            for group in prunable for producer in graph.groups[group].producers
        },
        "kept_whole": _frozen_producers(graph),
        "sensitivity": {"+".join(graph.groups[g].producers): curve for g, curve in sensitivity.items()},
        "macs_before": count_macs(model),
        "macs_after": count_macs(smaller),
        "params_before": int(model.count_params()),
        "params_after": int(smaller.count_params()),
        "test_score_before_fine_tune": score_compacted,
        "test_score_after_fine_tune": model_score(smaller, data.x_test, data.y_test, data.task),
        "score": model_score_name(data.task),
    }
    return PruneResult(detached_copy(smaller), "structured", details, history)


def _strongest(scores: np.ndarray, ratio: float) -> np.ndarray:
    """Indices (ascending) of the units that stay: the highest scores, at least one unit.
    A stable sort keeps ties in index order, so the choice is reproducible."""
    count = max(1, int(round(len(scores) * (1.0 - ratio))))
    return np.sort(np.argsort(-scores, kind="stable")[:count])


def _ratios_from_layers(graph, prunable: list[int], layer_ratios: dict[str, float]) -> dict[int, float]:
    """Per group, the largest ratio asked for any of its producers (tied layers lose the same units)."""
    producers = {p: g for g in prunable for p in graph.groups[g].producers}
    unknown = sorted(set(layer_ratios) - set(producers))
    if unknown:
        frozen = _frozen_producers(graph)
        why = "; ".join(f"{name} keeps all units because of {frozen[name]}" for name in unknown if name in frozen)
        raise TinypruneError(
            f"cannot prune layer(s) {', '.join(unknown)}" + (f" ({why})" if why else ""),
            f"give ratios for prunable layers only: {', '.join(sorted(producers))}",
        )
    ratios = {g: 0.0 for g in prunable}
    for name, value in layer_ratios.items():
        ratios[producers[name]] = max(ratios[producers[name]], value)
    return ratios


def _frozen_producers(graph) -> dict[str, str]:
    """Dense / conv layers that keep every unit, and why (model output, a Reshape, ...)."""
    roots = {graph.find(g) for g in range(len(graph.groups))}
    return {producer: graph.groups[root].frozen_by for root in sorted(roots) if graph.groups[root].frozen_by
            for producer in graph.groups[root].producers}


def _sensitivity(model, graph, scores: dict, data, seed: int) -> dict[int, list[list[float]]]:
    """Per group: [ratio, score] when only that group loses `ratio` of its weakest units (masked,
    no fine-tuning), measured on training samples so the test set stays unseen."""
    import tf_keras as keras

    rows = np.random.default_rng(seed).permutation(len(data.x_train))[:SCAN_SAMPLES]
    x, y = data.x_train[np.sort(rows)], data.y_train[np.sort(rows)]
    probe = keras.models.clone_model(model)
    curves = {}
    for group in graph.prunable_groups():
        curves[group] = []
        for ratio in SCAN_RATIOS:
            masked = compaction.masked_copy(model, graph, {group: _strongest(scores[group], ratio)})
            probe.set_weights(masked.get_weights())
            curves[group].append([ratio, model_score(probe, x, y, data.task)])
    return curves


def _allocate(graph, curves: dict[int, list[list[float]]], ratio: float) -> dict[int, float]:
    """Greedy: raise, one scan step at a time, the ratio of the group whose next step costs the least
    score, until `ratio` of all prunable units are removed. Robust layers end up pruned harder."""
    sizes = {g: graph.groups[g].size for g in curves}
    target = ratio * sum(sizes.values())
    step = {g: 0 for g in curves}

    def removed() -> float:
        return sum(curves[g][step[g]][0] * sizes[g] for g in curves)

    while removed() < target - 1e-9:
        open_groups = [g for g in curves if step[g] + 1 < len(SCAN_RATIOS)]
        if not open_groups:
            break
        cheapest = min(open_groups, key=lambda g: (curves[g][0][1] - curves[g][step[g] + 1][1], -sizes[g], g))
        step[cheapest] += 1
    return {g: curves[g][step[g]][0] for g in curves}

"""Weight clustering (TF-MOT `cluster_weights`): every kernel keeps only k distinct values, so TFLM's
LUT format stores it as k-entry tables and log2(k)-bit indices (tinyprune.compress).

The clusters survive int8 conversion only with per-tensor quantization: one scale maps k floats to
k int8 values, while per-channel scales give each channel its own k and the tensor up to k x channels
(measured on the digits CNN: 16 clusters -> 43-75 int8 values per tensor). `int8_distinct_values`
reports both counts from the converted flatbuffer."""
from __future__ import annotations

import numpy as np

from tinyprune.io.data import Dataset
from tinyprune.errors import TinypruneError
from tinyprune.prune.result import (PruneResult, detached_copy, history_recorder, kernels_of, leaf_layers,
                                    weight_sparsity)
from tinyprune.train import Progress, compile_for_task, fit

CENTROID_INITS = ("kmeans++", "linear", "density", "random")
MAX_LUT_CLUSTERS = 128  # a 7-bit LUT index, the widest TFLM decodes


def _centroid_init(name: str):
    import tensorflow_model_optimization as tfmot

    inits = tfmot.clustering.keras.CentroidInitialization
    return {"kmeans++": inits.KMEANS_PLUS_PLUS, "linear": inits.LINEAR,
            "density": inits.DENSITY_BASED, "random": inits.RANDOM}[name]


def kernel_clusters(model) -> dict[str, int]:
    """Per layer with kernels: distinct values in its kernels (what a LUT must hold)."""
    return {layer.name: int(max(len(np.unique(np.asarray(k))) for k in kernels_of(layer)))
            for layer in leaf_layers(model) if kernels_of(layer)}


def cluster(model, data: Dataset, clusters: int, centroid_init: str = "kmeans++", epochs: int = 3,
            batch_size: int = 32, learning_rate: float = 1e-4, preserve_sparsity: bool = False,
            layer_clusters: dict[str, int] | None = None, progress: Progress | None = None) -> PruneResult:
    """Cluster every Dense and convolution kernel into `clusters` values (`layer_clusters` overrides
    it per layer name; 0 leaves a layer as it is: unclustered and frozen while the others fine-tune,
    so a pruned layer keeps its zeros), fine-tune the centroids, strip the wrappers. `preserve_sparsity=True` keeps
    the zeros of an already pruned model (zero stays a value of its own, no pruned weight returns)."""
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

    layer_clusters = dict(layer_clusters or {})
    clusterable = [layer.name for layer in model.layers if kernels_of(layer)]
    unknown = sorted(set(layer_clusters) - set(clusterable))
    if unknown:
        raise TinypruneError(f"--layer-clusters names {', '.join(unknown)}, not a layer with a kernel",
                             f"use one of: {', '.join(clusterable)}")
    for name, count in [("--clusters", clusters), *((f"--layer-clusters {k}", v) for k, v in layer_clusters.items())]:
        if not 2 <= count <= MAX_LUT_CLUSTERS and not (count == 0 and name != "--clusters"):
            raise TinypruneError(f"{name} is {count}, outside 2..{MAX_LUT_CLUSTERS}",
                                 "give 4 to 32 clusters: 16 keeps a 4-bit LUT index and the accuracy")
    if centroid_init not in CENTROID_INITS:
        raise TinypruneError(f"unknown centroid initialisation {centroid_init!r}",
                             f"use one of: {', '.join(CENTROID_INITS)}")
    if epochs < 1:
        raise TinypruneError("clustering needs at least one fine-tuning epoch", "set --fine-tune-epochs to 1 or more")

    # cluster a copy: the wrappers reuse the layers they wrap
    copy = detached_copy(model)
    init = _centroid_init(centroid_init)

    frozen = [name for name, count in layer_clusters.items() if count == 0]

    def wrap(layer):
        if layer.name in frozen:
            layer.trainable = False
        if layer.name not in clusterable or layer.name in frozen:
            return layer
        # cluster_weights passes preserve_sparsity on to TF-MOT's sparsity-preserving clustering
        return tfmot.clustering.keras.cluster_weights(
            layer, number_of_clusters=layer_clusters.get(layer.name, clusters), cluster_centroids_init=init,
            preserve_sparsity=preserve_sparsity)

    clustered = keras.models.clone_model(copy, clone_function=wrap)
    compile_for_task(clustered, data.task, learning_rate)
    history: list[dict] = []

    fit(clustered, data.x_train, data.y_train, epochs, batch_size, "cluster fine-tune", progress,
        callbacks=[history_recorder("cluster fine-tune", history)])
    stripped = tfmot.clustering.keras.strip_clustering(clustered)
    for name in frozen:
        stripped.get_layer(name).trainable = True
    details = {
        "clusters": {name: layer_clusters.get(name, clusters) for name in clusterable
                     if layer_clusters.get(name) != 0},
        "centroid_init": centroid_init,
        "preserve_sparsity": preserve_sparsity,
        "fine_tune_epochs": epochs,
        "kernel_clusters": kernel_clusters(stripped),
        "achieved_sparsity": weight_sparsity(stripped),
    }
    return PruneResult(model=stripped, method="cluster", details=details, history=history)


def int8_distinct_values(graph) -> list[dict]:
    """Per int8 weight tensor of a converted Graph: distinct values in the whole tensor and the most in
    one channel, and whether it is quantized per channel."""
    rows = []
    for tensor in graph.tensors:
        if not tensor.is_constant or tensor.dtype != "int8" or len(tensor.shape) < 2:
            continue
        values = tensor.numpy()
        per_channel = tensor.quantization is not None and tensor.quantization.per_channel
        axis = tensor.quantization.axis if per_channel else 0
        channels = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
        rows.append({
            "tensor": tensor.name.split(";")[0],
            "per_channel": per_channel,
            "distinct": len(np.unique(values)),
            "max_distinct_per_channel": int(max(len(np.unique(channel)) for channel in channels)),
        })
    return rows

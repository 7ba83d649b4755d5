"""Quantization-aware fine-tuning that keeps what pruning or clustering made (`--quantize qat`).

Plain QAT re-learns every weight and refills the zeros of a pruned model and the clusters of a
clustered one. TF-MOT's collaborative schemes keep them: pruning-preserving QAT (PQAT) holds the
zero mask, cluster-preserving QAT (CQAT) holds the centroids, optionally the zeros too. The result is
a QAT Keras model; `tinyprune.quantize.quantize_int8` converts it like any other (the fake-quant
ranges then set the int8 parameters). `int8_sparsity` measures what survived, on the flatbuffer."""
from __future__ import annotations

import numpy as np

from tinyprune.io.data import Dataset
from tinyprune.errors import TinypruneError
from tinyprune.prune.result import PruneResult, detached_copy, history_recorder, weight_sparsity
from tinyprune.train import Progress, compile_for_task, fit

PRESERVE = ("none", "sparsity", "clusters", "clusters+sparsity")


def _scheme(preserve: str):
    import tensorflow_model_optimization as tfmot

    combine = tfmot.experimental.combine
    if preserve == "sparsity":
        return combine.Default8BitPrunePreserveQuantizeScheme()
    if preserve == "clusters":
        return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=False)
    if preserve == "clusters+sparsity":
        return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
    return tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()


def quantize_aware(model, data: Dataset, preserve: str = "sparsity", epochs: int = 2, batch_size: int = 32,
                   learning_rate: float = 1e-4, progress: Progress | None = None) -> PruneResult:
    """Fine-tune `model` with int8 fake quantization, keeping its zeros and/or clusters (`preserve`).

    The model must be stripped of pruning and clustering wrappers (what every tinyprune method
    returns). The result's model is a QAT model for `quantize_int8`. With preserve="sparsity" the
    kept weights are also held nonzero through int8 (tinyprune.prune.m_by_n.hold_int8_nonzeros), so
    the flatbuffer has exactly the pruned zeros: a 2:4 model stays exactly 2:4."""
    import tensorflow_model_optimization as tfmot

    if preserve not in PRESERVE:
        raise TinypruneError(f"unknown QAT preservation {preserve!r}", f"use one of: {', '.join(PRESERVE)}")
    if epochs < 1:
        raise TinypruneError("QAT needs at least one fine-tuning epoch", "set --qat-epochs to 1 or more")
    copy = detached_copy(model)
    try:
        annotated = tfmot.quantization.keras.quantize_annotate_model(copy)
        with tfmot.quantization.keras.quantize_scope():
            qat_model = tfmot.quantization.keras.quantize_apply(annotated, _scheme(preserve))
    except (ValueError, RuntimeError) as exc:
        raise TinypruneError(f"TF-MOT cannot quantization-aware-train this model: {str(exc).splitlines()[0]}",
                             "use a Sequential or functional model of Dense, Conv, pooling and activations, "
                             "or --quantize ptq") from exc
    compile_for_task(qat_model, data.task, learning_rate)
    history: list[dict] = []

    fit(qat_model, data.x_train, data.y_train, epochs, batch_size, "qat", progress,
        callbacks=[history_recorder("qat", history)])
    details = {"preserve": preserve, "qat_epochs": epochs, "sparsity_before_qat": weight_sparsity(model)}
    if preserve == "sparsity":
        from tinyprune.prune.m_by_n import hold_int8_nonzeros

        details["lifted_to_one_int8_step"] = hold_int8_nonzeros(qat_model)
    return PruneResult(model=qat_model, method=f"qat ({preserve})", details=details, history=history)


def int8_sparsity(graph) -> dict[str, float]:
    """Per int8 weight tensor (rank >= 2) of a converted Graph: the fraction of entries equal to their
    zero point (what TFLM's pruned format and the standalone sparse kernels skip)."""
    sparsity = {}
    for tensor in graph.tensors:
        if not tensor.is_constant or tensor.dtype != "int8" or len(tensor.shape) < 2:
            continue
        values = tensor.numpy().astype(np.int32)
        zero_points = np.asarray(tensor.quantization.zero_point if tensor.quantization else (0,))
        if len(zero_points) > 1:
            along = [1] * values.ndim
            along[tensor.quantization.axis] = len(zero_points)
            zero_points = zero_points.reshape(along)
        sparsity[tensor.name.split(";")[0]] = float(np.mean(values == zero_points))
    return sparsity


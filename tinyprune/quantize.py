"""Stage 3: a Keras model -> a full-integer int8 TFLite flatbuffer (post-training quantization).

The target runtime shapes the conversion: the Arduino library's TFLM (January 2023) mis-computes
per-channel FULLY_CONNECTED, so for it the dense layers get per-tensor weights."""
from __future__ import annotations

import numpy as np

from tinyprune.errors import TinypruneError


def representative_samples(x: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` samples of x, chosen with the seed (all of x when it has fewer)."""
    if len(x) < 1:
        raise TinypruneError("the calibration data is empty", "give x_calib or x_train with samples")
    order = np.random.default_rng(seed).permutation(len(x))[: min(count, len(x))]
    return np.asarray(x[np.sort(order)], dtype=np.float32)


def quantize_int8(model, calibration: np.ndarray, per_channel_dense: bool = True, per_channel: bool = True) -> bytes:
    """Full-integer post-training quantization: int8 weights, activations, input and output.

    `per_channel_dense=False` gives FULLY_CONNECTED one scale (what the Arduino library computes
    right); `per_channel=False` gives every layer one scale, which keeps k weight clusters as exactly
    k int8 values and drops the per-channel scale tables."""
    import tensorflow as tf

    return _convert_int8(tf.lite.TFLiteConverter.from_keras_model(model), calibration, per_channel_dense, per_channel)


def quantize_saved_model(folder, calibration: np.ndarray, per_channel_dense: bool = True) -> bytes:
    """The same full-integer conversion for a SavedModel without Keras layers (Keras 3's model.export)."""
    import tensorflow as tf

    return _convert_int8(tf.lite.TFLiteConverter.from_saved_model(str(folder)), calibration, per_channel_dense, True)


def _convert_int8(converter, calibration: np.ndarray, per_channel_dense: bool, per_channel: bool) -> bytes:
    import tensorflow as tf

    def representative_dataset():
        for sample in calibration:
            yield [sample[np.newaxis, ...].astype(np.float32)]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    converter._experimental_disable_per_channel_quantization_for_dense_layers = not per_channel_dense
    converter._experimental_disable_per_channel = not per_channel
    try:
        return bytes(converter.convert())
    except Exception as exc:  # the converter raises many types; all mean "this model does not convert"
        raise TinypruneError(
            f"the model does not convert to full-integer int8 TFLite: {_converter_reason(exc)}",
            "use layers with int8 TFLite builtins (Dense, Conv, pooling, activations); "
            "drop custom layers and recurrent layers",
        ) from exc


def _converter_reason(exc: Exception) -> str:
    """The converter's first error without the MLIR source location that precedes it."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    first = text.splitlines()[0]
    return first.split("error: ", 1)[-1][:300]

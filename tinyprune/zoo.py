"""Reference architectures built offline (weights=None style: random init, no downloads).

The four MLPerf Tiny models from their papers plus small sensor models: the memory emulation, the
standalone backend and the benchmarks are all checked on this zoo."""
from __future__ import annotations

import numpy as np


def _keras():
    import tinyprune  # noqa: F401  (legacy Keras switch before TensorFlow loads)
    import tf_keras as keras

    return keras


def ds_cnn_kws(filters: int = 64, classes: int = 12):
    """DS-CNN keyword spotting (MLPerf Tiny): 49x10 MFCC input, 4 depthwise-separable blocks, avg pool."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(shape=(49, 10, 1), name="mfcc")
    x = layers.Conv2D(filters, (10, 4), strides=2, padding="same", use_bias=False, name="conv_in")(inputs)
    x = layers.BatchNormalization(name="bn_in")(x)
    x = layers.ReLU(name="relu_in")(x)
    for block in range(4):
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"dw_{block}")(x)
        x = layers.BatchNormalization(name=f"dw_bn_{block}")(x)
        x = layers.ReLU(name=f"dw_relu_{block}")(x)
        x = layers.Conv2D(filters, 1, use_bias=False, name=f"pw_{block}")(x)
        x = layers.BatchNormalization(name=f"pw_bn_{block}")(x)
        x = layers.ReLU(name=f"pw_relu_{block}")(x)
    x = layers.AveragePooling2D(pool_size=x.shape[1:3], name="avg_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="ds_cnn_kws")


def resnet8(classes: int = 10):
    """ResNet-8 for CIFAR-10 (MLPerf Tiny image classification): three residual stacks with ADD."""
    keras = _keras()
    layers = keras.layers

    def stack(x, filters, strides, name):
        y = layers.Conv2D(filters, 3, strides=strides, padding="same", name=f"{name}_conv1")(x)
        y = layers.BatchNormalization(name=f"{name}_bn1")(y)
        y = layers.ReLU(name=f"{name}_relu1")(y)
        y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(y)
        y = layers.BatchNormalization(name=f"{name}_bn2")(y)
        if strides != 1:
            x = layers.Conv2D(filters, 1, strides=strides, name=f"{name}_shortcut")(x)
        return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))

    inputs = keras.Input(shape=(32, 32, 3), name="image")
    x = layers.Conv2D(16, 3, padding="same", name="conv_in")(inputs)
    x = layers.BatchNormalization(name="bn_in")(x)
    x = layers.ReLU(name="relu_in")(x)
    x = stack(x, 16, 1, "stack1")
    x = stack(x, 32, 2, "stack2")
    x = stack(x, 64, 2, "stack3")
    x = layers.AveragePooling2D(pool_size=8, name="avg_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(classes, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="resnet8")


def mobilenet_v1_uncalibrated(alpha: float = 0.25, classes: int = 2):
    """MobileNetV1 alpha=0.25 at 96x96x3 for visual wake words (MLPerf Tiny), built with weights=None."""
    keras = _keras()
    return keras.applications.MobileNet(
        input_shape=(96, 96, 3), alpha=alpha, weights=None, classes=classes, include_top=True
    )


def fc_autoencoder(inputs: int = 640):
    """The MLPerf Tiny anomaly-detection autoencoder: 640 -> 4x128 -> 8 -> 4x128 -> 640."""
    keras = _keras()
    layers = keras.layers
    x = x_in = keras.Input(shape=(inputs,), name="frames")
    for i, units in enumerate([128, 128, 128, 128, 8, 128, 128, 128, 128]):
        x = layers.Dense(units, name=f"dense_{i}")(x)
        x = layers.BatchNormalization(name=f"bn_{i}")(x)
        x = layers.ReLU(name=f"relu_{i}")(x)
    outputs = layers.Dense(inputs, name="reconstruction")(x)
    return keras.Model(x_in, outputs, name="fc_autoencoder")


def mlp(inputs: int = 64, classes: int = 10):
    """The built-in tabular model (tinyprune.demo.demo_mlp) on 64 features."""
    from tinyprune.demo import demo_mlp

    return demo_mlp(inputs, classes)


def conv1d_sensor(window: int = 128, channels: int = 3, classes: int = 6):
    """A 1-D CNN over an accelerometer window (TFLite lowers Conv1D to CONV_2D with reshapes)."""
    keras = _keras()
    layers = keras.layers
    return keras.Sequential(
        [keras.Input(shape=(window, channels), name="window"),
         layers.Conv1D(16, 5, activation="relu", name="conv_1"),
         layers.MaxPooling1D(2, name="pool_1"),
         layers.Conv1D(32, 3, activation="relu", name="conv_2"),
         layers.GlobalAveragePooling1D(name="gap"),
         layers.Dense(classes, activation="softmax", name="classes")],
        name="conv1d_sensor",
    )


def softmax_mean_head(classes: int = 5):
    """SOFTMAX, MEAN and per-channel FULLY_CONNECTED in one small model."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(shape=(12, 12, 4), name="grid")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    x = layers.GlobalAveragePooling2D(name="mean")(x)
    x = layers.Dense(16, activation="relu", name="dense")(x)
    outputs = layers.Dense(classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="softmax_mean_head")


def digits_cnn():
    from tinyprune.demo import demo_cnn

    return demo_cnn()


def fc_decoder(code: int = 16, outputs: int = 900):
    """A decoder head far wider than its input: with per-channel weights, TFLM's FULLY_CONNECTED takes
    two per-channel arrays from the tail while its temporaries are alive, and the arena peaks there."""
    keras = _keras()
    return keras.Sequential(
        [keras.Input(shape=(code,), name="code"), keras.layers.Dense(outputs, name="decoded")],
        name="fc_decoder",
    )


def strided_conv(height: int = 9, width: int = 7, channels: int = 5):
    """A strided convolution without bias on an odd-sized input, then a small 'same' convolution:
    tiny activations, so the arena peaks while CONV_2D prepares."""
    keras = _keras()
    layers = keras.layers
    return keras.Sequential(
        [keras.Input(shape=(height, width, channels), name="patch"),
         layers.Conv2D(13, 3, strides=2, use_bias=False, name="strided"),
         layers.Conv2D(3, 2, padding="same", name="same")],
        name="strided_conv",
    )


def mobilenet_v1_vww(alpha: float = 0.25, classes: int = 2, seed: int = 0):
    """MobileNetV1 alpha=0.25 at 96x96x3 as MLPerf Tiny trains it for visual wake words (global average
    pool, then a softmax Dense), with every BatchNormalization's moving statistics set from a seeded
    uniform batch. With random weights and BN at its initial statistics the activations shrink ~4x per
    block: the int8 scales collapse to ~1e-8 and TFLM aborts preparing SOFTMAX (see mobilenet_v1_uncalibrated)."""
    keras = _keras()
    backbone = keras.applications.MobileNet(
        input_tensor=keras.Input(shape=(96, 96, 3), name="image"), alpha=alpha, weights=None,
        include_top=False,
    )
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(backbone.output)  # named: same bytes each build
    outputs = keras.layers.Dense(classes, activation="softmax", name="wake_word")(pooled)
    model = keras.Model(backbone.input, outputs, name="mobilenet_v1_vww")
    batch = np.random.default_rng(seed).uniform(0.0, 1.0, size=(16, 96, 96, 3)).astype(np.float32)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            features = keras.Model(model.input, layer.input)(batch, training=False).numpy()
            gamma, beta, _, _ = layer.get_weights()
            axes = tuple(range(features.ndim - 1))
            layer.set_weights([gamma, beta, features.mean(axis=axes), features.var(axis=axes) + 1e-3])
    return model


def residual_block(classes: int = 4):
    """One residual block with ADD on a 16x16x3 input, then MEAN: small enough for qemu tests."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(shape=(16, 16, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inputs)
    y = layers.Conv2D(8, 3, padding="same", name="conv_a")(x)
    y = layers.BatchNormalization(name="bn_a")(y)
    y = layers.ReLU(name="relu_a")(y)
    y = layers.Conv2D(8, 3, padding="same", name="conv_b")(y)
    y = layers.BatchNormalization(name="bn_b")(y)
    x = layers.ReLU(name="relu_out")(layers.Add(name="add")([x, y]))
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.GlobalAveragePooling2D(name="mean")(x)
    outputs = layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="residual_block")


def avgpool_mean(classes: int = 3):
    """AVERAGE_POOL_2D with clipped SAME windows, a depthwise conv with fused RELU6, MEAN and SOFTMAX."""
    keras = _keras()
    layers = keras.layers
    return keras.Sequential(
        [keras.Input(shape=(12, 12, 2), name="grid"),
         layers.Conv2D(8, 3, activation="relu", name="conv"),
         layers.AveragePooling2D(3, strides=2, padding="same", name="avg_pool"),
         layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw"),
         layers.ReLU(6.0, name="relu6"),
         layers.GlobalAveragePooling2D(name="mean"),
         layers.Dense(classes, activation="softmax", name="probs")],
        name="avgpool_mean",
    )


def op_mix(classes: int = 4):
    """RELU6 of its own, PAD, CONCATENATION and MUL in one small graph: the less common int8 ops."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(shape=(8, 8, 2), name="grid")
    x = layers.ZeroPadding2D(((1, 2), (2, 1)), name="pad")(layers.ReLU(6.0, name="clip")(inputs))
    left = layers.Conv2D(4, 3, activation="relu", name="left")(x)
    right = layers.Conv2D(4, 3, name="right")(x)
    x = layers.Concatenate(name="concat")([left, right])
    x = layers.Multiply(name="gate")([x, layers.Conv2D(8, 1, name="gate_conv")(x)])
    x = layers.Flatten(name="flatten")(x)
    x = layers.ReLU(name="relu")(x)
    outputs = layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="op_mix")


def gated_mlp(inputs: int = 24, classes: int = 3):
    """TANH and LOGISTIC (sigmoid) activations: a small gated MLP."""
    keras = _keras()
    layers = keras.layers
    x_in = keras.Input(shape=(inputs,), name="features")
    value = layers.Dense(16, activation="tanh", name="value")(x_in)
    gate = layers.Dense(16, activation="sigmoid", name="gate")(x_in)
    x = layers.Multiply(name="gated")([value, gate])
    outputs = layers.Dense(classes, activation="sigmoid", name="scores")(x)
    return keras.Model(x_in, outputs, name="gated_mlp")


ZOO = {
    # the MLPerf Tiny reference architectures
    "ds_cnn_kws": (ds_cnn_kws, True),
    "resnet8": (resnet8, True),
    "mobilenet_v1_vww": (mobilenet_v1_vww, True),
    "fc_autoencoder": (fc_autoencoder, True),
    # small sensor and demo models
    "mlp": (mlp, False),
    "conv1d_sensor": (conv1d_sensor, False),
    "digits_cnn": (digits_cnn, False),
    # one model each for the operators and memory peaks the tests must cover
    "softmax_mean_head": (softmax_mean_head, True),
    "fc_decoder": (fc_decoder, True),
    "strided_conv": (strided_conv, False),
    "residual_block": (residual_block, True),
    "avgpool_mean": (avgpool_mean, False),
    "op_mix": (op_mix, False),
    "gated_mlp": (gated_mlp, True),
    # keras.applications' MobileNet with untouched BatchNormalization: a model TFLM cannot run
    "mobilenet_v1_uncalibrated": (mobilenet_v1_uncalibrated, True),
}
"""name -> (builder, per-channel FULLY_CONNECTED weights when converted)."""


def zoo_int8(name: str, seed: int = 0, calibration_samples: int = 32) -> bytes:
    """A zoo model as full-int8 TFLite: seeded random weights, calibrated on seeded uniform inputs."""
    from tinyprune.quantize import quantize_int8

    keras = _keras()
    builder, per_channel_dense = ZOO[name]
    keras.utils.set_random_seed(seed)
    model = builder()
    shape = (calibration_samples,) + tuple(model.input_shape[1:])
    calibration = np.random.default_rng(seed).uniform(0.0, 1.0, size=shape).astype(np.float32)
    return quantize_int8(model, calibration, per_channel_dense=per_channel_dense)

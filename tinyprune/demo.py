"""The built-in default: a small CNN on scikit-learn's digits, fixed so its figures compare across
issues and benchmarks (13.7k parameters, 91,776 MACs)."""
from __future__ import annotations

DEMO_EPOCHS = 30


def demo_cnn(input_shape=(8, 8, 1), classes: int = 10, seed: int = 0):
    """Conv2D(16,3x3,same,relu) -> MaxPool 2 -> Conv2D(32,3x3,same,relu) -> MaxPool 2 -> Flatten ->
    Dense(64,relu) -> Dense(10)."""
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_1"),
            layers.MaxPooling2D(2, name="pool_1"),
            layers.Conv2D(32, 3, padding="same", activation="relu", name="conv_2"),
            layers.MaxPooling2D(2, name="pool_2"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="dense_1"),
            layers.Dense(classes, name="logits"),
        ],
        name="digits_cnn",
    )



def demo_mlp(features: int, classes: int, seed: int = 0):
    """The built-in model for tabular data (flat feature vectors): Dense 32 -> Dense 16 -> Dense classes."""
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    return keras.Sequential(
        [keras.Input(shape=(features,), name="features"),
         layers.Dense(32, activation="relu", name="dense_1"),
         layers.Dense(16, activation="relu", name="dense_2"),
         layers.Dense(classes, name="logits")],
        name="tabular_mlp",
    )

"""Stage 1 (data): a data set as arrays, from an .npz file, a built-in scikit-learn set, a folder of
images (one subfolder a class) or a CSV table, checked against the model before any training starts."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from tinyprune.errors import TinypruneError
from tinyprune.io.dataset import Dataset, split

BUILTIN_SETS = ("digits", "breast_cancer", "wine")
REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")


def digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1], as (N, 8, 8, 1) images; stratified split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[..., np.newaxis]
    return Dataset("digits", *split(x, bunch.target.astype(np.int64), seed, test_fraction))


DATA_HINT = (f"give an .npz file with {', '.join(REQUIRED_KEYS)}, a folder of images with one subfolder a "
             f"class, a .csv table with --target COLUMN, or one of: {', '.join(BUILTIN_SETS)}")


def load_dataset(source: str, seed: int = 0, target: str = "", input_shape: tuple | None = None) -> Dataset:
    """A built-in set by name, an .npz with x_train, y_train, x_test, y_test (optional x_calib), a folder
    of images with one subfolder a class (resized to input_shape), or a CSV table whose `target` column
    holds the labels. One-hot labels become class indices."""
    path = Path(source)
    if target and (source in BUILTIN_SETS or path.suffix.lower() != ".csv"):
        raise TinypruneError(f"--target {target} names a CSV column, but the data {source!r} is not a .csv table",
                             "drop --target, or give the data as a .csv file")
    if source in BUILTIN_SETS:
        return {"digits": digits, "breast_cancer": breast_cancer, "wine": wine}[source](seed)
    if path.is_dir():
        from tinyprune.io.images import load_image_folder

        return class_indices(load_image_folder(path, seed, input_shape))
    if not path.is_file():
        raise TinypruneError(f"data set {source!r} is neither a file, a folder nor a built-in set", DATA_HINT)
    if path.suffix.lower() == ".csv":
        from tinyprune.io.tables import load_csv

        return load_csv(path, target, seed)
    return class_indices(_load_npz(path))


def _load_npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as exc:
        raise TinypruneError(
            f"{path} is not a readable .npz archive ({type(exc).__name__})",
            "save the data with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)",
        ) from exc
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        raise TinypruneError(
            f"{path} lacks the arrays {', '.join(missing)} (it has {', '.join(sorted(arrays)) or 'none'})",
            f"save it with numpy.savez and the keys {', '.join(REQUIRED_KEYS)} (optional x_calib)",
        )
    return Dataset(path.stem, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                   arrays.get("x_calib"))


def _is_one_hot(y: np.ndarray) -> bool:
    """(N, C) labels, C > 1, each row one 1 and zeros elsewhere (int or float)."""
    return (y.ndim == 2 and y.shape[1] > 1 and len(y) > 0 and np.issubdtype(y.dtype, np.number)
            and bool(np.all((y == 0) | (y == 1))) and bool(np.all(y.sum(axis=1) == 1)))


def class_indices(data: Dataset) -> Dataset:
    """One-hot labels (int or float) as class indices: the model is a classifier either way, and the
    loss, the accuracy and the confusion matrix all read indices."""
    if not (_is_one_hot(data.y_train) and _is_one_hot(data.y_test)
            and data.y_train.shape[1] == data.y_test.shape[1]):
        return data
    note = f"one-hot {data.y_train.dtype} labels ({data.y_train.shape[1]} columns) read as class indices"
    return replace(data, y_train=data.y_train.argmax(axis=1).astype(np.int64),
                   y_test=data.y_test.argmax(axis=1).astype(np.int64), notes=(*data.notes, note))


def channels_first_fix(name: str, shape: tuple, input_shape: tuple) -> TinypruneError | None:
    """The error for channels-first samples given to a channels-last model: the fix is a transpose
    (a reshape would scramble the pixels)."""
    shape, input_shape = tuple(shape), tuple(input_shape)
    if len(shape) < 2 or shape == input_shape or (shape[0], *shape[1:]) != (input_shape[-1], *input_shape[:-1]):
        return None
    axes = (0, *range(2, len(shape) + 1), 1)
    return TinypruneError(
        f"{name} is channels-first, samples of shape {shape}, but the model is channels-last, {input_shape}",
        f"transpose it, not reshape: {name} = {name}.transpose{axes}")


def validate(data: Dataset, input_shape: tuple, output_units: int, calibration_samples: int = 0) -> None:
    """Refuse data the model cannot train or be checked on, before minutes of training are spent."""
    for name in ("x_train", "x_test", "x_calib"):
        x = getattr(data, name)
        if x is None:
            continue
        if not np.issubdtype(x.dtype, np.number):
            raise TinypruneError(f"{name} has dtype {x.dtype}, not numbers", f"store {name} as float32")
        if tuple(x.shape[1:]) != tuple(input_shape):
            if error := channels_first_fix(name, x.shape[1:], input_shape):
                raise error
            raise TinypruneError(
                f"{name} has samples of shape {tuple(x.shape[1:])} but the model takes {tuple(input_shape)}",
                "reshape the data to the model's input shape, or give the model that matches the data",
            )
        if not np.all(np.isfinite(x)):
            raise TinypruneError(f"{name} contains NaN or infinite values",
                                 f"clean or impute {name} before building")
    for x_name, y_name in (("x_train", "y_train"), ("x_test", "y_test")):
        x, y = getattr(data, x_name), getattr(data, y_name)
        if len(x) != len(y):
            raise TinypruneError(f"{x_name} has {len(x)} samples but {y_name} has {len(y)}",
                                 f"give one label per sample in {y_name}")
        if len(x) == 0:
            raise TinypruneError(f"{x_name} is empty", f"give at least one sample in {x_name}")
        if not np.all(np.isfinite(np.asarray(y, dtype=np.float64))):
            raise TinypruneError(f"{y_name} contains NaN or infinite values", f"clean {y_name}")
    if data.task == "classification":
        for y_name in ("y_train", "y_test"):
            y = getattr(data, y_name)
            if y.min() < 0 or y.max() >= output_units:
                raise TinypruneError(
                    f"{y_name} has labels from {y.min()} to {y.max()} but the model has {output_units} outputs",
                    f"use labels 0..{output_units - 1}, or a last layer with {int(y.max()) + 1} units",
                )
    if calibration_samples and len(data.calibration) < calibration_samples:
        raise TinypruneError(
            f"the calibration data has {len(data.calibration)} samples, fewer than the "
            f"{calibration_samples} asked for",
            f"lower --calibration-samples to at most {len(data.calibration)}, or give more x_calib",
        )


def _tabular(name: str, bunch, seed: int, test_fraction: float) -> Dataset:
    """A scikit-learn table: stratified split, features standardised with the training split's
    mean and deviation (the test split stays unseen), named features kept."""
    x_train, y_train, x_test, y_test = split(bunch.data, bunch.target.astype(np.int64), seed, test_fraction)
    mean, deviation = x_train.mean(axis=0), x_train.std(axis=0)

    def standardise(x: np.ndarray) -> np.ndarray:
        return ((x - mean) / deviation).astype(np.float32)

    return Dataset(name, standardise(x_train), y_train, standardise(x_test), y_test,
                   feature_names=tuple(str(n) for n in bunch.feature_names))


def breast_cancer(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled Wisconsin breast cancer table: 569 samples, 30 features, 2 classes."""
    from sklearn.datasets import load_breast_cancer

    return _tabular("breast_cancer", load_breast_cancer(), seed, test_fraction)


def wine(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled wine table: 178 samples, 13 features, 3 classes."""
    from sklearn.datasets import load_wine

    return _tabular("wine", load_wine(), seed, test_fraction)

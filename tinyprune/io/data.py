"""Stage 1 (data): a data set as arrays, from an .npz file or a built-in scikit-learn set, checked
against the model before any training starts."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyprune.errors import TinypruneError

BUILTIN_SETS = ("digits", "breast_cancer", "wine")
REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_calib: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None

    @property
    def task(self) -> str:
        """'classification' for integer labels, 'regression' for float targets."""
        return "classification" if np.issubdtype(self.y_train.dtype, np.integer) else "regression"

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1 if self.task == "classification" else 0

    @property
    def calibration(self) -> np.ndarray:
        return self.x_calib if self.x_calib is not None else self.x_train


def digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1], as (N, 8, 8, 1) images; stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[..., np.newaxis]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return Dataset("digits", x_train, y_train, x_test, y_test)


def load_dataset(source: str, seed: int = 0) -> Dataset:
    """A built-in set by name, or an .npz with x_train, y_train, x_test, y_test (optional x_calib)."""
    if source in BUILTIN_SETS:
        return {"digits": digits, "breast_cancer": breast_cancer, "wine": wine}[source](seed)
    path = Path(source)
    if not path.is_file():
        raise TinypruneError(
            f"data set {source!r} is neither a file nor a built-in set",
            f"give an .npz file with {', '.join(REQUIRED_KEYS)} or one of: {', '.join(BUILTIN_SETS)}",
        )
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


def validate(data: Dataset, input_shape: tuple, output_units: int, calibration_samples: int = 0) -> None:
    """Refuse data the model cannot train or be checked on, before minutes of training are spent."""
    for name in ("x_train", "x_test", "x_calib"):
        x = getattr(data, name)
        if x is None:
            continue
        if not np.issubdtype(x.dtype, np.number):
            raise TinypruneError(f"{name} has dtype {x.dtype}, not numbers", f"store {name} as float32")
        if tuple(x.shape[1:]) != tuple(input_shape):
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
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        bunch.data, bunch.target.astype(np.int64), test_size=test_fraction, random_state=seed,
        stratify=bunch.target,
    )
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

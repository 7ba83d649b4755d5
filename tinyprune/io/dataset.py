"""A data set as arrays, and the seeded split every loader uses: a leaf the loaders (data.py, images.py,
tables.py) and the stages all import."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyprune.errors import TinypruneError


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_calib: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None
    class_names: tuple[str, ...] | None = None
    notes: tuple[str, ...] = ()  # what loading changed, said in the load line (one-hot labels -> indices)

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


def split(x: np.ndarray, y: np.ndarray, seed: int, test_fraction: float = 0.2) -> tuple[np.ndarray, ...]:
    """x_train, y_train, x_test, y_test: a seeded split, stratified when y holds class indices."""
    from sklearn.model_selection import train_test_split

    stratify = y if np.issubdtype(y.dtype, np.integer) else None
    try:
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                                            stratify=stratify)
    except ValueError:  # a class with one sample, or fewer test samples than classes
        raise TinypruneError(f"{len(x)} samples cannot be split {1 - test_fraction:.0%}/{test_fraction:.0%} "
                             "with every class in both parts",
                             "give at least two samples of every class, and more samples than 5x the classes"
                             ) from None
    return x_train, y_train, x_test, y_test

"""Data sets: the built-in digits, .npz files, and every check that must refuse bad data early."""
import numpy as np
import pytest

from tinyprune.io.data import Dataset, digits, load_dataset, validate
from tinyprune.errors import TinypruneError


def test_digits_is_the_scaled_bundled_set():
    data = digits(seed=0)
    assert data.x_train.shape[1:] == (8, 8, 1)
    assert len(data.x_train) + len(data.x_test) == 1797
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.task == "classification" and data.classes == 10
    assert np.array_equal(digits(seed=0).x_test, data.x_test)  # seeded split


def _save(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_npz_roundtrip_and_regression(tmp_path, rng):
    x = rng.normal(size=(20, 4)).astype(np.float32)
    y = rng.normal(size=(20, 1)).astype(np.float32)
    data = load_dataset(_save(tmp_path / "reg.npz", x_train=x, y_train=y, x_test=x, y_test=y, x_calib=x[:5]))
    assert data.task == "regression"
    assert len(data.calibration) == 5


def test_npz_missing_keys_and_not_an_archive(tmp_path):
    with pytest.raises(TinypruneError, match="lacks the arrays y_test"):
        load_dataset(_save(tmp_path / "a.npz", x_train=np.zeros(2), y_train=np.zeros(2), x_test=np.zeros(2)))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(TinypruneError, match="not a readable .npz"):
        load_dataset(str(junk))
    with pytest.raises(TinypruneError, match="neither a file nor a built-in"):
        load_dataset(str(tmp_path / "nothing.npz"))


def _dataset(x_train, y_train, x_test=None, y_test=None):
    return Dataset("t", x_train, y_train, x_train if x_test is None else x_test,
                   y_train if y_test is None else y_test)


@pytest.mark.parametrize("problem", ["shape", "nan", "length", "labels", "calibration"])
def test_validate_refuses_bad_data(problem, rng):
    x = rng.uniform(size=(10, 8, 8, 1)).astype(np.float32)
    y = np.arange(10) % 3
    calibration = 0
    if problem == "shape":
        x = x.reshape(10, 64)
    elif problem == "nan":
        x[3, 1, 1, 0] = np.nan
    elif problem == "length":
        y = y[:9]
    elif problem == "labels":
        y = y + 5
    else:
        calibration = 11
    words = {"shape": "model takes", "nan": "NaN", "length": "has 9", "labels": "labels from",
             "calibration": "fewer than"}[problem]
    with pytest.raises(TinypruneError, match=words):
        validate(_dataset(x, y), (8, 8, 1), 3, calibration)

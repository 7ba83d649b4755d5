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
    with pytest.raises(TinypruneError, match="neither a file, a folder nor a built-in"):
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


# -- data as users keep it: image folders, CSV tables, one-hot labels, channels-first arrays ----------

def _image_folder(folder, classes=("cat", "dog"), per_class=10, size=(12, 10), mode="RGB"):
    """Class subfolders of PNGs whose brightness is the class: a set a model can learn."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for index, name in enumerate(classes):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(60 + 120 * index, 20, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "RGB").convert(mode).save(folder / name / f"{i}.png")
    (folder / classes[0] / "notes.txt").write_text("not an image: skipped like image_dataset_from_directory")
    return folder


def test_image_folder_resized_to_the_model_and_its_channels(tmp_path):
    data = load_dataset(str(_image_folder(tmp_path / "pets")), seed=0, input_shape=(8, 6, 1))
    assert data.x_train.shape[1:] == (8, 6, 1) and data.x_train.dtype == np.float32
    assert len(data.x_train) + len(data.x_test) == 20 and data.class_names == ("cat", "dog")
    assert sorted(np.bincount(data.y_test)) == [2, 2]  # stratified
    assert data.x_train.max() > 150  # 0..255, as image_dataset_from_directory gives them
    by_class = [data.x_train[data.y_train == c].mean() for c in (0, 1)]
    assert by_class[1] - by_class[0] > 80  # labels follow the sorted subfolder names
    assert "2 classes of images resized to 8x6, 1 channel" in data.notes[0]
    rgb = load_dataset(str(tmp_path / "pets"), seed=0)  # no model: the first image's size and colour
    assert rgb.x_train.shape[1:] == (10, 12, 3)


def test_image_folder_with_train_and_test(tmp_path):
    _image_folder(tmp_path / "set" / "train", per_class=6)
    _image_folder(tmp_path / "set" / "test", per_class=3, mode="L")
    data = load_dataset(str(tmp_path / "set"), seed=0, input_shape=(10, 12, 3))
    assert (len(data.x_train), len(data.x_test)) == (12, 6)
    assert data.x_test.shape[1:] == (10, 12, 3)  # grey images expanded to the model's colour


def test_image_folder_refusals(tmp_path):
    _image_folder(tmp_path / "one", classes=("cat",))
    with pytest.raises(TinypruneError, match="has 1 class subfolder: cat"):
        load_dataset(str(tmp_path / "one"), input_shape=(8, 8, 1))
    _image_folder(tmp_path / "two")
    with pytest.raises(TinypruneError, match=r"not images \(height, width"):
        load_dataset(str(tmp_path / "two"), input_shape=(64,))
    (tmp_path / "two" / "dog" / "broken.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(TinypruneError, match="broken.png is not a readable image"):
        load_dataset(str(tmp_path / "two"), input_shape=(8, 8, 1))


def _csv(path, text):
    path.write_text(text)
    return str(path)


def test_csv_table_classes_text_labels_and_regression(tmp_path):
    rows = "\n".join(f"{i % 7},{i * 0.5},{['setosa', 'virginica'][i % 2]},{i % 2},{i * 0.1}" for i in range(40))
    path = _csv(tmp_path / "iris.csv", "a,b,species,label,score\n" + rows + "\n\n")
    text = load_dataset(path, target="species")
    assert text.task == "classification" and text.class_names == ("setosa", "virginica")
    assert text.feature_names == ("a", "b", "label", "score") and text.x_train.shape == (32, 4)
    assert "setosa=0, virginica=1" in text.notes[0]
    with pytest.raises(TinypruneError, match="column 'species' of .* is not numeric .line 2: 'setosa'"):
        load_dataset(path, target="label")
    _csv(tmp_path / "reg.csv", "x1,x2,y\n" + "\n".join(f"{i % 2},{i * 2},{i / 3}" for i in range(20)))
    regression = load_dataset(str(tmp_path / "reg.csv"), target="y")
    assert regression.task == "regression" and regression.y_train.shape == (16, 1)
    classes = load_dataset(str(tmp_path / "reg.csv"), target="x1")  # integers: class labels
    assert classes.task == "classification" and classes.classes == 2
    with pytest.raises(TinypruneError, match="cannot be split 80%/20% with every class"):
        load_dataset(str(tmp_path / "reg.csv"), target="x2")  # 20 classes of one sample


def test_csv_refusals(tmp_path):
    path = _csv(tmp_path / "t.csv", "a,b,y\n1,2,0\n3,4,1\n")
    with pytest.raises(TinypruneError, match="has no column 'label'.*columns: a, b, y"):
        load_dataset(path, target="label")
    with pytest.raises(TinypruneError, match="needs the label column named.*--target COLUMN"):
        load_dataset(path)
    with pytest.raises(TinypruneError, match="--target y names a CSV column"):
        load_dataset("digits", target="y")
    ragged = _csv(tmp_path / "r.csv", "a,b,y\n1,2,0\n3,1\n")
    with pytest.raises(TinypruneError, match="line 3 .* has 2 fields"):
        load_dataset(ragged, target="y")


@pytest.mark.parametrize("dtype", [np.int64, np.float32])
def test_one_hot_labels_become_class_indices(tmp_path, rng, dtype):
    x = rng.normal(size=(30, 4)).astype(np.float32)
    y = np.arange(30) % 3
    one_hot = np.eye(3, dtype=dtype)[y]
    data = load_dataset(_save(tmp_path / "oh.npz", x_train=x, y_train=one_hot, x_test=x, y_test=one_hot))
    assert data.task == "classification" and data.classes == 3
    assert np.array_equal(data.y_train, y) and data.y_train.dtype == np.int64
    assert data.notes == (f"one-hot {np.dtype(dtype)} labels (3 columns) read as class indices",)
    soft = np.full((30, 3), 1 / 3, dtype=np.float32)  # not one-hot: stays a regression target
    assert load_dataset(_save(tmp_path / "s.npz", x_train=x, y_train=soft, x_test=x, y_test=soft)).task == "regression"


@pytest.mark.parametrize("input_shape, axes", [((8, 6, 3), "(0, 2, 3, 1)"), ((20, 2), "(0, 2, 1)")])
def test_channels_first_data_gets_a_transpose(rng, input_shape, axes):
    channels_first = (input_shape[-1], *input_shape[:-1])
    x = rng.uniform(size=(10, *channels_first)).astype(np.float32)
    with pytest.raises(TinypruneError, match="x_train is channels-first") as refused:
        validate(_dataset(x, np.arange(10) % 3), input_shape, 3)
    assert f"x_train = x_train.transpose{axes}" in str(refused.value)
    moved = x.transpose(tuple(int(a) for a in axes.strip("()").split(", ")))
    validate(_dataset(moved, np.arange(10) % 3), input_shape, 3)

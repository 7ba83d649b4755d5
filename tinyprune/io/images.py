"""Image folders as Keras's image_dataset_from_directory reads them: one subfolder a class, the sorted
subfolder names being the class indices (or train/ and test/ folders, each laid out so). Every image is
resized to the model's input and converted to its channels; pixels stay 0..255 floats, the values
image_dataset_from_directory gives, so a model trained on those reads the same numbers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyprune.errors import TinypruneError
from tinyprune.io.dataset import Dataset, split

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
LAYOUT_HINT = "lay the images out as FOLDER/<class name>/<image>.png, one subfolder a class, at least two classes"


def load_image_folder(folder: Path, seed: int, input_shape: tuple | None = None) -> Dataset:
    """The images as (N, height, width, channels) float32, labels as class indices, split 80/20 unless
    the folder already holds train/ and test/."""
    subfolders = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if subfolders == ["test", "train"]:
        shape = input_shape or _first_image_shape(folder / "train")
        x_train, y_train, classes = _read_classes(folder / "train", shape)
        x_test, y_test, test_classes = _read_classes(folder / "test", shape)
        if test_classes != classes:
            raise TinypruneError(f"{folder}/train has the classes {', '.join(classes)} but {folder}/test has "
                                 f"{', '.join(test_classes)}", "give test/ the same class subfolders as train/")
    else:
        shape = input_shape or _first_image_shape(folder)
        x, y, classes = _read_classes(folder, shape)
        x_train, y_train, x_test, y_test = split(x, y, seed)
    return Dataset(folder.name, x_train, y_train, x_test, y_test, class_names=tuple(classes),
                   notes=(f"{len(classes)} classes of images resized to {shape[0]}x{shape[1]}, {shape[2]} channel"
                          + ("s" if shape[2] > 1 else ""),))


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _first_image_shape(folder: Path) -> tuple[int, int, int]:
    """Without a model (the built-in CNN): the size and colour of the first image."""
    from PIL import Image

    files = _image_files(folder)
    if not files:
        raise TinypruneError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})", LAYOUT_HINT)
    with Image.open(files[0]) as image:
        return image.height, image.width, 1 if image.mode in ("1", "L", "I", "F") else 3


def _read_classes(folder: Path, shape: tuple) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if len(shape) != 3 or shape[2] not in (1, 3):
        raise TinypruneError(f"the model takes samples of shape {tuple(shape)}, not images (height, width, 1 or 3 "
                             "channels)", "give an image model, or the data as an .npz of arrays")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise TinypruneError(f"image folder {folder} has {len(classes)} class subfolder"
                             f"{'' if len(classes) == 1 else 's'}{': ' + classes[0] if classes else ''}",
                             LAYOUT_HINT)
    images, labels = [], []
    for index, name in enumerate(classes):
        files = _image_files(folder / name)
        if not files:
            raise TinypruneError(f"class folder {folder / name} holds no images ({', '.join(IMAGE_SUFFIXES)})",
                                 "put the class's images in it, or remove the folder")
        images += [_read_image(path, shape) for path in files]
        labels += [index] * len(files)
    return np.stack(images), np.array(labels, dtype=np.int64), classes


def _read_image(path: Path, shape: tuple) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    height, width, channels = shape
    try:
        with Image.open(path) as image:
            converted = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
    except (UnidentifiedImageError, OSError) as exc:
        raise TinypruneError(f"{path} is not a readable image ({type(exc).__name__})",
                             "replace or remove the file") from None
    return np.asarray(converted, dtype=np.float32).reshape(height, width, channels)

"""CSV tables: a header row, one column the label (--target), every other column a numeric feature.
Features are read as they are in the file (standardise them first if the model expects that). Integer
labels mean classes, text labels are classes numbered in sorted order, other numbers are regression."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tinyprune.errors import TinypruneError
from tinyprune.io.dataset import Dataset, split


def load_csv(path: Path, target: str, seed: int) -> Dataset:
    try:
        with path.open(newline="") as file:
            reader = csv.reader(file)
            rows = [(reader.line_num, row) for row in reader if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TinypruneError(f"{path} is not a readable CSV table ({type(exc).__name__})",
                             "save it as UTF-8 CSV with a header row") from None
    header, lines = (rows[0][1], rows[1:]) if rows else ([], [])
    body = [row for _, row in lines]
    columns = ", ".join(header) or "none"
    if not target:
        raise TinypruneError(f"CSV data {path} needs the label column named", f"add --target COLUMN (columns: {columns})")
    if target not in header:
        raise TinypruneError(f"{path} has no column {target!r} (columns: {columns})",
                             "give --target the name of the label column, as written in the header row")
    if len(header) < 2 or not body:
        raise TinypruneError(f"{path} has {len(header) - 1} feature columns and {len(body)} rows",
                             "give a header row, at least one feature column and some rows")
    for number, row in lines:
        if len(row) != len(header):
            raise TinypruneError(f"line {number} of {path} has {len(row)} fields, the header {len(header)}",
                                 "give every row one value per column")
    label_index = header.index(target)
    features = [name for name in header if name != target]
    x = np.empty((len(body), len(features)), dtype=np.float32)
    for column, name in enumerate(features):
        source = header.index(name)
        for row_number, (line, row) in enumerate(lines):
            try:
                x[row_number, column] = float(row[source])
            except ValueError:
                raise TinypruneError(
                    f"column {name!r} of {path} is not numeric (line {line}: {row[source]!r})",
                    "encode it as numbers (one-hot or ordinal), fill empty cells, or drop the column") from None
    y, class_names, note = _labels([row[label_index] for row in body], target)
    return Dataset(path.stem, *split(x, y, seed), feature_names=tuple(features), class_names=class_names,
                   notes=(note,))


def _labels(values: list[str], target: str) -> tuple[np.ndarray, tuple[str, ...] | None, str]:
    """Class indices for integer or text labels, float targets for other numbers."""
    try:
        return np.array([int(v) for v in values], dtype=np.int64), None, f"{target!r}: integer class labels"
    except ValueError:
        pass
    try:
        return (np.array([float(v) for v in values], dtype=np.float32)[:, np.newaxis], None,
                f"{target!r}: numeric regression targets")
    except ValueError:
        names = tuple(sorted(set(values)))
        index = {name: i for i, name in enumerate(names)}
        shown = ", ".join(f"{name}={i}" for name, i in list(index.items())[:6]) + (", ..." if len(names) > 6 else "")
        return np.array([index[v] for v in values], dtype=np.int64), names, f"{target!r}: text classes {shown}"

"""Firmware targets, one folder each behind one interface (base.py). A new target is a new folder with
a module defining BACKEND, and one line here."""
from __future__ import annotations

import importlib

from tinyprune.errors import TinypruneError

REGISTRY = {
    "standalone": "tinyprune.backends.standalone.backend",
    "tflm": "tinyprune.backends.tflm.backend",
}
"""name (what users type: --backend NAME) -> the module holding its BACKEND, in the order `--backend auto`
prefers them: the first that can build the model for the board is the firmware, the others are built
beside it for comparison. Imported on first use, so the registry itself is a leaf any module may import."""
AUTO = "auto"


def backend_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def backend_choices() -> tuple[str, ...]:
    """What --backend accepts: auto, then every registered backend."""
    return (AUTO, *REGISTRY)


def get_backend(name: str):
    """The backend registered as `name` (tinyprune.backends.base.Backend)."""
    if name not in REGISTRY:
        raise TinypruneError(f"unknown backend {name!r}", f"use one of: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name]).BACKEND


def board_support(board, config) -> dict[str, str | None]:
    """For each backend and runtime ("standalone", "tflm --runtime arduino", ...): None where it can build
    for `board` with the options of `config` (a BuildConfig), else why not."""
    support = {}
    for name in REGISTRY:
        backend = get_backend(name)
        runtimes = backend.runtimes()
        for runtime in runtimes:
            label = name if len(runtimes) == 1 else f"{name} --runtime {runtime.name}"
            try:
                backend.check_target(board, runtime, config)
                support[label] = None
            except TinypruneError as exc:
                support[label] = exc.problem
    return support

"""Firmware targets, one folder each behind one interface (base.py). A new target is a new folder with
a module defining BACKEND, and one line here."""
from __future__ import annotations

import importlib

from tinyprune.errors import TinypruneError

REGISTRY = {
    "tflm": "tinyprune.backends.tflm.backend",
    "standalone": "tinyprune.backends.standalone.backend",
}
"""name (what users type: --backend NAME) -> the module holding its BACKEND. Imported on first use, so
the registry itself is a leaf any module may import."""


def backend_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get_backend(name: str):
    """The backend registered as `name` (tinyprune.backends.base.Backend)."""
    if name not in REGISTRY:
        raise TinypruneError(f"unknown backend {name!r}", f"use one of: {', '.join(REGISTRY)}")
    return importlib.import_module(REGISTRY[name]).BACKEND

"""The progress protocol between the pipeline and a front end (console, notebook, a sweep): a leaf, so
front ends and the pipeline both import it without importing each other."""
from __future__ import annotations


class Listener:
    """What a front end hears: one line per finished stage, and per-epoch progress."""

    def stage(self, name: str, line: str) -> None:
        pass

    def progress(self, phase: str, step: int, total: int, figures: dict) -> None:
        pass

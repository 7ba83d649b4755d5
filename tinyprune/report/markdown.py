"""report.md: the build for people, rendered from report.json's dictionary (one source of figures)."""
from __future__ import annotations

from pathlib import Path

import jinja2

from tinyprune.report.schema import model_card

_TEMPLATES = Path(__file__).resolve().parent / "templates"


def _percent(value: float) -> str:
    return f"{value * 100:.2f} %"


def _bytes(value: int) -> str:
    return f"{value:,} B"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["percent"] = _percent
    env.filters["bytes"] = _bytes
    return env


def render_markdown(report: dict) -> str:
    model_bytes, model_words = model_card(report)
    return environment().get_template("report.md.j2").render(r=report, model_bytes=model_bytes,
                                                            model_words=model_words)

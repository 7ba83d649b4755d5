"""The one Jinja2 environment every exporter renders through, and the C naming rules they share.

Templates live in firmware_templates/ (every line of C, C++, sketch and build file); Python only
prepares the values. StrictUndefined turns a missing value into an error instead of blank C.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

import jinja2
import numpy as np

import tinyprune
from tinyprune.resources import templates_dir

# C11 and C++20 keywords and C++'s alternative operator tokens: none may name a variable.
_RESERVED = frozenset("""
    alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
    char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
    co_return co_yield decltype default delete do double dynamic_cast else enum explicit export extern
    false float for friend goto if inline int long mutable namespace new noexcept not not_eq nullptr
    operator or or_eq private protected public register reinterpret_cast requires restrict return
    short signed sizeof static static_assert static_cast struct switch template this thread_local
    throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t while
    xor xor_eq _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert
    _Thread_local main
""".split())


def c_identifier(name: str, taken: Iterable[str] = ()) -> str:
    """`name` as a valid C/C++ identifier that is not a keyword, not reserved to the implementation
    (no leading underscore, no double underscore) and not in `taken`.

    "modèle-v2.tflite" -> "modele_v2_tflite"; "2nd" -> "model_2nd"; "int" -> "int_"; a second
    "net" when "net" is taken -> "net_2". Same input, same output."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    identifier = re.sub(r"[^A-Za-z0-9]+", "_", ascii_name).strip("_") or "model"
    if identifier[0].isdigit():
        identifier = f"model_{identifier}"
    if identifier in _RESERVED:
        identifier += "_"
    taken = set(taken)
    stem = identifier.rstrip("_") + "_"  # "int_" -> "int_2", never a double underscore
    unique, suffix = identifier, 2
    while unique in taken:
        unique, suffix = f"{stem}{suffix}", suffix + 1
    return unique


def _c_hex(values: bytes) -> str:
    """Bytes as comma-separated C hex literals: b"\\x1c\\x00" -> "0x1c, 0x00"."""
    return ", ".join(f"0x{byte:02x}" for byte in values)


def _c_float(value: float) -> str:
    """A float32 as a C float literal that reads back to the same float32 (9 significant digits)."""
    if not np.isfinite(value):
        raise ValueError(f"{value} has no C float literal")
    text = f"{float(np.float32(value)):.9g}"
    if not any(mark in text for mark in ".e"):
        text += ".0"
    return f"{text}f"


def _c_string(text: str) -> str:
    """`text` as a C string literal, its backslashes, quotes and line breaks escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["c_hex"] = _c_hex
    env.filters["c_float"] = _c_float
    env.filters["c_string"] = _c_string
    env.globals["tinyprune_version"] = tinyprune.__version__
    return env


def render(template_name: str, **context) -> str:
    """Render firmware_templates/<template_name> with `context`."""
    return environment().get_template(template_name).render(**context)

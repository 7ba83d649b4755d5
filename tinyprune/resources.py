"""Where the shipped data lives: the board files and firmware templates sit at the repository's top
level in a checkout and under tinyprune/_data in an installed wheel."""
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tinyprune installation is missing its {name}/ folder")


def templates_dir() -> Path:
    return _shipped("firmware_templates")


def boards_dir() -> Path:
    return _shipped("boards")

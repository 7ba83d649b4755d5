"""The board database: one TOML file a board in boards/, read into a frozen `Board`.

A board file states its datasheet figures (clock, flash, RAM) and how each tool names it (Arduino FQBN
and architecture, PlatformIO board id, the nearest qemu machine, arm-none-eabi-gcc flags), so that the
fit check, the exporters and the firmware builds all read one source of truth.
"""
from __future__ import annotations

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tinyprune.errors import TinypruneError
from tinyprune.resources import boards_dir


@dataclass(frozen=True)
class Board:
    name: str  # the id users type (--board), equal to the file's stem
    title: str
    mcu: str
    core: str  # e.g. "cortex-m4f", "cortex-m7", "cortex-m0plus", "xtensa-lx6"
    clock_hz: int
    flash_bytes: int
    ram_bytes: int
    arduino_fqbn: str
    arduino_architecture: str  # the vocabulary of library.properties' `architectures=`
    platformio_platform: str
    platformio_board: str
    qemu_machine: str  # nearest qemu-system-arm machine; "" for cores qemu cannot emulate
    mcpu: str  # arm-none-eabi-gcc -mcpu; "" for non-Arm cores
    mfpu: str  # -mfpu; "" when the core has no FPU
    mfloat_abi: str  # -mfloat-abi: "hard", "soft"; "" for non-Arm cores
    has_dsp: bool  # the core defines __ARM_FEATURE_DSP (M4, M7, M33)
    source: str  # where the figures come from

    @property
    def is_arm(self) -> bool:
        return bool(self.mcpu)

    @property
    def gcc_flags(self) -> tuple[str, ...]:
        """The arm-none-eabi-gcc target flags for this core (empty for non-Arm boards)."""
        if not self.is_arm:
            return ()
        flags = [f"-mcpu={self.mcpu}", "-mthumb"]
        if self.mfpu:
            flags.append(f"-mfpu={self.mfpu}")
        if self.mfloat_abi:
            flags.append(f"-mfloat-abi={self.mfloat_abi}")
        return tuple(flags)


_FIELDS = {f.name: f.type for f in dataclasses.fields(Board)}
_PYTHON_TYPES = {"str": str, "int": int, "bool": bool}
_POSITIVE = ("clock_hz", "flash_bytes", "ram_bytes")


def board_names() -> list[str]:
    return sorted(path.stem for path in boards_dir().glob("*.toml"))


def load_board(name_or_path: str | Path) -> Board:
    """A board by its id (`nano33ble`) or by the path of a TOML file in the same format."""
    text = str(name_or_path)
    if text.endswith(".toml") or Path(text).is_file():
        return _read_board_file(Path(text))
    path = boards_dir() / f"{text}.toml"
    if not path.is_file():
        names = board_names()
        near = difflib.get_close_matches(text, names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(near)}? " if near else ""
        raise TinypruneError(
            f"unknown board {text!r}",
            f"{hint}choose one of: {', '.join(names)} (`tinyprune boards` lists them), "
            "or pass the path of your own board .toml file",
        )
    return _read_board_file(path)


def all_boards() -> list[Board]:
    return [_read_board_file(boards_dir() / f"{name}.toml") for name in board_names()]


def _read_board_file(path: Path) -> Board:
    where = f"board file {path}"
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TinypruneError(f"{where} does not exist", "check the path of the board file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise TinypruneError(f"{where} is not valid TOML: {error}", "fix the TOML syntax") from None

    for field, type_name in _FIELDS.items():
        if field not in table:
            raise TinypruneError(
                f"{where} has no field {field!r}",
                f"add `{field} = <{type_name}>` (see boards/nano33ble.toml for every field)",
            )
        value = table[field]
        # bool is an int in Python: compare the exact type so `flash_bytes = true` is caught
        if type(value) is not _PYTHON_TYPES[type_name]:
            raise TinypruneError(
                f"{where}: field {field!r} is {type(value).__name__} {value!r}, not {type_name}",
                f"write {field} as a TOML {'boolean' if type_name == 'bool' else type_name}",
            )
        if type_name == "str" and not value.isprintable():
            raise TinypruneError(f"{where}: field {field!r} holds a line break or control character",
                                 f"write {field} on one line")
    unknown = sorted(set(table) - set(_FIELDS))
    if unknown:
        raise TinypruneError(
            f"{where} has unknown field {unknown[0]!r}",
            f"remove it or correct its spelling; the fields are: {', '.join(_FIELDS)}",
        )
    for field in _POSITIVE:
        if table[field] <= 0:
            raise TinypruneError(f"{where}: field {field!r} must be positive, not {table[field]}",
                                 f"give {field} from the datasheet")
    if table["name"] != path.stem:
        raise TinypruneError(
            f"{where}: name {table['name']!r} differs from the file name {path.stem!r}",
            f"rename the file to {table['name']}.toml or set name = {path.stem!r}",
        )
    return Board(**table)

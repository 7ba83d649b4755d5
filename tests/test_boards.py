"""The board database: every shipped file loads, its compiler flags agree with its core, and a bad
board file or name is a TinypruneError that says what to fix."""
import shutil
import subprocess
from pathlib import Path

import pytest

from tinyprune.boards import Board, all_boards, board_names, load_board
from tinyprune.errors import TinypruneError
from tinyprune.resources import boards_dir

# The qemu-system-arm machine with the nearest core: MPS2 AN385 (M3, runs Armv6-M code too),
# AN386 (M4), AN500 (M7), AN505 (M33).
NEAREST_QEMU_MACHINE = {
    "cortex-m0plus": "mps2-an385",
    "cortex-m3": "mps2-an385",
    "cortex-m4": "mps2-an386",
    "cortex-m7": "mps2-an500",
    "cortex-m33": "mps2-an505",
}


def test_database_has_the_required_real_boards():
    names = board_names()
    assert len(names) >= 10
    for required in ("nano33ble", "uno_r4_minima", "portenta_h7", "pico", "nucleo_f401re",
                     "nucleo_l476rg", "nucleo_h743zi", "xiao_nrf52840_sense", "wio_terminal",
                     "nicla_sense_me", "esp32_devkit", "giga_r1"):
        assert required in names


def test_every_board_file_loads_with_consistent_figures():
    boards = all_boards()
    assert [b.name for b in boards] == board_names()
    for board in boards:
        assert board == load_board(board.name)
        assert 1_000_000 <= board.clock_hz <= 1_000_000_000, board.name
        assert board.flash_bytes % 1024 == 0 and board.ram_bytes % 1024 == 0, board.name
        # an FQBN is vendor:architecture:board[:options]
        assert board.arduino_fqbn.split(":")[1] == board.arduino_architecture, board.name
        assert board.source
        if board.is_arm:
            assert board.qemu_machine == NEAREST_QEMU_MACHINE[board.mcpu], board.name
            assert board.core.startswith(board.mcpu), board.name
        else:
            assert board.qemu_machine == "" and board.gcc_flags == ()


def test_nano33ble_figures_from_the_nrf52840_datasheet():
    board = load_board("nano33ble")
    assert (board.mcu, board.clock_hz, board.flash_bytes, board.ram_bytes) == (
        "nRF52840", 64_000_000, 1024 * 1024, 256 * 1024)
    assert board.gcc_flags == ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")


def _predefined_macros(flags) -> str:
    return subprocess.run(["arm-none-eabi-gcc", *flags, "-dM", "-E", "-x", "c", "/dev/null"],
                          check=True, capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
def test_gcc_flags_are_accepted_and_has_dsp_matches_the_compiler():
    """The compiler itself says whether the core has the DSP extension and an FPU."""
    for board in (b for b in all_boards() if b.is_arm):
        macros = _predefined_macros(board.gcc_flags)
        assert ("#define __ARM_FEATURE_DSP 1" in macros) == board.has_dsp, board.name
        assert ("#define __ARM_FP " in macros) == bool(board.mfpu), board.name


def test_unknown_board_lists_near_names():
    with pytest.raises(TinypruneError) as caught:
        load_board("nano33")
    assert "unknown board 'nano33'" in caught.value.problem
    assert "nano33ble" in caught.value.fix
    assert "\n" not in str(caught.value)


def _board_file(tmp_path: Path, name: str, edit) -> Path:
    table = (boards_dir() / "nano33ble.toml").read_text().splitlines()
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(edit([line.replace('"nano33ble"', f'"{name}"') for line in table])) + "\n")
    return path


def test_board_loads_from_a_path(tmp_path):
    path = _board_file(tmp_path, "my_board", lambda lines: lines)
    board = load_board(path)
    assert isinstance(board, Board) and board.name == "my_board" and board.ram_bytes == 262_144


def test_missing_field_names_the_file_and_field(tmp_path):
    def drop_ram(lines):
        return [ln for ln in lines if not ln.startswith("ram_bytes")]

    path = _board_file(tmp_path, "no_ram", drop_ram)
    with pytest.raises(TinypruneError) as caught:
        load_board(path)
    assert str(path) in caught.value.problem and "'ram_bytes'" in caught.value.problem


@pytest.mark.parametrize("line, field", [
    ('flash_bytes = "1 MB"', "flash_bytes"),
    ("clock_hz = true", "clock_hz"),
    ('has_dsp = "yes"', "has_dsp"),
    ("mcu = 52840", "mcu"),
])
def test_wrongly_typed_field_names_the_file_and_field(tmp_path, line, field):
    def retype(lines):
        return [line if ln.startswith(field + " ") else ln for ln in lines]

    path = _board_file(tmp_path, "typo", retype)
    with pytest.raises(TinypruneError) as caught:
        load_board(path)
    assert str(path) in caught.value.problem and repr(field) in caught.value.problem


def test_unknown_field_and_mismatched_name_are_rejected(tmp_path):
    misspelt = _board_file(tmp_path, "extra", lambda lines: [*lines, "ram_byte = 5"])
    with pytest.raises(TinypruneError, match="unknown field 'ram_byte'"):
        load_board(misspelt)
    renamed = tmp_path / "other.toml"
    renamed.write_text(_board_file(tmp_path, "first", lambda lines: lines).read_text())
    with pytest.raises(TinypruneError, match="differs from the file name"):
        load_board(renamed)


def test_invalid_toml_is_a_tinyprune_error(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n")
    with pytest.raises(TinypruneError, match="not valid TOML"):
        load_board(path)


def test_line_break_in_a_text_field_is_rejected(tmp_path):
    """Board text lands in C comments and string literals: it must stay on one line."""
    def break_title(lines):
        return ['title = "Nano\\nBLE"' if ln.startswith("title ") else ln for ln in lines]

    path = _board_file(tmp_path, "two_lines", break_title)
    with pytest.raises(TinypruneError, match="'title' holds a line break"):
        load_board(path)

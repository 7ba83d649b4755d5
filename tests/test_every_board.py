"""Every board in boards/ builds the demo with the default options (--backend auto): the standalone C on
every core, the TFLM sketch beside it where the Arduino library builds for the board. One trained model
is reused and fine-tuned for one epoch, so the 13 builds cost about 25 s each."""
import json

import pytest

from tinyprune.boards import board_names, load_board


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory, trained_demo):
    path = tmp_path_factory.mktemp("every_board") / "digits_cnn.keras"
    trained_demo.save(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("board_name", board_names())
def test_the_demo_builds_for_every_board_with_the_default_options(board_name, demo_model, tmp_path):
    from tinyprune.api import board_support
    from tinyprune.config import load_config
    from tinyprune.pipeline import build
    from tinyprune.toolchains.qemu import has_machine

    board = load_board(board_name)
    config = load_config(None, model=str(demo_model), data="digits", board=board_name, out=str(tmp_path / "out"),
                         fine_tune_epochs=1, calibration_samples=50, name="digits_cnn")
    report = build(config).report
    assert report["fit"]["fits"] and report["firmware"]["backend"] == "standalone"
    assert report["fit"]["flash_limit"] == board.flash_bytes and report["fit"]["ram_limit"] == board.ram_bytes
    built = [b["backend"] for b in report["builds"]]
    arduino_library = board_support(board)["tflm --runtime arduino"] is None
    assert built == (["standalone", "tflm"] if arduino_library else ["standalone"])
    standalone = report["builds"][0]
    if has_machine(board):  # measured on the board's own core: its figures, not another core's
        assert report["standalone"]["firmware"]["board"] == board_name
        assert standalone["flash_basis"].startswith(f"measured: a bare-metal build for {board.core}")
        assert standalone["differing_bytes"] == 0 and standalone["instructions_per_inference"] > 0
    else:
        assert standalone["instructions_per_inference"] is None
        assert any("no qemu machine" in what for what in standalone["not_proven"])
    assert (tmp_path / "out" / "arduino" / "digits_cnn" / "digits_cnn.ino").is_file()
    assert json.loads((tmp_path / "out" / "report.json").read_text())["target"]["board"]["name"] == board_name

"""The backend interface: --backend auto's choice per board, and proofs that say what they could not run."""
import numpy as np

from tinyprune.backends.standalone.backend import BACKEND as STANDALONE
from tinyprune.config import BuildConfig
from tinyprune.stages import resolve_target


def test_auto_targets_both_where_the_arduino_library_builds_and_the_standalone_c_everywhere():
    both = resolve_target(BuildConfig(board="nano33ble"))
    assert [c.backend.name for c in both.candidates] == ["standalone", "tflm"] and both.auto
    assert both.runtime.name == "arduino"  # converted so the Arduino library's TFLM runs it too
    renesas = resolve_target(BuildConfig(board="uno_r4_minima"))
    assert [c.backend.name for c in renesas.candidates] == ["standalone"]
    assert "renesas_uno" in renesas.refused["tflm"]
    assert renesas.runtime.name == "standalone"


def test_a_missing_compiler_is_named_with_its_install_line_never_claimed(monkeypatch, tmp_path, demo_int8):
    from tinyprune.backends.standalone import generate_standalone, proof
    from tinyprune.boards import load_board
    from tinyprune.graph.reader import read_graph

    model = generate_standalone(read_graph(demo_int8), tmp_path / "c", "m")
    monkeypatch.setattr(proof.shutil, "which", lambda tool: None)
    x = np.zeros((4, 8, 8, 1), np.int8)
    result = proof.prove_standalone(model, load_board("nano33ble"), x, np.zeros((4, 10), np.int8),
                                    tmp_path / "cortex_m", 4)
    assert result.host_samples == 0 and result.firmware is None and result.qemu == {}
    cross, host = result.not_proven
    assert "gcc-arm-none-eabi" in cross and "apt-get install gcc" in host
    figures = STANDALONE.figures(result)
    assert figures["differing_bytes"] is None and figures["instructions_per_inference"] is None
    assert "NOT proven" in STANDALONE.describe_proof(result) and "C NOT run" in STANDALONE.describe_proof(result)

"""tinyprune device-eval end to end against an emulated board: the firmware built for qemu's
mps2-an386 (Cortex-M4) answers the serial protocol on its UART0, which qemu puts on a pseudo-terminal.
On-device accuracy and output bytes against the host's TFLM, latency, and the error paths: corrupted
frames both ways, a reset mid-run, a silent port."""
import json
import os
import subprocess
import sys
import tty

import pytest

from device_fakes import CorruptingLine
from tinyprune.boards import load_board
from tinyprune.device.emulator import emulated_board
from tinyprune.device.evaluate import device_eval
from tinyprune.errors import TinypruneError
from tinyprune.backends.standalone import generate_standalone
from tinyprune.backends.standalone.cortex_m import build_serial_firmware
from tinyprune.graph.reader import read_graph_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def standalone_build(short_demo_build, tmp_path_factory):
    """A standalone-backend build of the demo (short training) and its serial firmware for the M4."""
    out = short_demo_build("standalone")
    folder = tmp_path_factory.mktemp("serial")
    model = generate_standalone(read_graph_file(out / "model.tflite"), folder / "c", "digits_cnn")
    board = load_board("nano33ble")
    return out, build_serial_firmware(model, board, folder / "firmware"), board.qemu_machine


def test_standalone_on_the_emulated_m4_gives_the_host_tflm_bytes_on_every_sample(standalone_build):
    out, elf, machine = standalone_build
    with emulated_board(elf, machine) as emulated:
        result = subprocess.run([sys.executable, "-m", "tinyprune", "device-eval", str(out), "--port",
                                 emulated.port, "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    section = json.loads(result.stdout)
    report = json.loads((out / "report.json").read_text())
    assert report["device"]["evaluation"] == section
    assert section["samples"] == report["data"]["test_samples"] == 360
    assert section["device"] == section["host_tflm"] == report["accuracy"]["tflm_int8"]
    assert section["differing_bytes"] == 0 and set(section["differing_bytes_per_sample"]) == {0}
    assert section["board"]["timer"] == "cycles" and section["board"]["input_size"] == 64
    # SysTick cycles at 25 MHz, one instruction per ns under -icount shift=0: the semihosting proof's count
    instructions = section["cycles"]["median"] * 40
    assert instructions == pytest.approx(report["standalone"]["qemu"]["instructions_per_inference"], rel=0.01)
    assert section["latency_us"]["median"] == pytest.approx(instructions / 1000, rel=0.01)
    assert "On the board" in (out / "report.md").read_text() and "On the board" in (out / "report.html").read_text()


def test_corrupted_frames_both_ways_are_retried_never_counted(standalone_build):
    out, elf, machine = standalone_build
    with emulated_board(elf, machine) as emulated, \
            CorruptingLine(emulated.port, to_board={5, 17}, to_host={9, 30}) as line:
        section = device_eval(out, line.port, samples=40)
        flipped = line.flipped
    assert flipped == {"to_board": 2, "to_host": 2}
    assert section["rejected_requests"] == 2 and section["corrupt_frames"] == 2
    assert section["samples"] == 40 and section["differing_bytes"] == 0
    assert section["device"] == section["host_tflm"]


def test_a_reset_mid_run_is_one_error_and_keeps_what_was_measured(standalone_build):
    out, elf, machine = standalone_build
    with emulated_board(elf, machine) as emulated:
        def press_reset(done, total):
            if done == 10:
                emulated.reset()

        with pytest.raises(TinypruneError) as error:
            device_eval(out, emulated.port, samples=40, progress=press_reset)
    assert "restarted in the middle of the run" in error.value.problem
    kept = json.loads((out / "report.json").read_text())["device"]["evaluation"]
    assert 10 <= kept["samples"] < 40 and "restarted" in kept["stopped"]
    assert kept["differing_bytes"] == 0


def test_a_silent_port_is_one_line_and_exit_code_2(standalone_build, tmp_path):
    out, _, _ = standalone_build
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        result = subprocess.run([sys.executable, "-m", "tinyprune", "device-eval", str(out), "--port",
                                 os.ttyname(slave), "--timeout", "2", "--samples", "5"],
                                capture_output=True, text=True, timeout=120)
    finally:
        os.close(master)
        os.close(slave)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "did not answer in 2 s" in result.stderr
    assert "fix: flash the firmware" in result.stderr


def test_port_qemu_builds_the_firmware_and_runs_it_on_the_boards_machine(standalone_build):
    out, _, _ = standalone_build
    result = subprocess.run([sys.executable, "-m", "tinyprune", "device-eval", str(out), "--port", "qemu",
                             "--samples", "20"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "0 of 200 output bytes differ" in result.stdout
    assert "semihosting proof" in (out / "report.md").read_text()


def test_the_tflm_sketch_on_the_emulated_m4_gives_the_host_tflm_bytes(short_demo_build, arduino_library):
    """The exported sketch, unmodified, built against the Arduino library with the stand-in core's Serial
    on UART0: every test sample through the protocol, as on a board."""
    out = short_demo_build("tflm")
    result = subprocess.run([sys.executable, "-m", "tinyprune", "device-eval", str(out), "--port", "qemu",
                             "--arduino-library", str(arduino_library), "--json"],
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr
    section = json.loads(result.stdout)
    report = json.loads((out / "report.json").read_text())
    assert section["samples"] == report["data"]["test_samples"] == 360
    assert section["device"] == section["host_tflm"] == report["accuracy"]["tflm_int8"]
    assert section["differing_bytes"] == 0 and section["rejected_requests"] == section["timeouts"] == 0
    board = section["board"]
    assert board["self_test"] == "pass" and board["timer"] == "microseconds"
    assert 0 < board["arena_used"] <= board["arena_declared"] == report["memory"]["arena_firmware"]
    assert section["latency_us"]["min"] > 0


def test_port_qemu_runs_the_firmware_whatever_the_comparison_sketchs_proof(tmp_path, capfd):
    """An auto build whose TFLM sketch beside the firmware could not be proven (no library): device-eval
    --port qemu runs the recommended standalone firmware, and the report keeps both results."""
    from pathlib import Path

    from tinyprune.cli import main

    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    model = Path(__file__).parent / "data" / "zoo" / "digits_demo_int8.tflite"
    assert main(["build", str(model), "--data", "digits", "--board", "nano33ble", "--prove", "qemu",
                 "--arduino-library", str(tmp_path / "empty"), "--out", str(out)]) == 0
    capfd.readouterr()
    assert main(["device-eval", str(out), "--port", "qemu", "--samples", "5"]) == 0
    assert "0 of 50 output bytes differ" in capfd.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["device"]["evaluation"]["board"]["model"] == "digits_demo_int8"
    assert report["builds"][0]["proof_failure"] is None and report["builds"][1]["proof_failure"]
    page = (out / "report.md").read_text()
    assert "| tflm, beside it | in tflm/: " in page and "not proven: " in page and "| device evaluation |" in page


def test_port_qemu_on_a_model_taken_as_it_is_without_data_runs_its_self_test_inputs(tmp_path, capfd):
    """A .tflite built without --data has no labelled test set: device-eval runs the firmware on the seeded
    self-test inputs its build ran, compares the bytes with the host's TFLM, times them and claims no
    accuracy (it loaded the default data set and failed on its shape)."""
    from pathlib import Path

    from tinyprune.cli import main

    out = tmp_path / "out"
    assert main(["build", str(Path(__file__).parent / "data" / "zoo" / "mlp.tflite"), "--board", "nano33ble",
                 "--out", str(out)]) == 0
    capfd.readouterr()
    assert main(["device-eval", str(out), "--port", "qemu"]) == 0
    captured = capfd.readouterr()
    section = json.loads((out / "report.json").read_text())["device"]["evaluation"]
    assert (section["samples"], section["differing_bytes"], section["total_bytes"]) == (16, 0, 160)
    assert section["inputs"] == "self-test" and section["metric"] is section["device"] is None
    assert section["latency_us"]["min"] > 0
    line = next(text for text in (captured.out + captured.err).splitlines() if text.startswith("device "))
    assert "no accuracy" in line and "0 of 160 output bytes differ" in line and "%" not in line

"""tinyprune flash with stand-ins for arduino-cli and PlatformIO on PATH that record their arguments and
fail on request; the board behind the port is the Python stand-in or, for the standalone build, the
serial firmware on qemu's Cortex-M4. The error paths need no TensorFlow."""
import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest

from device_fakes import FakeBoard, argmax_board
from tinyprune.cli import main

STAND_IN = """#!{python}
import json, os, sys
name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(json.dumps([name, *args]) + "\\n")
if args == ["version"]:
    print("arduino-cli  Version: 0.35.3 Commit: 95cfd654 Date: 2024-02-19T13:24:24Z")
elif args == ["--version"]:
    print("PlatformIO Core, version 6.1.15")
elif os.environ.get("STAND_IN_FAIL") in args:
    print("Error during Upload: Failed uploading: uploading error: exit status 1", file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def tools(tmp_path, monkeypatch):
    """tools(*names): stand-ins first on PATH (alone on it when no name is given); returns the log of
    their calls."""
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("STAND_IN_LOG", str(log))
    monkeypatch.delenv("STAND_IN_FAIL", raising=False)
    (tmp_path / "bin").mkdir()

    def install(*names):
        monkeypatch.setenv("PATH", os.pathsep.join([str(tmp_path / "bin")] + ([os.environ["PATH"]] if names else [])))
        for name in names:
            script = tmp_path / "bin" / name
            script.write_text(STAND_IN.format(python=sys.executable))
            script.chmod(0o755)
        return lambda: [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return install


def minimal_build(folder: Path, backend: str = "tflm") -> Path:
    """What flash reads before it uploads: the report's board and backend, the sketch and project folders."""
    (folder / "arduino" / "digits_cnn").mkdir(parents=True)
    (folder / "platformio" / "digits_cnn").mkdir(parents=True)
    (folder / "model.tflite").write_bytes(b"TFL3")
    (folder / "report.json").write_text(json.dumps({
        "firmware": {"backend": backend},
        "target": {"board": {"arduino_fqbn": "arduino:mbed_nano:nano33ble"}}}))
    return folder


def error_line(capfd, argv) -> str:
    assert main(argv) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1
    return err


def test_no_tool_names_both_install_commands(tmp_path, tools, capfd):
    tools()
    err = error_line(capfd, ["flash", str(minimal_build(tmp_path / "b")), "--port", "/dev/ttyACM0"])
    assert "arduino-cli or pio is not installed" in err
    assert "install.sh" in err and "pip install platformio" in err


def test_an_unknown_port_lists_the_ports_seen_before_building(tmp_path, tools, capfd):
    calls = tools("arduino-cli")
    err = error_line(capfd, ["flash", str(minimal_build(tmp_path / "b")), "--port", "/dev/ttyACM9"])
    assert "no serial port '/dev/ttyACM9'" in err and "--port PORT:" in err
    assert [call[1] for call in calls()] == ["version"]  # nothing built or uploaded


@pytest.mark.parametrize("step, fix", [("upload", "bootloader"), ("compile", "compiler"), ("lib", "lib install")])
def test_a_failing_step_is_one_line_with_the_tools_last_words(tmp_path, tools, capfd, monkeypatch, step, fix):
    calls = tools("arduino-cli")
    monkeypatch.setenv("STAND_IN_FAIL", step)
    port = tmp_path / "port"
    port.touch()
    err = error_line(capfd, ["flash", str(minimal_build(tmp_path / "b")), "--port", str(port)])
    assert f"arduino-cli {step} failed (exit 1): Error during Upload" in err and fix in err
    assert calls()[-1][1] == step


def test_a_board_silent_after_the_upload_is_one_line(tmp_path, tools, capfd):
    tools("pio")
    with FakeBoard(argmax_board(10), 64, 10) as board:
        board.misbehaviour.silent = True
        err = error_line(capfd, ["flash", str(minimal_build(tmp_path / "b")), "--port", board.port,
                                  "--timeout", "1"])
    assert "did not answer in 1 s" in err


@pytest.mark.parametrize("backend, fix", [("tflm", "build with --backend standalone"),
                                          ("standalone", "please report it")])
def test_a_failing_self_test_is_one_line_and_kept_in_the_report(tmp_path, tools, capfd, backend, fix):
    """The upload went fine but the firmware's boot self-test differs from the host's TFLM: exit 2 with the
    figure and where to look, not exit 0 with a FAIL inside the line."""
    out = tmp_path / "b"
    model = Path(__file__).parent / "data" / "zoo" / "digits_demo_int8.tflite"
    assert main(["build", str(model), "--board", "nano33ble", "--backend", backend, "--out", str(out), "-q"]) == 0
    calls = tools("arduino-cli")
    with FakeBoard(argmax_board(10), 64, 10) as board:
        board.info = dataclasses.replace(board.info, self_test_differing=3)
        err = error_line(capfd, ["flash", str(out), "--port", board.port])
    assert "self-test FAILED after the upload: 3 of 10 output bytes differ from the host's TFLM" in err
    assert f"tinyprune device-eval {out} --port {board.port}" in err and fix in err
    assert calls()[-1][1] == "upload"
    report = json.loads((out / "report.json").read_text())
    assert report["device"]["flash"]["board"]["self_test"] == "fail"
    assert "device flash" in (out / "report.md").read_text()


@pytest.mark.slow
def test_arduino_cli_installs_the_library_compiles_uploads_and_reads_the_self_test(short_demo_build, tools, capfd):
    out = short_demo_build("tflm")
    calls = tools("arduino-cli", "pio")
    with FakeBoard(argmax_board(10), 64, 10) as board:
        assert main(["flash", str(out), "--port", board.port, "--json"]) == 0
    section = json.loads(capfd.readouterr().out)
    sketch = str(out / "arduino" / "digits_cnn")
    assert [call[1:] for call in calls()] == [
        ["version"], ["core", "install", "arduino:mbed_nano"], ["lib", "install", "Chirale_TensorFLowLite@2.0.0"],
        ["compile", "--fqbn", "arduino:mbed_nano:nano33ble", sketch],
        ["upload", "--fqbn", "arduino:mbed_nano:nano33ble", "--port", board.port, sketch]]
    assert (section["tool"], section["tool_version"], section["firmware"]) == ("arduino-cli", "0.35.3",
                                                                               "arduino/digits_cnn")
    assert section["board"]["self_test"] == "pass" and section["board"]["arena_used"] == 1200
    assert "Arena: 1200 of 1280 bytes used" in section["boot_lines"]
    report = json.loads((out / "report.json").read_text())
    assert report["device"]["flash"] == section
    assert "Flashed with arduino-cli 0.35.3" in (out / "report.md").read_text()


@pytest.mark.slow
def test_platformio_uploads_the_exported_project(short_demo_build, tools, capfd):
    out = short_demo_build("tflm")
    calls = tools("pio")
    with FakeBoard(argmax_board(10), 64, 10) as board:
        assert main(["flash", str(out), "--port", board.port]) == 0
    assert calls()[-1] == ["pio", "run", "-d", str(out / "platformio" / "digits_cnn"), "-t", "upload",
                           "--upload-port", board.port]
    assert "pio 6.1.15: platformio/digits_cnn" in capfd.readouterr().out


@pytest.mark.slow
def test_the_standalone_sketch_needs_no_library_and_its_boot_info_is_the_firmwares(short_demo_build, tools,
                                                                                   tmp_path, capfd):
    from tinyprune.backends.standalone import generate_standalone
    from tinyprune.backends.standalone.cortex_m import build_serial_firmware
    from tinyprune.boards import load_board
    from tinyprune.device.emulator import emulated_board
    from tinyprune.graph.reader import read_graph_file

    out = short_demo_build("standalone")
    calls = tools("arduino-cli")
    model = generate_standalone(read_graph_file(out / "model.tflite"), tmp_path / "c", "digits_cnn")
    board = load_board("nano33ble")
    with emulated_board(build_serial_firmware(model, board, tmp_path / "firmware"), board.qemu_machine) as emulated:
        assert main(["flash", str(out), "--port", emulated.port, "--json"]) == 0
    assert not [call for call in calls() if call[1] == "lib"]
    info = json.loads(capfd.readouterr().out)["board"]
    assert (info["model"], info["input_size"], info["output_size"]) == ("digits_cnn", 64, 10)
    assert info["arena_used"] == info["arena_declared"] == json.loads(
        (out / "report.json").read_text())["memory"]["arena_firmware"]
    assert os.path.isdir(out / "arduino" / "digits_cnn")

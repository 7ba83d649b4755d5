"""The pipeline end to end: the demo through the real CLI, reproducibility, and atomic output."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinyprune.graph.reader import read_graph_file
from tinyprune.pipeline import build, demo_config


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory):
    """`tinyprune demo` exactly as the README runs it, in its own process."""
    out = tmp_path_factory.mktemp("demo") / "build"
    result = subprocess.run([sys.executable, "-m", "tinyprune", "demo", "--out", str(out)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


@pytest.mark.slow
def test_demo_prints_a_line_per_stage(demo_build):
    _, stdout = demo_build
    stages = [line.split()[0] for line in stdout.splitlines()]
    assert stages == ["load", "train", "prune", "quantize", "check", "verify", "export", "report"]


@pytest.mark.slow
def test_demo_tflm_accuracy_within_two_points_at_75_percent(demo_build):
    report = json.loads((demo_build[0] / "report.json").read_text())
    accuracy = report["accuracy"]
    assert report["prune"]["sparsity"] >= 0.745
    assert all(abs(s - 0.75) < 0.01 for s in report["prune"]["details"]["achieved_sparsity"].values())
    assert accuracy["float"] > 0.95
    assert accuracy["tflm_int8"] >= accuracy["float"] - 0.02
    assert f"{accuracy['tflm_int8'] * 100:.2f} %" in (demo_build[0] / "report.md").read_text()


@pytest.mark.slow
def test_demo_model_is_per_tensor_for_the_arduino_library(demo_build):
    """The demo clusters its weights (16 values a layer): one scale a tensor keeps them 16 int8 values, and
    per-tensor FULLY_CONNECTED is what the Arduino library computes right."""
    out, stdout = demo_build
    report = json.loads((out / "report.json").read_text())
    graph = read_graph_file(out / "model.tflite")
    weighted = [op for op in graph.operators if op.opcode in ("FULLY_CONNECTED", "CONV_2D")]
    assert {op.opcode for op in weighted} == {"FULLY_CONNECTED", "CONV_2D"}
    for op in weighted:
        weights = graph.tensors[op.inputs[1]]
        assert len(weights.quantization.scale) == 1
        assert len(set(weights.numpy().ravel().tolist()) - {0}) <= 16
    assert report["quantize"]["per_channel_dense"] is False
    assert [p["name"] for p in report["quantize"]["passes"]] == ["per-tensor weights"]
    assert "Graph passes: **per-tensor weights** (" in (out / "report.md").read_text()
    quantize_line = next(line for line in stdout.splitlines() if line.startswith("quantize"))
    assert "), per-tensor weights, 200 calibration samples" in quantize_line and "FULLY_CONNECTED" not in quantize_line


@pytest.mark.slow
def test_demo_counts_litert_disagreement_on_the_whole_test_set(demo_build):
    report = json.loads((demo_build[0] / "report.json").read_text())
    agreement = report["agreement"]
    assert agreement["total_bytes"] == report["data"]["test_samples"] * 10
    assert 0 <= agreement["differing_bytes"] <= agreement["total_bytes"]
    assert agreement["max_abs_difference"] <= 2  # requantization rounding, never a different model


@pytest.mark.slow
def test_demo_memory_and_firmware(demo_build):
    out, _ = demo_build
    report = json.loads((out / "report.json").read_text())
    memory = report["memory"]
    assert memory["arena_aligned16"] % 16 == 0
    assert memory["arena_exact"] <= memory["arena_aligned16"] < memory["arena_exact"] + 16
    assert memory["emulation_matches_search"]
    assert (memory["host_emulated_aligned16"], memory["host_emulated_exact"]) == (
        memory["arena_aligned16"], memory["arena_exact"])
    # the 32-bit board build needs less than the 64-bit host: smaller pointers and structs
    assert memory["lower_bound"] < memory["board_aligned16"] < memory["arena_aligned16"]
    standalone, tflm = report["builds"]  # --backend auto: the standalone C, and TFLM beside it
    assert memory["arena_firmware"] == standalone["arena_firmware"] == report["standalone"]["model"]["arena_bytes"]
    assert tflm["arena_firmware"] == memory["board_aligned16"] + memory["arena_margin"]
    sketch = out / "tflm" / "arduino" / "digits_cnn" / "digits_cnn.ino"
    assert f"{tflm['arena_firmware']}" in sketch.read_text()
    assert (out / "tflm" / "model_data" / "model_data.cpp").is_file()
    assert (out / "arduino" / "digits_cnn" / "digits_cnn.ino").is_file() and (out / "cortex_m" / "main.c").is_file()
    assert report["fit"]["fits"] and tflm["flash_needed"] > report["quantize"]["model_bytes"]
    assert sorted(report["firmware"]["files"]) == sorted(
        str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


@pytest.mark.slow
def test_demo_defaults_to_the_standalone_c_with_tflm_beside_it(demo_build):
    """--backend auto: the standalone C is the firmware, measured on qemu's Cortex-M4 at most a quarter of the
    TFLM sketch's flash, proven byte for byte against TFLM; the TFLM sketch is exported beside it."""
    out, stdout = demo_build
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["backend"] == "auto" and report["firmware"]["backend"] == "standalone"
    standalone, tflm = report["builds"]
    assert (standalone["folder"], tflm["folder"]) == (".", "tflm")
    assert standalone["differing_bytes"] == 0 and standalone["instructions_per_inference"] > 0
    assert standalone["flash_basis"].startswith("measured") and standalone["not_proven"] == []
    assert 4 * standalone["flash_needed"] <= tflm["flash_needed"]
    assert standalone["arena_firmware"] < tflm["arena_firmware"]
    assert tflm["differing_bytes"] is None and tflm["not_proven"]  # nothing claimed that did not run
    model = report["standalone"]["model"]
    assert model["weight_bytes_stored"] < 0.5 * model["weight_bytes_dense"]  # pruned weights stored sparse
    check_line = next(line for line in stdout.splitlines() if line.startswith("check"))
    assert "standalone (--backend auto)" in check_line and "tflm: built beside it" in check_line
    text = (out / "report.md").read_text()
    assert "## Firmware by backend" in text and f"{model['weight_bytes_stored']:,} B" in text


# TFLM as the Arduino library runs the demo's model on the emulated Cortex-M4 (CMSIS-NN kernels; stated
# in bench/firmware.py): firmware text + data and instructions per inference
TFLM_DEMO_FLASH, TFLM_DEMO_INSTRUCTIONS = 74_344, 302_480


@pytest.mark.slow
def test_the_demo_firmware_is_a_tenth_of_tflms_and_runs_in_half_its_instructions(demo_build):
    """The default demo (75 % sparsity, 16 clusters, fast storage): the fully connected layers' nonzeros as
    4-bit cluster indices beside a bitmask, the convolutions' as int8 (their walk of indices is slower)."""
    out, _ = demo_build
    report = json.loads((out / "report.json").read_text())
    standalone = report["builds"][0]
    assert standalone["differing_bytes"] == 0
    assert standalone["flash_needed"] <= TFLM_DEMO_FLASH / 10
    assert standalone["instructions_per_inference"] <= TFLM_DEMO_INSTRUCTIONS / 2
    formats = {(layer["op"], layer["format"]) for layer in report["standalone"]["model"]["layers"]}
    assert formats == {("CONV_2D", "bitmask"), ("FULLY_CONNECTED", "bitmask_lut")}


def _outputs(folder: Path) -> dict[str, bytes]:
    files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    report = json.loads(files.pop("report.json"))
    report.pop("run")  # the one field that holds times (report.html shows them: compared in its own tests)
    files.pop("report.html")
    files["report.json"] = json.dumps(report).encode()
    return files


@pytest.mark.slow
def test_same_inputs_and_seed_give_identical_bytes(tmp_path):
    config = demo_config(str(tmp_path / "demo"), train_epochs=3, fine_tune_epochs=2, force=True)
    first = _outputs(build(config).out)
    second = _outputs(build(config).out)  # --force replaces the folder in place
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []


@pytest.mark.slow
def test_interrupt_in_fine_tuning_keeps_the_previous_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("the previous build")
    process = subprocess.Popen(
        [sys.executable, "-m", "tinyprune", "demo", "--out", str(out), "--force", "--verbose",
         "--fine-tune-epochs", "200"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    deadline = time.time() + 600
    for line in process.stderr:
        if line.startswith("fine-tune 1/200") or time.time() > deadline:
            break
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    assert process.returncode == 130, rest[-2000:]
    assert "interrupted" in rest
    assert (out / "report.json").read_text() == "the previous build"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_int8_quantize_helpers_saturate():
    from tinyprune.graph.ir import Quantization
    from tinyprune.verify.accuracy import dequantize, quantize

    q = Quantization(scale=(0.5,), zero_point=(-10,))
    assert quantize(np.array([0.0, 1.0, 1000.0, -1000.0]), q).tolist() == [-10, -8, 127, -128]
    assert dequantize(np.array([-10, -8], np.int8), q).tolist() == [0.0, 1.0]


@pytest.mark.slow
def test_standalone_backend_is_proven_against_tflm_and_exports_a_project_that_builds(tmp_path):
    report = build(demo_config(str(tmp_path / "sa"), train_epochs=3, fine_tune_epochs=2,
                               backend="standalone")).report
    proof = report["standalone"]
    assert proof["host_samples"] == report["data"]["test_samples"] and proof["host_differing_bytes"] == 0
    assert proof["qemu"]["differing_bytes"] == 0 and proof["qemu"]["machine"] == "mps2-an386"
    assert sum(report["fit"]["flash_items"].values()) == proof["firmware"]["flash_bytes"]
    assert report["fit"]["flash_items"]["model constants"] == proof["model"]["constant_bytes"]
    assert report["memory"]["arena_firmware"] == proof["model"]["arena_bytes"] < report["memory"]["board_aligned16"]
    out = tmp_path / "sa"
    assert (out / "arduino" / "digits_cnn" / "digits_cnn.ino").is_file()
    made = subprocess.run(["make", "-C", str(out / "cortex_m"), "EXTRA_CFLAGS=-Werror", "firmware.elf"],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert (out / "cortex_m" / "firmware.elf").stat().st_size > 0


@pytest.mark.slow
def test_pruning_clustering_and_tflm_compression_compose(tmp_path):
    """Magnitude pruning, then 8 clusters, per-tensor int8, then TFLM's compressed tensors: the
    firmware's flatbuffer shrinks and TFLM gives the uncompressed model's bytes on the test set."""
    report = build(demo_config(str(tmp_path / "c"), train_epochs=4, fine_tune_epochs=2, clusters=8,
                               runtime="tflm", tflm_compression="auto")).report
    compression = report["quantize"]["tflm_compression"]
    assert report["quantize"]["per_channel"] is False
    assert set(report["prune"]["details"]["clustering"]["kernel_clusters"].values()) <= set(range(1, 9))
    assert compression["verified_samples"] == report["data"]["test_samples"]
    assert compression["bytes_after"] == report["quantize"]["model_bytes"] < 0.7 * report["quantize"]["dense_model_bytes"]
    assert compression["arena_cost"] > 0
    assert "TFLM_DECODE" in {op["name"] for op in report["check"]["ops"]}
    assert report["memory"]["board_aligned16"] == report["memory"]["arena_aligned16"]  # DECODE: the search decides
    assert (tmp_path / "c" / "model_data" / "model_data.cpp").is_file() and not (tmp_path / "c" / "arduino").exists()


@pytest.mark.slow
def test_sweep_over_sparsity_with_the_defaults_shrinks_flash(tmp_path, capfd):
    """The default backend (auto: the standalone C on the Nano 33 BLE) stores only the kept weights, so the
    measured flash falls strictly with sparsity."""
    from tinyprune.cli import main

    out = tmp_path / "sweep"
    assert main(["sweep", "--over", "sparsity=0.5,0.75,0.9", "--out", str(out), "--train-epochs", "4",
                 "--fine-tune-epochs", "2", "--workers", "2", "--json"]) == 0
    result = json.loads(capfd.readouterr().out)
    points = result["points"]
    assert [p["sparsity"] for p in points] == [0.5, 0.75, 0.9]
    assert points[0]["flash_bytes"] > points[1]["flash_bytes"] > points[2]["flash_bytes"]
    assert {"sweep.csv", "sweep.md", "sweep.png", "report.html"} <= set(result["files"])
    assert "accuracy against flash bytes over the sweep" in (out / "report.html").read_text()
    assert (out / "points" / "sparsity_0.9" / "report.json").is_file()
    table = (out / "sweep.md").read_text()
    assert "Smallest within budget" in table and str(points[0]["flash_bytes"]) in table


@pytest.mark.slow
def test_structured_compaction_shrinks_the_flatbuffer_and_the_macs(tmp_path):
    report = build(demo_config(str(tmp_path / "s"), method="structured", ratio=0.5, sparsity=0.0,
                               train_epochs=5, fine_tune_epochs=2)).report
    assert report["quantize"]["model_bytes"] < 0.6 * report["quantize"]["dense_model_bytes"]
    assert report["prune"]["macs"] < 0.5 * report["model"]["macs"]
    assert report["prune"]["details"]["layers"]["conv_2"]["units_after"] == 16
    assert report["memory"]["emulation_matches_search"]


@pytest.mark.slow
def test_lassonet_build_reads_only_the_kept_features(tmp_path):
    report = build(demo_config(str(tmp_path / "l"), data="wine", method="lassonet", max_features=5,
                               train_epochs=20, calibration_samples=50, name="wine")).report
    kept = report["prune"]["details"]["kept_features"]
    assert 1 <= len(kept["indices"]) <= 5 and len(kept["names"]) == len(kept["indices"])
    graph = read_graph_file(tmp_path / "l" / "model.tflite")
    assert graph.input_tensors()[0].shape == (1, len(kept["indices"]))
    assert report["accuracy"]["tflm_int8"] >= 0.85


@pytest.mark.slow
def test_lottery_ticket_build_reports_every_round(tmp_path):
    report = build(demo_config(str(tmp_path / "t"), method="lottery", rounds=2, prune_fraction=0.5,
                               train_epochs=0, fine_tune_epochs=3)).report
    rounds = report["prune"]["details"]["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    assert rounds[-1]["remaining_weights"] < 0.35
    assert "random_reinit_accuracy" in report["prune"]["details"]
    assert "Lottery ticket rounds" in (tmp_path / "t" / "report.md").read_text()


def test_the_output_folder_gets_the_users_umask_not_mkdtemps_0700(tmp_path):
    import os
    import stat
    import tempfile

    from tinyprune.pipeline import publish

    staging = Path(tempfile.mkdtemp(dir=tmp_path))
    previous = os.umask(0o027)
    try:
        publish(staging, tmp_path / "out")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o750

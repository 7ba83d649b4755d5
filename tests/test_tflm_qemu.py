"""The TFLM sketch proven the way a board runs it: compiled unmodified against the Arduino library users
install (the fixture tarball), for the Nano 33 BLE's Cortex-M4F with the core's flags, run on qemu's
mps2-an386; the measured arena held to the emulation of that build."""
import re
from pathlib import Path

import numpy as np
import pytest

from tinyprune.boards import load_board
from tinyprune.errors import TinypruneError
from tinyprune.graph.reader import read_graph
from tinyprune.toolchains.arduino import core_defines, defining_sources, find_library, read_properties

ZOO = Path(__file__).resolve().parent / "data" / "zoo"


# -------------------------------------------------------------------------------- no toolchain needed

def test_the_library_is_found_by_its_properties_name(tmp_path, monkeypatch):
    library = tmp_path / "user" / "libraries" / "Chirale_TensorFlowLite"
    (library / "src").mkdir(parents=True)
    (library / "library.properties").write_text("name=Chirale_TensorFLowLite\nversion=2.0.0\n")
    monkeypatch.setenv("ARDUINO_DIRECTORIES_USER", str(tmp_path / "user"))
    found = find_library("Chirale_TensorFLowLite", "2.0.0")
    assert (found.path, found.name, found.version) == (library, "Chirale_TensorFLowLite", "2.0.0")
    assert read_properties(library)["version"] == "2.0.0"


def test_a_missing_or_wrong_library_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("ARDUINO_DIRECTORIES_USER", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(TinypruneError, match="arduino-cli lib install"):
        find_library("Chirale_TensorFLowLite", "2.0.0")
    other = tmp_path / "Other"
    other.mkdir()
    (other / "library.properties").write_text("name=Other\nversion=1\n")
    with pytest.raises(TinypruneError, match="holds 'Other'"):
        find_library("Chirale_TensorFLowLite", "2.0.0", other)


def test_the_core_defines_are_the_mbed_cores(tmp_path):
    defines = core_defines(load_board("nano33ble"))
    assert "-DARDUINO_ARCH_MBED" in defines and "-DARM_MATH_CM4" in defines
    assert not any("TF_LITE_STATIC_MEMORY" in define for define in defines)
    assert "-DARM_MATH_CM7" in core_defines(load_board("portenta_h7"))


def test_undefined_symbols_lead_to_the_sources_defining_them(tmp_path):
    library = tmp_path / "lib"
    (library / "src").mkdir(parents=True)
    (library / "library.properties").write_text("name=L\nversion=1\n")
    (library / "src" / "alloc.cpp").write_text(
        "namespace tflite {\nMicroAllocator* MicroAllocator::Create(uint8_t* a,\n size_t n) {\n  return nullptr;\n}\n}")
    (library / "src" / "caller.cpp").write_text("void f() { tflite::MicroAllocator::Create(a, n); }\n")
    (library / "src" / "conv.c").write_text("int arm_convolve_s8(const int *x)\n{\n  return 0;\n}\n")
    found = find_library("L", "1", library)
    output = ("undefined reference to `tflite::MicroAllocator::Create(unsigned char*, unsigned int)'\n"
              "undefined reference to `arm_convolve_s8'\n")
    assert [p.name for p in defining_sources(found, output)] == ["alloc.cpp", "conv.c"]


@pytest.mark.parametrize("output, first", [
    ("/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld: /tmp/x/firmware.elf section `.bss' will "
     "not fit in region `RAM'\n/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld: region `RAM' "
     "overflowed by 4448 bytes\ncollect2: error: ld returned 1 exit status\n",
     "ld: /tmp/x/firmware.elf section `.bss' will not fit in region `RAM'"),
    ("/usr/bin/arm-none-eabi-ld: probe.o: in function `setup':\nprobe.cpp:(.text+0x1c): undefined reference to "
     "`foo'\ncollect2: error: ld returned 1 exit status\n", "probe.cpp:(.text+0x1c): undefined reference to `foo'"),
    ("model.c: In function 'f':\nmodel.c:3:5: error: 'x' undeclared\n", "model.c:3:5: error: 'x' undeclared"),
])
def test_a_failed_link_names_the_linkers_message_not_collect2s(output, first):
    """What `--prove qemu` prints when the sketch does not build: a RAM overflow must say so."""
    from pathlib import Path

    from tinyprune.toolchains.gcc import CompileError

    assert CompileError(Path("firmware.elf"), output).first_error == first


# --------------------------------------------------------------------- the cross compiler and qemu

def per_tensor_zoo(name: str) -> bytes:
    """A zoo model converted with per-tensor FULLY_CONNECTED weights: the library computes per-channel
    FULLY_CONNECTED wrongly, and the proof is about its arena, not that known fault."""
    from tinyprune.quantize import quantize_int8
    from tinyprune.zoo import ZOO, _keras

    keras = _keras()
    builder, _ = ZOO[name]
    keras.utils.set_random_seed(0)
    model = builder()
    calibration = np.random.default_rng(0).uniform(0.0, 1.0, size=(32,) + tuple(model.input_shape[1:]))
    return quantize_int8(model, calibration.astype(np.float32), per_channel_dense=False)


def prove(model_bytes: bytes, arduino_library, tmp_path, x=None, expected=None):
    """The sketch of `model_bytes` proven on qemu against `expected` (default: the host TFLM's outputs)."""
    from tinyprune.backends.tflm.arduino import write_arduino_sketch
    from tinyprune.backends.tflm.qemu_proof import prove_sketch
    from tinyprune.graph.runtimes import get_runtime
    from tinyprune.memory import emulate_arena
    from tinyprune.verify.accuracy import tflm_outputs

    graph, board = read_graph(model_bytes), load_board("nano33ble")
    if x is None:
        shape = graph.input_tensors()[0].shape
        x = np.random.default_rng(1).integers(-128, 128, size=(10,) + tuple(shape[1:])).astype(np.int8)
    if expected is None:
        expected = tflm_outputs(model_bytes, x, arena_size=1 << 22)
    expected = np.asarray(expected).reshape(len(x), -1)
    estimate = emulate_arena(graph, "arm32")
    sketch = write_arduino_sketch(tmp_path, "model", model_bytes, graph, get_runtime("arduino"),
                                  estimate.aligned16 + 1024, x[0], expected[0], board,
                                  exact_arena_bytes=estimate.aligned16)
    return prove_sketch(sketch, board, x, expected, arduino_library), estimate


@pytest.mark.slow
def test_the_demo_sketch_proves_on_the_m4_and_the_estimate_is_its_arena(demo_int8, digits_data, arduino_library,
                                                                          tmp_path):
    from tinyprune.verify.accuracy import int8_inputs

    x = int8_inputs(read_graph(demo_int8), digits_data.x_test[:10])
    proof, estimate = prove(demo_int8, arduino_library, tmp_path, x)
    assert proof.compiled and proof.first_error == ""
    assert proof.sketch_passed and any(line.startswith("Self-test: 0 of 10") for line in proof.sketch_output)
    assert (proof.samples, proof.differing_bytes, proof.output_bytes) == (10, 0, 100)
    assert abs(proof.arena_bytes - estimate.exact) <= 16
    assert proof.arena_bytes % 4 == 0 and proof.arena_used_bytes < proof.arena_bytes
    assert 100_000 < proof.instructions_per_inference < 1_000_000
    assert proof.text > 40_000 and proof.bss > proof.arena_bytes
    # the runtime's painted stack: the interpreter's call chains (TFLM's kernels and allocator) take more
    # than a kilobyte, under the region above .bss; the heap is what newlib's malloc took (not the arena)
    assert 1_000 < proof.stack_bytes < 16_384 and 0 < proof.heap_bytes < 16_384, (proof.stack_bytes, proof.heap_bytes)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ds_cnn_kws", "resnet8", "avgpool_mean", "fc_autoencoder", "conv1d_sensor",
                                  "op_mix"])
def test_zoo_sketches_prove_with_the_emulated_arena(name, arduino_library, tmp_path):
    """A DS-CNN, a ResNet-8 (ADD), AVERAGE_POOL_2D and MEAN, the MLPerf autoencoder, a 1-D CNN and the
    operator mix: compiled, 0 bytes differ from the host's TFLM, the arena within 16 B of the emulation."""
    proof, estimate = prove(per_tensor_zoo(name), arduino_library, tmp_path)
    assert proof.compiled, proof.first_error
    assert proof.sketch_passed and proof.differing_bytes == 0
    assert abs(proof.arena_bytes - estimate.exact) <= 16


# ------------------------------------------------------------------- LiteRT against TFLM, layer by layer

@pytest.mark.slow
def test_every_intermediate_tensor_becomes_an_output(zoo_model):
    from tinyprune.verify.layers import with_every_tensor_as_output

    model_bytes = zoo_model("digits_cnn")
    graph = read_graph(model_bytes)
    debug_bytes, outputs = with_every_tensor_as_output(model_bytes, graph)
    rewritten = read_graph(debug_bytes)
    assert list(rewritten.outputs) == outputs and outputs[:len(graph.outputs)] == list(graph.outputs)
    assert set(outputs) == {index for op in graph.operators for index in op.outputs}
    assert [t.name for t in rewritten.tensors] == [t.name for t in graph.tensors]


@pytest.mark.slow
def test_the_first_differing_operator_is_named_with_its_count(zoo_model):
    from tinyprune.verify.layers import first_divergence

    model_bytes = zoo_model("resnet8")
    graph = read_graph(model_bytes)
    x = np.random.default_rng(1).integers(-128, 128, size=(8, 32, 32, 3)).astype(np.int8)
    divergence = first_divergence(model_bytes, graph, x)
    assert divergence is not None and divergence.samples == 8
    assert divergence.opcode == graph.operators[divergence.operator].opcode
    assert 0 < divergence.differing_bytes < divergence.total_bytes
    assert divergence.total_bytes == 8 * graph.tensors[graph.operators[divergence.operator].outputs[0]].num_elements
    assert f"operator {divergence.operator} ({divergence.opcode}" in divergence.describe()


# --------------------------------------------------------------------------------- through the CLI

@pytest.mark.slow
def test_build_prove_qemu_declares_the_measured_arena_and_prove_out_remeasures(demo_int8, digits_data,
                                                                               arduino_library, tmp_path, capfd):
    """`build --prove qemu`: the sketch declares the measured arena plus the margin and says it was measured;
    the report has both figures. `tinyprune prove OUT` measures the written sketch again."""
    import json

    from tinyprune.cli import main

    d = digits_data
    (tmp_path / "digits.tflite").write_bytes(demo_int8)
    np.savez(tmp_path / "digits.npz", x_train=d.x_train, y_train=d.y_train, x_test=d.x_test, y_test=d.y_test)
    out = tmp_path / "out"
    code = main(["build", str(tmp_path / "digits.tflite"), "--data", str(tmp_path / "digits.npz"), "--out", str(out),
                 "--prove", "qemu", "--arduino-library", str(arduino_library), "--arena-margin", "0",
                 "--backend", "tflm"])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    report = json.loads((out / "report.json").read_text())
    measured = report["prove"]["arena_bytes"]
    assert report["memory"]["board_measured"] == measured == report["memory"]["arena_firmware"]
    assert abs(measured - report["memory"]["board_exact"]) <= 16
    assert report["prove"]["differing_bytes"] == 0 and report["prove"]["sketch_passed"]
    # the RAM fit counts the sketch's call stack and heap as the proof measured them, and says so
    ram = report["fit"]["ram_items"]
    assert (ram["stack"], ram["heap"]) == (report["prove"]["stack_bytes"], report["prove"]["heap_bytes"])
    assert ram["stack"] > 1000 and report["fit"]["ram_basis"].startswith("stack measured: the high-water mark of the sketch")
    sketch = (out / "arduino" / "digits" / "digits.ino").read_text()
    assert f"constexpr size_t kTensorArenaBytes = {measured};" in sketch
    assert "measured on qemu mps2-an386 with Chirale_TensorFLowLite 2.0.0" in sketch
    assert f"arena {measured:,} B measured" in captured.out

    assert main(["prove", str(out), "--arduino-library", str(arduino_library), "--samples", "4"]) == 0
    again = json.loads((out / "report.json").read_text())["prove"]
    assert (again["arena_bytes"], again["samples"], again["differing_bytes"]) == (measured, 4, 0)
    assert again["declared_arena_bytes"] == measured and again["sketch_passed"]


@pytest.mark.slow
def test_the_emulated_struct_sizes_are_the_librarys_sizeof(arduino_library, tmp_path):
    """Every struct size the 32-bit layouts count is sizeof in arm-none-eabi-g++ with the library's own
    headers: the IDE build's for "arm32", the static-memory build's for "arm32-static"."""
    from tinyprune.backends.tflm.qemu_proof import struct_sizes
    from tinyprune.memory.tflm_arena import ARM32, ARM32_STATIC

    library = find_library("Chirale_TensorFLowLite", "2.0.0", arduino_library)
    board = load_board("nano33ble")
    for layout, static_memory in ((ARM32, False), (ARM32_STATIC, True)):
        sizes = struct_sizes(library, board, tmp_path / layout.name, static_memory)
        allocators = (sizes["single_arena_allocator"], sizes["greedy_memory_planner"], sizes["micro_allocator"])
        assert tuple(size for size, _ in layout.allocator_objects) == allocators
        for field in ("tflite_tensor", "node_and_registration", "eval_tensor", "affine_quantization",
                      "subgraph_allocations", "scratch_request", "scratch_handle", "allocation_info"):
            assert getattr(layout, field) == sizes[field], field
    assert (ARM32.tflite_tensor, ARM32_STATIC.tflite_tensor) == (64, 32)


def test_a_probe_that_faults_is_counted_too_small_and_the_search_resumes_above_it(tmp_path, monkeypatch):
    """qemu stand-ins: the first run's probe at 2,000 B faults (no pass/fail line), so the search goes on
    from 2,004 B in a second run, which finds the smallest arena."""
    from tinyprune.backends.tflm import qemu_proof
    from tinyprune.toolchains.qemu import QemuOutput

    sketch = tmp_path / "model"
    sketch.mkdir()
    (sketch / "model.ino").write_text("constexpr size_t kInputCount = 2;\nconstexpr size_t kOutputCount = 1;\n"
                                      "constexpr size_t kTensorArenaBytes = 3000;\n"
                                      "  if (resolver.AddFullyConnected() != kTfLiteOk) stopWithError(\"\");\n")
    (sketch / "model_data.h").write_text("extern const unsigned char model_model[];\n")
    upper = 3000 + 4096 - (3000 + 4096) % 16 + 16
    head = ["calibration 000030d4", "empty 00000002", "out 05 00000102", "out 06 00000102", "arena_used 00000640"]
    runs = iter([
        QemuOutput(head + ["probe 00000dd8", "pass 00000dd8", "probe 000007d0", "fault"], 1, [], "mps2-an386"),
        QemuOutput(head + ["probe 00000ad4", "fail 00000ad4", "probe 00000c58", "pass 00000c58",
                           "smallest 00000c58", "done"], 0, [], "mps2-an386"),
    ])
    arguments = []

    def fake_run(elf, board, timeout, bounds=""):
        arguments.append(bounds)
        return next(runs)

    monkeypatch.setattr(qemu_proof, "run_firmware", fake_run)
    monkeypatch.setattr(qemu_proof, "_build_probe", lambda *args: tmp_path / "probe.elf")
    proof = qemu_proof.TflmQemuProof("L 1", "/l", "mps2-an386", compiled=True)
    x, expected = np.zeros((2, 2), dtype=np.int8), np.array([[5], [7]], dtype=np.int8)
    qemu_proof._run_probe(proof, tmp_path / "probe", sketch, load_board("nano33ble"), None, x, expected)
    assert arguments == [f"0 {upper}", f"2004 {0xdd8}"]
    assert (proof.arena_bytes, proof.qemu_runs, proof.differing_bytes, proof.arena_used_bytes) == (0xc58, 2, 1, 1600)
    assert proof.instructions_per_inference == (0x102 - 2) * 40  # ticks less the empty reading, 40 a tick


@pytest.mark.parametrize("flags, problem", [(["--runtime", "tflm"], "runs the Arduino sketch"),
                                            (["--board", "esp32_devkit"], "no qemu machine")])
def test_prove_qemu_refuses_what_it_cannot_run_before_training(flags, problem, tmp_path, capfd):
    from tinyprune.cli import main

    # --backend tflm: with the default (auto) the standalone C still builds where the TFLM sketch cannot
    assert main(["demo", "--prove", "qemu", "--backend", "tflm", "--out", str(tmp_path / "out"), *flags]) == 2
    assert problem in capfd.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("quantization", [((0.1, 3), (0.1, 3)), (None, None)], ids=["alike", "requantized"])
def test_the_library_takes_means_as_its_emulation_says(arduino_library, tmp_path, quantization):
    """MEAN is where the library parts from today's TFLM on MobileNetV1: on qemu it gives exactly the bytes
    of the old kernel emulated on the host (tinyprune/verify/library_kernels.py), not today's."""
    from single_op import mean
    from tinyprune.verify.layers import tflm_tensors
    from tinyprune.verify.library_kernels import january_2023_mean

    model = mean(3, 6, 6, 8, *quantization)
    graph = read_graph(model)
    x = np.random.default_rng(1).integers(-128, 128, size=(10, 6, 6, 8)).astype(np.int8)
    tensors = tflm_tensors(model, graph, x)
    old = january_2023_mean(graph, graph.operators[0], tensors[graph.inputs[0]])
    assert np.count_nonzero(old != tensors[graph.outputs[0]]) > 0
    as_emulated, _ = prove(model, arduino_library, tmp_path / "old", x, expected=old)
    assert (as_emulated.compiled, as_emulated.samples, as_emulated.output_bytes) == (True, 10, 80)
    assert as_emulated.differing_bytes == 0


@pytest.mark.slow
def test_prove_qemu_names_the_operator_the_library_computes_otherwise(arduino_library, tmp_path):
    from single_op import mean
    from tinyprune import api

    model = tmp_path / "mean.tflite"
    model.write_bytes(mean(3, 6, 6, 8))
    with pytest.raises(TinypruneError, match=r"differs from the host's on \d+ of \d+ output bytes .*: first at "
                       r"operator 0 \(MEAN, .*averages in float .* which changes \d+ of its \d+ output bytes"):
        api.build(model=str(model), board="nano33ble", backend="tflm", prove="qemu",
                  arduino_library=str(arduino_library), out=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_comparison_sketch_the_library_computes_otherwise_is_reported_beside_the_proven_firmware(arduino_library,
                                                                                                    tmp_path):
    """--backend auto --prove qemu on a MEAN: the standalone C (the firmware) gives TFLM's bytes on qemu, the
    library's MEAN in the TFLM sketch beside it does not; the build succeeds and says why the sketch is not
    proven."""
    import json

    from single_op import mean
    from tinyprune import api

    model = tmp_path / "mean.tflite"
    model.write_bytes(mean(3, 6, 6, 8))
    api.build(model=str(model), board="nano33ble", prove="qemu", arduino_library=str(arduino_library),
              out=str(tmp_path / "out"))
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    firmware, beside = report["builds"]
    assert (firmware["backend"], firmware["differing_bytes"], firmware["proof_failure"]) == ("standalone", 0, None)
    assert beside["backend"] == "tflm" and report["prove"] is None
    assert re.search(r"differs from the host's on \d+ of \d+ output bytes .*operator 0 \(MEAN", beside["proof_failure"])
    assert "tflm, beside it | in tflm/: flash" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.slow
def test_the_fit_counts_the_sketchs_own_buffers(arduino_library, tmp_path):
    """A model with a large input: the sketch's float copy of it and the serial frame outweigh the arena, so
    the fit counts them (verify/fit.py's "sketch buffers"); the linked sketch's RAM is the arena declared, those
    buffers, and a few KiB of the library's and core's own statics (headroom covers those)."""
    from single_op import mean
    from tinyprune.backends.tflm.arduino import sketch_buffer_bytes, write_arduino_sketch
    from tinyprune.backends.tflm.qemu_proof import build_sketch_elf
    from tinyprune.graph.runtimes import get_runtime
    from tinyprune.toolchains.arduino import find_library

    model = mean(3, 64, 64, 8)
    graph, board = read_graph(model), load_board("nano33ble")
    sketch = write_arduino_sketch(tmp_path / "sketch", "model", model, graph, get_runtime("arduino"), 4096,
                                  np.zeros(32768, np.int8), np.zeros(8, np.int8), board)
    buffers = sketch_buffer_bytes(32768, 8)
    assert buffers == 4 * (32768 + 8) + (2 + 32768) + 8
    _, sizes = build_sketch_elf(sketch, board, find_library("Chirale_TensorFLowLite", "2.0.0", arduino_library),
                                tmp_path / "elf")
    other = sizes.data + sizes.bss - 4096 - buffers
    assert 0 <= other < 4096, other


def stub_library(folder: Path) -> Path:
    """A folder that find_library takes for the Arduino library, with none of its sources."""
    from tinyprune.backends.tflm.arduino import CHIRALE_TENSORFLOWLITE

    (folder / "src").mkdir(parents=True)
    (folder / "library.properties").write_text(f"name={CHIRALE_TENSORFLOWLITE.name}\n"
                                               f"version={CHIRALE_TENSORFLOWLITE.version}\n")
    return folder


@pytest.mark.parametrize("library", ["missing", "without sources"])
@pytest.mark.parametrize("backend", ["auto", "tflm"])
def test_a_comparison_sketch_that_does_not_prove_is_reported_not_fatal(backend, library, tmp_path, capfd):
    """--backend auto --prove qemu: the standalone C is the firmware and proves itself; the TFLM sketch beside
    it for comparison cannot be proven here (no library at --arduino-library, or one the sketch does not
    compile against), which the console, report.json and report.md say while the build succeeds. The same
    failure of the firmware itself (--backend tflm) fails the build: one line, exit 2, no output folder."""
    import json

    from tinyprune.cli import main

    folder = tmp_path / "library"
    if library == "missing":
        folder.mkdir()
        why = f"{folder} is not an Arduino library"
    else:
        why = f"the sketch does not compile against {stub_library(folder)}: "
    out = tmp_path / "out"
    code = main(["build", str(ZOO / "mlp.tflite"), "--board", "nano33ble", "--backend", backend, "--prove", "qemu",
                 "--arduino-library", str(folder), "--out", str(out)])
    console = capfd.readouterr()
    if backend == "tflm":
        assert code == 2 and why in console.err and len(console.err.strip().splitlines()) == 1
        assert not out.exists()
        return
    assert code == 0, console.err
    assert f"tflm (beside it): not proven: {why}" in console.out
    firmware, beside = json.loads((out / "report.json").read_text())["builds"]
    assert (firmware["backend"], firmware["proof_failure"], firmware["differing_bytes"]) == ("standalone", None, 0)
    assert firmware["instructions_per_inference"] > 0  # proven on qemu
    assert (beside["backend"], beside["differing_bytes"]) == ("tflm", None)
    assert beside["not_proven"] == [beside["proof_failure"]] and beside["proof_failure"].startswith(why)
    assert f"not proven: {why}" in (out / "report.md").read_text()
    assert (out / "tflm" / "arduino" / "mlp" / "mlp.ino").is_file()  # still exported beside it


def test_prove_out_of_a_build_without_data_runs_its_self_test_inputs(tmp_path, capfd):
    """A model taken as it is without --data proves with the deterministic inputs its build used (prove has
    no --data; it loaded the default data set and failed on its shape)."""
    import json

    from tinyprune.cli import main

    out = tmp_path / "out"
    assert main(["build", str(ZOO / "mlp.tflite"), "--board", "nano33ble", "--out", str(out)]) == 0
    assert main(["prove", str(out), "--arduino-library", str(stub_library(tmp_path / "library")),
                 "--samples", "3"]) == 0, capfd.readouterr().err
    assert "the sketch does not compile against" in capfd.readouterr().out
    assert json.loads((out / "report.json").read_text())["prove"]["compiled"] is False


def test_prove_out_proves_the_sketch_beside_the_firmware_and_keeps_the_firmwares_result(tmp_path, capfd):
    """`tinyprune prove OUT` on a --backend auto build proves the TFLM sketch exported beside the standalone
    firmware (it refused every auto build); a sketch that does not compile (a library without TFLM's sources)
    is recorded as not proven beside it in report.json and report.md, and the line still gives the firmware's
    own result."""
    import json

    from tinyprune.cli import main

    out = tmp_path / "out"
    assert main(["build", str(ZOO / "digits_demo_int8.tflite"), "--data", "digits", "--board", "nano33ble",
                 "--out", str(out)]) == 0
    built = json.loads((out / "report.json").read_text())["builds"]
    library = stub_library(tmp_path / "library")
    capfd.readouterr()
    assert main(["prove", str(out), "--arduino-library", str(library), "--samples", "2"]) == 0
    line = capfd.readouterr().out
    assert "the TFLM sketch beside the firmware, in tflm/: the sketch does not compile against" in line
    assert "TensorFlowLite.h" in line  # the first error
    assert (f"the firmware (standalone), as built: 0 output bytes differ from TFLM's, "
            f"{built[0]['instructions_per_inference']:,} instructions an inference") in line
    report = json.loads((out / "report.json").read_text())
    firmware, beside = report["builds"]
    assert firmware == built[0] and report["prove"]["folder"] == "tflm" and not report["prove"]["compiled"]
    assert beside["proof_failure"].startswith("the sketch does not compile against")
    assert (beside["differing_bytes"], beside["not_proven"]) == (None, [beside["proof_failure"]])
    assert f"not proven: {beside['proof_failure']}" in (out / "report.md").read_text()

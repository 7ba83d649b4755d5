"""The standalone C as bare-metal Cortex-M firmware: cross-compiled with arm-none-eabi-gcc (warnings
are errors), run under qemu-system-arm with the test inputs linked in, outputs compared with the host
build and with TFLM, flash from arm-none-eabi-size, instructions counted with -icount + SysTick."""
import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyprune.boards import all_boards, load_board
from tinyprune.backends.standalone import generate_standalone
from tinyprune.backends.standalone.cortex_m import build_cortex_m, run_qemu
from tinyprune.backends.standalone.host import build_host_library, run_host
from tinyprune.backends.standalone.sketch import sketch_buffer_bytes, write_arduino_sketch
from tinyprune.graph.reader import read_graph
from tinyprune.verify.accuracy import int8_inputs, tflm_outputs

pytestmark = pytest.mark.slow


GCC7_ARM_ACLE = Path(__file__).parent / "data" / "gcc7_arm_acle"
ARDUINO_STUB = Path(__file__).parent / "data" / "arduino_stub"  # the core API the sketches call


def qemu_and_host(model_bytes, x_int8, out_dir, board="nano33ble", extra_cflags=()):
    board = load_board(board) if isinstance(board, str) else board
    model = generate_standalone(read_graph(model_bytes), out_dir, "test_model")
    firmware = build_cortex_m(model, board, x_int8, extra_cflags=extra_cflags)
    run = run_qemu(firmware)
    host = run_host(build_host_library(model), x_int8)
    return model, firmware, run, host


def test_pruned_digits_on_cortex_m4_meets_the_targets(demo_int8_pruned, digits_data, tmp_path):
    x = int8_inputs(read_graph(demo_int8_pruned), digits_data.x_test)
    model, firmware, run, host = qemu_and_host(demo_int8_pruned, x, tmp_path)
    reference = tflm_outputs(demo_int8_pruned, x, arena_size=1 << 20).reshape(len(x), -1)
    assert np.array_equal(run.outputs, host)
    assert np.array_equal(run.outputs, reference)
    assert firmware.flash_bytes <= 15 * 1024  # TFLM with CMSIS-NN: 74,344 B
    assert firmware.test_vector_bytes == x.size
    assert model.arena_bytes <= 1476  # half of TFLM's 2,952 B
    assert firmware.bss >= model.arena_bytes
    assert run.instructions_per_tick == pytest.approx(40.0, rel=1e-3)
    # every inference runs the same instructions but for data-dependent max/clamp branches
    assert run.instructions.max() - run.instructions.min() < 0.01 * run.instructions.mean()
    assert run.instructions_per_inference <= 200_000  # two thirds of TFLM with CMSIS-NN (302,480)
    figures = {**model.summary(), **firmware.summary(), **run.summary(model.macs)}
    assert figures["flash_bytes"] == firmware.text + firmware.data - x.size
    assert [layer["format"] for layer in figures["layers"]] == ["bitmask"] * 4
    assert sum(layer["bytes_saved"] for layer in figures["layers"]) == model.weight_bytes_dense - model.weight_bytes_stored
    assert figures["instructions_per_mac"] < 2.2


def test_dense_digits_match_with_and_without_the_dsp_extension(demo_int8, digits_data, tmp_path):
    """The M4 build multiplies with SMLAD, the M0+ build (run on the M3 machine) with the portable loop."""
    x = int8_inputs(read_graph(demo_int8), digits_data.x_test[:60])
    reference = tflm_outputs(demo_int8, x, arena_size=1 << 20).reshape(len(x), -1)
    _, _, m4, host = qemu_and_host(demo_int8, x, tmp_path / "m4", "nano33ble")
    _, _, m0, _ = qemu_and_host(demo_int8, x, tmp_path / "m0", "pico")
    assert np.array_equal(m4.outputs, reference)
    assert np.array_equal(m0.outputs, reference)
    assert np.array_equal(host, reference)
    assert m4.instructions_per_inference < m0.instructions_per_inference


@pytest.mark.parametrize("name", ["mlp", "conv1d_sensor", "residual_block", "avgpool_mean", "op_mix", "gated_mlp"])
def test_zoo_models_on_qemu_equal_tflm(name, tmp_path):
    from tinyprune.zoo import zoo_int8

    model_bytes = zoo_int8(name)
    shape = read_graph(model_bytes).input_tensors()[0].shape
    x = np.random.default_rng(1).integers(-128, 128, size=(12,) + tuple(shape[1:])).astype(np.int8)
    _, _, run, host = qemu_and_host(model_bytes, x, tmp_path)
    reference = tflm_outputs(model_bytes, x, arena_size=1 << 22).reshape(len(x), -1)
    assert np.array_equal(run.outputs, reference)
    assert np.array_equal(host, reference)


def test_dense_ds_cnn_beats_tflm_cmsis_nn_in_instructions_and_half_its_arena(tmp_path):
    """Depthwise and pointwise layers write over their inputs: the arena is one activation tensor plus the
    first convolution's padded input, under half of TFLM's 23,940 B; fewer instructions than TFLM with
    CMSIS-NN (both as stated in issue 19)."""
    from tinyprune.zoo import zoo_int8

    model_bytes = zoo_int8("ds_cnn_kws")
    x = np.random.default_rng(2).integers(-128, 128, size=(2, 49, 10, 1)).astype(np.int8)
    model, _, run, host = qemu_and_host(model_bytes, x, tmp_path)
    reference = tflm_outputs(model_bytes, x, arena_size=1 << 22).reshape(2, -1)
    assert np.array_equal(run.outputs, reference) and np.array_equal(host, reference)
    assert model.macs == 2_656_768
    activation = 25 * 5 * 64
    assert model.arena_lower_bound <= model.arena_bytes <= activation + 58 * 13 + 4 * 25 * 5 <= 23_940 // 2
    in_place = [step for step in model.steps if step.output is step.inputs[0]]
    assert [step.kind for step in in_place] == ["depthwise_conv2d", "conv2d 1x1"] * 4
    assert run.instructions_per_inference <= 7_947_200  # TFLM with CMSIS-NN on the same M4 (issue 19)


def test_compact_weight_formats_on_cortex_m4_equal_tflm(demo_int8_pruned, digits_data, tmp_path):
    """Gap-coded positions and table indices of the nonzeros, each path compiled alone (tp_config.h), on
    qemu: the same bytes as TFLM, fewer constant bytes than the fast formats (at 75 % sparsity without
    clusters the gap codes' decoder costs about what they save: flash is reported, not compared)."""
    x = int8_inputs(read_graph(demo_int8_pruned), digits_data.x_test)[:16]
    reference = tflm_outputs(demo_int8_pruned, x, arena_size=1 << 20).reshape(len(x), -1)
    board = load_board("nano33ble")
    constants = {}
    for name, formats in (("fast", ("dense", "bitmask", "lut")), ("delta", ("dense", "delta", "delta_lut")),
                          ("bitmask_lut", ("dense", "bitmask_lut"))):
        model = generate_standalone(read_graph(demo_int8_pruned), tmp_path / name, "test_model", formats=formats)
        assert {layer.format for layer in model.layers} - {"dense"} <= set(formats) - {"dense"}
        assert name == "fast" or any(layer.format != "dense" for layer in model.layers)
        firmware = build_cortex_m(model, board, x)
        assert np.array_equal(run_qemu(firmware).outputs, reference), name
        constants[name] = model.constant_bytes
    assert constants["delta"] < constants["fast"] - 300


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_the_cmake_project_builds_the_same_firmware(demo_int8_pruned, tmp_path):
    model = generate_standalone(read_graph(demo_int8_pruned), tmp_path / "model", "digits")
    firmware = build_cortex_m(model, load_board("nano33ble"), np.zeros((2, 64), dtype=np.int8))
    build = tmp_path / "cmake_build"
    for command in (["cmake", "-S", str(firmware.project_dir), "-B", str(build)],
                    ["cmake", "--build", str(build)]):
        subprocess.run(command, check=True, capture_output=True)
    sizes = subprocess.run(["arm-none-eabi-size", str(build / "firmware.elf")], capture_output=True, text=True,
                           check=True).stdout.splitlines()[1].split()
    assert int(sizes[0]) == pytest.approx(firmware.text, rel=0.02)


def test_the_arduino_sketch_compiles_for_every_arm_board(demo_int8_pruned, tmp_path):
    """The sketch needs no library: its C compiles with each board's own gcc flags, warnings as errors,
    against an arm_acle.h holding only what GCC 7's holds (the mbed cores' compiler), and the .ino (as the
    IDE builds it: C++ after Arduino.h) against the core API's declarations."""
    model = generate_standalone(read_graph(demo_int8_pruned), tmp_path / "model", "digits")
    sketch = write_arduino_sketch(model, tmp_path / "digits_standalone", np.zeros(64, np.int8),
                                  np.zeros(10, np.int8))
    assert sketch.name == "digits_standalone.ino" and "model_invoke(input, result)" in sketch.read_text()
    sources = sorted(str(p) for p in sketch.parent.glob("*.c"))
    assert "tp_link.c" in " ".join(sources)
    boards = [board for board in all_boards() if board.is_arm]
    assert len(boards) >= 10
    for board in boards:
        for source in sources:
            subprocess.run(["arm-none-eabi-gcc", *board.gcc_flags, "-std=c99", "-O2", "-Wall", "-Wextra",
                            "-Wpedantic", "-Werror", f"-I{GCC7_ARM_ACLE}", "-c", source,
                            "-o", str(tmp_path / "object.o")], check=True, capture_output=True)
        subprocess.run(["arm-none-eabi-g++", *board.gcc_flags, "-std=gnu++11", "-O2", "-Wall", "-Wextra", "-Werror",
                        f"-I{ARDUINO_STUB}", "-include", "Arduino.h", "-x", "c++", "-c", str(sketch),
                        "-o", str(tmp_path / "sketch.o")], check=True, capture_output=True)
    # the fit's "sketch buffers" are what the .ino holds in RAM, but for its few fixed structs
    _, data, bss = subprocess.run(["arm-none-eabi-size", str(tmp_path / "sketch.o")], capture_output=True, text=True,
                                  check=True).stdout.splitlines()[1].split()[:3]
    assert 0 <= int(data) + int(bss) - sketch_buffer_bytes(64, 10) < 256


def _simd32_cores():
    """Cortex-M4, M7 (boards' flags) and M33 (no board yet: the M4 board moved to the MPS2 AN505 machine)."""
    m33 = dataclasses.replace(load_board("nano33ble"), name="cortex_m33", core="cortex-m33", mcpu="cortex-m33",
                              mfpu="fpv5-sp-d16", qemu_machine="mps2-an505")
    return [load_board("nano33ble"), load_board("portenta_h7"), m33]


def test_the_stand_in_gcc7_arm_acle_lacks_the_simd32_intrinsics(tmp_path):
    """The stand-in is a real test: code calling __smlad through <arm_acle.h> fails against it."""
    probe = tmp_path / "probe.c"
    probe.write_text("#include <arm_acle.h>\nint f(int a, int b, int c) { return __smlad(a, b, c); }\n")
    result = subprocess.run(["arm-none-eabi-gcc", *load_board("nano33ble").gcc_flags, f"-I{GCC7_ARM_ACLE}",
                             "-std=c99", "-Wall", "-Werror", "-c", str(probe), "-o", str(tmp_path / "probe.o")],
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "__smlad" in result.stderr


@pytest.mark.parametrize("board", _simd32_cores(), ids=lambda board: board.core)
def test_simd32_kernels_build_with_gcc7_headers_and_equal_tflm(board, zoo_model, tmp_path):
    """The SIMD32 path (dot products, depthwise MACs, max pooling) compiles against an arm_acle.h holding
    only what GCC 7's holds, with -Wall -Wextra -Wpedantic as errors, and runs byte-identical to TFLM."""
    flags = (f"-I{GCC7_ARM_ACLE}", "-Wpedantic")
    macros = subprocess.run(["arm-none-eabi-gcc", *board.gcc_flags, *flags, "-dM", "-E", "-x", "c", "-"],
                            input='#include "tp_simd.h"\n', capture_output=True, text=True, check=True,
                            cwd=Path(__file__).parents[1] / "firmware_templates" / "standalone" / "kernels").stdout
    assert "#define TP_SIMD32 1" in macros
    rng = np.random.default_rng(3)
    for name, samples in (("residual_block", 4), ("ds_cnn_kws", 1)):
        model_bytes = zoo_model(name)
        shape = read_graph(model_bytes).input_tensors()[0].shape
        x = rng.integers(-128, 128, size=(samples,) + tuple(shape[1:])).astype(np.int8)
        _, firmware, run, _ = qemu_and_host(model_bytes, x, tmp_path / name, board, flags)
        disassembly = subprocess.run(["arm-none-eabi-objdump", "-d", str(firmware.elf)], capture_output=True,
                                     text=True, check=True).stdout
        assert all(f"\t{instruction}\t" in disassembly for instruction in ("smlad", "sxtb16"))
        if name == "residual_block":
            assert all(f"\t{instruction}\t" in disassembly for instruction in ("ssub8", "sel"))
        else:
            assert all(f"\t{instruction}\t" in disassembly for instruction in ("smlabt", "smmlar", "ssub16"))
        reference = tflm_outputs(model_bytes, x, arena_size=1 << 22).reshape(len(x), -1)
        assert np.array_equal(run.outputs, reference)


def test_the_profiled_firmware_counts_every_kernel_call(tmp_path):
    """Reading the counter between kernel calls changes no output, and the calls add up to the inference."""
    from tinyprune.zoo import zoo_int8

    model_bytes = zoo_int8("residual_block")
    x = np.random.default_rng(3).integers(-128, 128, size=(4, 16, 16, 3)).astype(np.int8)
    model, firmware, run, _ = qemu_and_host(model_bytes, x, tmp_path)
    profiled = run_qemu(build_cortex_m(model, firmware.board, x, tmp_path / "profiled", profile=True))
    assert np.array_equal(profiled.outputs, run.outputs)
    assert run.step_instructions is None
    assert len(profiled.step_instructions) == len(model.steps)
    assert all(count > 0 for count in profiled.step_instructions)
    assert profiled.step_instructions.sum() == pytest.approx(run.instructions_per_inference, rel=0.01)
    convolutions = [count for step, count in zip(model.steps, profiled.step_instructions) if step.kind == "conv2d"]
    assert len(convolutions) == 3 and sum(convolutions) > 0.5 * run.instructions_per_inference


def test_the_stated_code_bytes_of_each_weight_format_are_measured(tmp_path):
    """formats.KERNEL_CODE_BYTES (what codegen weighs against the bytes a format saves) stays what the
    kernels compile to: after changing a weighted kernel, `python bench/format_code.py` gives the new figures."""
    from tinyprune.backends.standalone.cortex_m import format_code_bytes
    from tinyprune.backends.standalone.formats import KERNEL_CODE_BYTES

    measured = format_code_bytes(load_board("nano33ble"), tmp_path)
    for kernel, sizes in measured.items():
        for form, size in sizes.items():
            assert abs(size - KERNEL_CODE_BYTES[kernel][form]) <= max(48, 0.2 * size), (kernel, form, size)


@pytest.mark.parametrize("board", ["nano33ble", "pico"])
def test_depthwise_paths_on_cortex_m_equal_tflm(board, tmp_path):
    """The depthwise paths (3x3 two rows a pass at stride 1, any stride, the table of tap pairs, the
    short and long requantization, the clamped and unclamped stores, odd line lengths) on the fast tests'
    random shapes, byte-identical to TFLM: with SIMD32 on the M4, in portable C on the M0+ (the fast
    tests run the portable C on the host)."""
    from test_kernels_vs_tflm import depthwise_cases

    models = {name: model for name, model in depthwise_cases().items()
              if "sparse" not in name and "clustered" not in name}
    assert len(models) >= 16
    rng = np.random.default_rng(4)
    for name, model_bytes in models.items():
        shape = read_graph(model_bytes).input_tensors()[0].shape
        x = rng.integers(-128, 128, size=(2,) + tuple(shape[1:])).astype(np.int8)
        _, _, run, _ = qemu_and_host(model_bytes, x, tmp_path / name, board)
        reference = tflm_outputs(model_bytes, x).reshape(len(x), -1)
        assert np.array_equal(run.outputs, reference), name


@pytest.mark.parametrize("board", ["nano33ble", "pico"])
def test_fully_connected_bitmask_walks_on_cortex_m_equal_tflm(board, tmp_path):
    """The FULLY_CONNECTED walks of bitmask rows, of 4-bit table indices and of int8 nonzeros (assembly on
    the M4, portable C on the M0+; the fast tests run the C on the host), on the fast tests' edge cases:
    several mask words a row, empty words and rows, rows and words ending on a low nibble, per-tensor and
    per-channel scales; byte-identical to TFLM."""
    from test_kernels_vs_tflm import fully_connected_lut4_cases

    rng = np.random.default_rng(6)
    for name, model_bytes in fully_connected_lut4_cases().items():
        graph = read_graph(model_bytes)
        x = rng.integers(-128, 128, size=(3,) + tuple(graph.input_tensors()[0].shape[1:])).astype(np.int8)
        reference = tflm_outputs(model_bytes, x).reshape(len(x), -1)
        for form in ("bitmask_lut", "bitmask"):
            model = generate_standalone(graph, tmp_path / f"{name}_{form}", "test_model", formats=("dense", form),
                                        weigh_code=False)
            assert [layer.format for layer in model.layers] == [form], name
            run = run_qemu(build_cortex_m(model, load_board(board), x))
            assert np.array_equal(run.outputs, reference), (name, form)


def test_the_measured_stack_stays_within_gccs_bound_and_grows_with_the_frames(tmp_path):
    """The runtime paints the stack at reset and prints its high-water mark when main returns: positive,
    under the stack region, at or under GCC's static bound (its deepest chain's frames), within four words
    of it (the deepest frame's alignment padding and spill slots may stay unwritten), and a model with a
    depthwise layer (its kernel's frame holds 512 B of accumulators) deeper than one without, by what its
    frames add."""
    from tinyprune.zoo import zoo_int8

    measured = {}
    for name in ("mlp", "avgpool_mean"):
        model_bytes = zoo_int8(name)
        shape = read_graph(model_bytes).input_tensors()[0].shape
        x = np.random.default_rng(5).integers(-128, 128, size=(2,) + tuple(shape[1:])).astype(np.int8)
        model = generate_standalone(read_graph(model_bytes), tmp_path / name, "test_model")
        firmware = build_cortex_m(model, load_board("nano33ble"), x)
        run = run_qemu(firmware)
        bound = firmware.stack_bound
        assert 0 < run.stack_bytes < run.stack_region_bytes
        assert 0 <= firmware.board.ram_bytes - firmware.ram_bytes - run.stack_region_bytes < 8  # .bss's alignment
        assert run.heap_bytes == 0  # the standalone C allocates nothing
        # every frame known (newlib's memset/memcpy read from their code); only startup's constructor calls
        # through pointers are not followed (a C firmware has none)
        assert (bound.unknown, bound.dynamic, bound.indirect) == ([], [], ["Reset_Handler"])
        assert bound.bytes - 16 <= run.stack_bytes <= bound.bytes, (name, run.stack_bytes, bound.describe())
        assert bound.chain[:3] == ["Reset_Handler", "main", "model_invoke"]
        assert firmware.model_stack_bound.bytes < bound.bytes
        measured[name] = (run.stack_bytes, bound)
    (dense, dense_bound), (depthwise, depthwise_bound) = measured["mlp"], measured["avgpool_mean"]
    assert "tp_depthwise_conv2d" in depthwise_bound.chain and "tp_depthwise_conv2d" not in dense_bound.chain
    assert depthwise - dense > 512
    assert abs((depthwise - dense) - (depthwise_bound.bytes - dense_bound.bytes)) <= 16


def test_without_qemu_the_fit_counts_the_built_firmwares_static_stack_bound(tmp_path, monkeypatch):
    """qemu-system-arm missing, the cross compiler there: the firmware is built (flash, RAM, the stack's static
    bound) but not run; the fit's stack is that bound, labelled so, and what did not run is listed."""
    from tinyprune.backends.standalone.cortex_m import write_cortex_m_project
    from tinyprune.backends.standalone.proof import prove_standalone, standalone_fit
    from tinyprune.zoo import zoo_int8

    model_bytes, board = zoo_int8("mlp"), load_board("nano33ble")
    shape = read_graph(model_bytes).input_tensors()[0].shape
    x = np.random.default_rng(6).integers(-128, 128, size=(3,) + tuple(shape[1:])).astype(np.int8)
    model = generate_standalone(read_graph(model_bytes), tmp_path, "test_model")
    project = write_cortex_m_project(model, board, tmp_path / "cortex_m", x[:2])
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda tool, *rest, **options:
                        None if tool == "qemu-system-arm" else which(tool, *rest, **options))
    proof = prove_standalone(model, board, x, tflm_outputs(model_bytes, x), project, 2)
    assert proof.qemu == {} and proof.firmware["stack_bound_bytes"] > 0
    assert any("qemu-system-arm not installed" in line for line in proof.not_proven)
    fit = standalone_fit(model, proof, board, 1024)
    assert fit.ram_items["stack"] == proof.firmware["stack_bound_bytes"]
    assert fit.ram_basis.startswith("stack not measured (the firmware did not run): the bare-metal firmware's static")

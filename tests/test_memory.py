"""The arena emulation and the flash estimate, held to the real TFLM interpreter on the whole zoo."""
import pytest

from tinyprune.errors import TinypruneError
from tinyprune.graph.reader import read_graph
from tinyprune.memory.planner import Buffer, lower_bound, plan_buffers, planned_size, tensor_buffers
from tinyprune.memory.tflm_arena import emulate_arena, tensor_placements
from tinyprune.verify.arena import find_arena
from tinyprune.zoo import ZOO

TFLM_CANNOT_RUN = {
    "mobilenet_v1_uncalibrated": (
        "kept in the zoo as a model TFLM cannot run: with random weights and BatchNormalization at its "
        "initial statistics the activations shrink ~4x a block, the int8 scales collapse to ~1e-8 and TFLM "
        "aborts (SIGABRT) preparing SOFTMAX at any arena size; mobilenet_v1_vww is the runnable twin"
    ),
}


def zoo_names():
    """Every zoo model; one TFLM cannot run is a strict expected failure with its reason."""
    params = []
    for name in ZOO:
        marks = []
        if name in TFLM_CANNOT_RUN:
            marks.append(pytest.mark.xfail(strict=True, raises=TinypruneError, reason=TFLM_CANNOT_RUN[name]))
        params.append(pytest.param(name, marks=marks))
    return params


@pytest.fixture(scope="session")
def searched_arena(zoo_model):
    """find_arena on a zoo model, once a session: the search is the expensive part."""
    found = {}

    def search(name: str):
        if name not in found:
            found[name] = find_arena(zoo_model(name))
        return found[name]

    return search


# ---------------------------------------------------------------------------------- the real interpreter

@pytest.mark.slow
@pytest.mark.parametrize("name", zoo_names())
def test_emulated_host_arena_is_the_smallest_the_interpreter_runs_with(name, zoo_model, searched_arena):
    searched = searched_arena(name)
    emulated = emulate_arena(read_graph(zoo_model(name)), "host")
    assert emulated.exact_model
    assert emulated.aligned16 == searched.aligned16
    assert emulated.exact == searched.exact


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo_names())
def test_emulated_tail_sections_are_the_recorders_to_the_byte(name, zoo_model, searched_arena):
    recorded = searched_arena(name).recorded
    emulated = emulate_arena(read_graph(zoo_model(name)), "host")
    assert {section.name: (section.used, section.requested, section.count)
            for section in emulated.recorded.values()} == {
        section.name: (section.used, section.requested, section.count)
        for section in recorded.sections.values()}
    assert (emulated.head, emulated.tail) == (recorded.head, recorded.tail)


@pytest.mark.slow
def test_the_peak_is_found_where_it_is(zoo_model, searched_arena):
    """Three ways an arena is decided, each where the recorder's total is not the answer."""
    ends = emulate_arena(read_graph(zoo_model("digits_cnn")))
    prepares = emulate_arena(read_graph(zoo_model("fc_decoder")))
    plans = emulate_arena(read_graph(zoo_model("mlp")))
    assert ends.peak.phase == "after planning"
    assert (prepares.peak.phase, prepares.peak.what) == ("prepare", "FULLY_CONNECTED")
    assert plans.peak.phase == "memory planning"
    assert searched_arena("fc_decoder").recorded.total < prepares.exact
    assert searched_arena("mlp").recorded.total < plans.exact


@pytest.mark.slow
def test_demo_host_arena_matches_the_interpreter(demo_int8):
    emulated = emulate_arena(read_graph(demo_int8), "host")
    searched = find_arena(demo_int8)
    assert (emulated.aligned16, emulated.exact) == (searched.aligned16, searched.exact)


@pytest.mark.slow
def test_the_ide_build_needs_more_than_the_static_memory_build(demo_int8):
    """Without TF_LITE_STATIC_MEMORY (the Arduino IDE's build) TfLiteTensor is 64 B, not 32, and
    NodeAndRegistration 44 B, not 32: the interpreter's input and output tensors take 2 x 32 B more
    and every node 12 B (the tail), the temporaries more again. tests/test_tflm_qemu.py holds "arm32" to
    the IDE build measured on qemu."""
    graph = read_graph(demo_int8)
    ide, static = emulate_arena(graph, "arm32"), emulate_arena(graph, "arm32-static")

    def more(section: str) -> int:
        return ide.sections[section].used - static.sections[section].used

    assert more("Persistent TfLiteTensor data") == 2 * 32
    assert more("NodeAndRegistration struct") == 12 * len(graph.operators)
    assert ide.exact >= static.exact + 2 * 32 + 12 * len(graph.operators)
    # issue 12 stated the demo's arena measured on a Cortex-M4 with the library built with the macro
    assert abs(static.exact - 2952) <= 16


@pytest.mark.slow
def test_an_operator_without_a_model_is_flagged(zoo_model):
    estimate = emulate_arena(read_graph(zoo_model("mobilenet_v1_uncalibrated")))
    assert not estimate.exact_model
    assert any("STRIDED_SLICE" in note for note in estimate.notes)


# ------------------------------------------------------------------------------------- the planner alone

def test_equal_sizes_are_placed_last_added_first():
    """GreedyMemoryPlanner fills its sort array from the end: among equal sizes the buffer added last
    is placed first, at offset 0."""
    first, second = Buffer(32, 0, 1), Buffer(32, 1, 2)
    placements = plan_buffers([first, second])
    assert [p.offset for p in placements] == [32, 0]


def test_buffers_alive_together_never_share_bytes_and_dead_ones_do():
    buffers = [Buffer(64, 0, 1), Buffer(48, 1, 2), Buffer(64, 2, 3), Buffer(16, 3, 3), Buffer(80, 4, 5)]
    placements = plan_buffers(buffers)
    for a in placements:
        for b in placements:
            if a is b:
                continue
            alive_together = a.buffer.first <= b.buffer.last and b.buffer.first <= a.buffer.last
            if alive_together:
                assert a.end <= b.offset or b.end <= a.offset
    assert placements[4].offset == 0  # nothing else is alive at scopes 4-5
    assert planned_size(placements) >= lower_bound(buffers) == 64 + 48


def test_lifetimes_follow_tflm_scopes(zoo_model):
    graph = read_graph(zoo_model("digits_cnn"))
    lifetimes = {b.tensor: (b.first, b.last) for b in tensor_buffers(graph)}
    (model_input,), (model_output,) = graph.inputs, graph.outputs
    assert lifetimes[model_input] == (0, 1)  # created before the first operator, read by it
    assert lifetimes[model_output] == (len(graph.operators), len(graph.operators))
    first_output = graph.operators[0].outputs[0]
    assert lifetimes[first_output] == (1, 2)
    assert all(b.size % 16 == 0 and b.size >= b.nbytes for b in tensor_buffers(graph))


def test_placements_cover_every_planned_tensor(zoo_model):
    graph = read_graph(zoo_model("digits_cnn"))
    placements = tensor_placements(graph)
    planned = {p.tensor for p in placements}
    assert planned == {t.index for t in graph.tensors if not t.is_constant}
    assert max(p.offset + p.size for p in placements) == emulate_arena(graph).head


def test_unknown_target_is_a_clear_error(zoo_model):
    with pytest.raises(TinypruneError, match="unknown arena target"):
        emulate_arena(read_graph(zoo_model("mlp")), "esp32")


# ------------------------------------------------------------------------------------------------ flash

def test_flash_counts_the_model_exactly_and_one_kernel_per_operator(zoo_model):
    from tinyprune.memory.flash import estimate_flash

    model = zoo_model("digits_cnn")
    graph = read_graph(model)
    flash = estimate_flash(graph, "arduino")
    assert flash.model_bytes == len(model)
    assert sorted(flash.kernel_bytes) == sorted({op.opcode for op in graph.operators})
    code = flash.core_bytes + sum(flash.kernel_bytes.values()) + flash.application_bytes
    assert flash.total == len(model) + code
    assert not flash.measured and "estimate" in flash.basis


def test_flash_takes_a_measured_build_instead_of_the_estimate(zoo_model):
    from tinyprune.memory.flash import estimate_flash

    graph = read_graph(zoo_model("mlp"))
    flash = estimate_flash(graph, "standalone", measured_code_bytes=6_144)
    assert flash.measured and flash.total == graph.model_bytes + 6_144


def test_flash_for_an_unknown_runtime_is_a_clear_error(zoo_model):
    from tinyprune.memory.flash import estimate_flash

    with pytest.raises(TinypruneError, match="no flash estimate"):
        estimate_flash(read_graph(zoo_model("mlp")), "esp-idf")


@pytest.mark.slow  # imports TensorFlow (a Keras model)
def test_a_float_model_is_refused_with_a_fix():
    import tensorflow as tf

    from tinyprune.zoo import mlp

    float_model = tf.lite.TFLiteConverter.from_keras_model(mlp()).convert()
    with pytest.raises(TinypruneError, match="float32 activations"):
        emulate_arena(read_graph(float_model))


@pytest.mark.slow
def test_traced_allocations_show_the_op_data_the_recipes_record(zoo_model, tmp_path, capsys):
    """The tracer behind kernels.py's host figures: each FULLY_CONNECTED's Init is one 16-aligned
    op-data allocation of the size the recipe records."""
    import shutil

    from tinyprune.memory.kernels import kernel_recipe
    from tinyprune.memory.trace_allocations import main as trace

    if shutil.which("gdb") is None:
        pytest.skip("gdb is not installed")
    model = zoo_model("mlp")
    (tmp_path / "mlp.tflite").write_bytes(model)
    trace(str(tmp_path / "mlp.tflite"))
    lines = capsys.readouterr().out.splitlines()
    graph = read_graph(model)
    (op_data,) = kernel_recipe(graph, graph.operators[0], "host").init
    init_lines = [line for line in lines if "InitSubgraphs" in line]
    assert init_lines == [f"tail {op_data}/16 | MicroInterpreterGraph::InitSubgraphs < "
                          "MicroInterpreter::AllocateTensors"] * len(graph.operators)

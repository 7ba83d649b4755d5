"""The pure-Python core on the committed fixtures, without TensorFlow: the flatbuffer reader, the arena
emulation (held to the arena the real TFLM interpreter needed, measured when the fixtures were made), the
standalone backend's lowering and arena plan, and its C under AddressSanitizer and UBSan, byte-identical to
TFLM's recorded outputs."""
import hashlib

import numpy as np
import pytest

from fixture_models import expected_figures, fixture_bytes, fixture_names, sample_inputs
from tinyprune.backends.standalone import generate_standalone
from tinyprune.backends.standalone.codegen import lower
from tinyprune.backends.standalone.host import build_host_runner, run_host_runner
from tinyprune.graph.reader import read_graph
from tinyprune.memory import board_arena, emulate_arena

EXPECTED = expected_figures()
NAMES = fixture_names()


def test_every_fixture_has_its_figures():
    assert NAMES == sorted(EXPECTED) and len(NAMES) >= 12


@pytest.mark.parametrize("name", NAMES)
def test_reader_reads_what_the_converter_wrote(name):
    model_bytes, expected = fixture_bytes(name), EXPECTED[name]
    assert hashlib.sha256(model_bytes).hexdigest() == expected["sha256"]
    graph = read_graph(model_bytes)
    assert graph.model_bytes == expected["bytes"] == len(model_bytes)
    assert [op.opcode for op in graph.operators] == expected["ops"]
    assert len(graph.tensors) == expected["tensors"]
    assert list(graph.input_tensors()[0].shape) == expected["input_shape"]
    assert list(graph.output_tensors()[0].shape) == expected["output_shape"]


@pytest.mark.parametrize("name", NAMES)
def test_emulated_arena_is_the_one_tflm_needed(name):
    graph, expected = read_graph(fixture_bytes(name)), EXPECTED[name]
    host = emulate_arena(graph, "host")
    assert host.exact == expected["tflm_host_arena"]  # the interpreter's own figure, found by bisection
    assert host.lower_bound == expected["emulated_host_lower_bound"] <= host.head
    assert board_arena(graph, "arduino").exact == expected["emulated_board_arena"]


@pytest.mark.parametrize("name", NAMES)
def test_standalone_lowering_and_plan(name):
    lowered, expected = lower(read_graph(fixture_bytes(name))), EXPECTED[name]["standalone"]
    # the arena may only shrink as the kernels learn to share more (make_fixtures.py --figures-only records it)
    assert lowered.arena_bytes <= expected["arena_bytes"]
    assert [layer.format for layer in lowered.layers] == expected["formats"]
    assert sum(layer.macs for layer in lowered.layers) == expected["macs"]
    assert sum(layer.macs_skipped for layer in lowered.layers) == expected["macs_skipped"]
    assert sum(layer.stored_bytes for layer in lowered.layers) == expected["weight_bytes_stored"]
    assert lowered.arena_bytes >= lowered.plan.lower_bound


def test_fixtures_cover_the_weight_storage_forms():
    formats = {form for figures in EXPECTED.values() for form in figures["standalone"]["formats"]}
    assert formats == {"dense", "bitmask", "lut"}


def test_every_fixture_model_runs_under_the_sanitizers_as_tflm_did(tmp_path):
    graphs = {name: read_graph(fixture_bytes(name)) for name in NAMES}
    models = [generate_standalone(graph, tmp_path / name, name) for name, graph in graphs.items()]
    runner = build_host_runner(models, tmp_path / "runner", sanitize=True)
    for name, graph in graphs.items():
        outputs = run_host_runner(runner, name, sample_inputs(graph))
        expected = np.array([np.frombuffer(bytes.fromhex(row), dtype=np.int8)
                             for row in EXPECTED[name]["tflm_outputs"]])
        assert np.array_equal(outputs, expected), name

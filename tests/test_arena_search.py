"""The arena search: the real tflite-micro interpreter, one process per probe."""
import pytest

from tinyprune.errors import TinypruneError
from tinyprune.verify.arena import Recording, find_arena

RECORDER_REPORT = """\
[RecordingMicroAllocator] Arena allocation total 1504 bytes
[RecordingMicroAllocator] Arena allocation head 96 bytes
[RecordingMicroAllocator] Arena allocation tail 1408 bytes
[RecordingMicroAllocator] 'TfLiteEvalTensor data' used 168 bytes with alignment overhead (requested 168 bytes for 7 allocations)
[RecordingMicroAllocator] 'Persistent buffer data' used 272 bytes with alignment overhead (requested 232 bytes for 5 allocations)
[RecordingMicroAllocator] 'NodeAndRegistration struct' used 192 bytes with alignment overhead (requested 192 bytes for 3 NodeAndRegistration structs)
"""


def test_recording_parses_totals_and_every_section():
    recording = Recording.parse("noise before\n" + RECORDER_REPORT)
    assert (recording.total, recording.head, recording.tail) == (1504, 96, 1408)
    assert list(recording.sections) == ["TfLiteEvalTensor data", "Persistent buffer data",
                                        "NodeAndRegistration struct"]
    buffers = recording.sections["Persistent buffer data"]
    assert (buffers.used, buffers.requested, buffers.count) == (272, 232, 5)
    assert recording.sections["NodeAndRegistration struct"].count == 3


def test_recording_without_a_report_is_an_error():
    with pytest.raises(ValueError, match="no RecordingMicroAllocator report"):
        Recording.parse("Failed to allocate tail memory.")


def test_search_refuses_bytes_that_are_not_a_tflite_model():
    with pytest.raises(TinypruneError, match="TFL3"):
        find_arena(b"\x00" * 64)


@pytest.mark.slow
def test_search_brackets_the_smallest_arena_at_both_resolutions(zoo_model):
    search = find_arena(zoo_model("mlp"))
    assert search.aligned16 % 16 == 0
    assert search.aligned16 - 16 < search.exact <= search.aligned16
    # Both boundaries were probed and failed: the figures are minimal, not just sufficient.
    assert search.aligned16 - 16 in search.failures
    assert search.exact - 1 in search.failures
    assert search.recorded.total == search.recorded.head + search.recorded.tail
    assert search.recorded.total <= search.aligned16
    assert search.probes < 30


@pytest.mark.slow
def test_a_segfaulting_probe_means_too_small(zoo_model):
    """One byte below its smallest arena the autoencoder's tail overwrites live temporaries and the
    interpreter segfaults: the search survives that and counts it as a failure."""
    search = find_arena(zoo_model("fc_autoencoder"))
    assert search.crashes >= 1
    assert "SIGSEGV" in search.failures[search.exact - 1]
    assert search.recorded.total < search.exact  # the recorder's total is not the arena a model needs


@pytest.mark.slow
def test_a_model_tflm_cannot_run_at_any_size_is_one_clear_error(zoo_model):
    with pytest.raises(TinypruneError, match="does not run this model"):
        find_arena(zoo_model("mobilenet_v1_uncalibrated"))

"""The host end of the protocol against a Python stand-in board on a pseudo-terminal: retries on
corrupted frames (never counted as answers), a silent port, a reset mid-run, Ctrl-C. No TensorFlow."""
import time

import numpy as np
import pytest

from device_fakes import FakeBoard, Misbehaviour, argmax_board
from tinyprune.device import protocol
from tinyprune.device.evaluate import measure
from tinyprune.device.link import BoardLink
from tinyprune.errors import TinypruneError

INPUTS = np.arange(5 * 64, dtype=np.int64).reshape(5, 64).astype(np.int8)


def run(misbehaviour=None, **options):
    with FakeBoard(argmax_board(10), 64, 10, misbehaviour) as board, \
            BoardLink.open(board.port, answer_seconds=3, request_seconds=0.5, **options) as link:
        info = link.hello()
        measured = measure(link, INPUTS)
        return info, measured, link.counters, board.requests


def test_hello_and_every_answer_in_order():
    info, measured, counters, _ = run()
    assert (info.name, info.input_size, info.output_size) == ("fake_model", 64, 10)
    assert measured.outputs == [bytes(row[:10].tobytes()) for row in INPUTS]
    assert measured.elapsed == [4321] * 5 and measured.stopped is None
    assert (counters.corrupt_frames, counters.rejected_requests) == (0, 0)
    assert b"Arena: 1200 of 1280 bytes used" in counters.text  # the boot lines, kept for `flash`


def test_a_corrupted_answer_is_asked_for_again_not_counted():
    _, measured, counters, requests = run(Misbehaviour(corrupt_answer={2}))
    assert measured.outputs == [bytes(row[:10].tobytes()) for row in INPUTS]
    assert counters.corrupt_frames == 1
    assert requests.count((protocol.INFER, 2)) == 2


def test_a_request_the_board_received_corrupted_is_sent_again():
    _, measured, counters, requests = run(Misbehaviour(reject_request={0, 4}))
    assert len(measured.outputs) == 5 and counters.rejected_requests == 2
    assert requests.count((protocol.INFER, 4)) == 2


def test_a_lost_request_is_sent_again_after_the_timeout():
    _, measured, counters, _ = run(Misbehaviour(ignore_request={1}))
    assert len(measured.outputs) == 5 and counters.timeouts == 1


def test_a_reset_mid_run_stops_with_what_was_measured():
    _, measured, _, _ = run(Misbehaviour(reset_at=3))
    assert len(measured.outputs) == 3
    assert "restarted" in measured.stopped
    assert "power" in measured.error.fix


def test_a_silent_port_is_one_error_naming_the_fix():
    with FakeBoard(argmax_board(10), 64, 10, Misbehaviour(silent=True)) as board:
        started = time.monotonic()
        with pytest.raises(TinypruneError) as error, BoardLink.open(board.port, answer_seconds=1.5,
                                                                    request_seconds=0.5) as link:
            link.hello()
    assert time.monotonic() - started < 3
    assert "did not answer in 1.5 s" in error.value.problem
    assert "tinyprune flash" in error.value.fix


def test_an_unknown_port_lists_the_ports_seen():
    with pytest.raises(TinypruneError) as error:
        BoardLink.open("/dev/tinyprune-no-such-port")
    assert "/dev/tinyprune-no-such-port" in error.value.problem
    assert "--port" in error.value.fix


def test_ctrl_c_keeps_what_was_measured():
    def progress(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with FakeBoard(argmax_board(10), 64, 10) as board, BoardLink.open(board.port) as link:
        link.hello()
        measured = measure(link, INPUTS, progress)
    assert len(measured.outputs) == 2 and measured.stopped == "interrupted"


def test_a_port_that_vanishes_mid_run_is_one_error_not_a_crash():
    with FakeBoard(argmax_board(10), 64, 10) as board, BoardLink.open(board.port, request_seconds=0.5) as link:
        link.hello()
        link.port.close()  # what pyserial sees when a USB serial port goes away
        measured = measure(link, INPUTS)
    assert measured.outputs == [] and "lost the serial port" in measured.stopped


def test_without_labels_the_self_test_inputs_give_bytes_and_latency_and_no_accuracy():
    """A model taken as it is without data: device-eval runs the seeded self-test inputs its build ran and
    reports the bytes differing from the host's TFLM and latency, never an accuracy."""
    from pathlib import Path

    from tinyprune.backends.base import TEST_VECTORS
    from tinyprune.device.build_folder import test_set
    from tinyprune.device.evaluate import describe_evaluation, summarise
    from tinyprune.graph.reader import read_graph_file
    from tinyprune.io.tflite import self_test_inputs

    graph = read_graph_file(Path(__file__).parent / "data" / "zoo" / "mlp.tflite")
    inputs, y, task = test_set({"data": None, "seed": 7, "config": {"data": ""}}, graph, None, None)
    assert y is None and task is None
    assert np.array_equal(inputs, self_test_inputs(graph, 7, TEST_VECTORS).reshape(TEST_VECTORS, -1))
    info, measured, _, _ = run()
    host = np.stack([np.frombuffer(o, dtype=np.int8) for o in measured.outputs]).copy()
    host[2, 3] += 1
    section = summarise(info, measured, host, None, None, graph, {"accuracy": None}) | {"port": "fake"}
    assert section["metric"] is section["device"] is section["host_tflm"] is None
    assert (section["differing_bytes"], section["total_bytes"], section["inputs"]) == (1, 50, "self-test")
    line = describe_evaluation(section)
    assert "1 of 50 output bytes differ" in line and "give --data with labels" in line and "%" not in line

"""The serial protocol's framing, host side in Python and board side in C (tp_link.c built for the host
and driven through ctypes): partial frames, garbage, flipped bits and resynchronisation. No TensorFlow."""
import ctypes
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.device import protocol
from tinyprune.device.firmware import write_link_sources

INFO = protocol.Info(protocol.VERSION, protocol.ANSWER, protocol.TIMER_CYCLES, 64, 10, 2960, 3200, 0,
                     25_000_000, "digits_cnn")


def frames_of(events):
    return [e for e in events if isinstance(e, protocol.Frame)]


def test_messages_round_trip():
    result = protocol.Result(513, 123456, bytes(range(10)))
    error = protocol.Error(protocol.ERROR_CRC, protocol.NO_SEQUENCE)
    decoded = [protocol.decode(f) for f in frames_of(protocol.Deframer().feed(
        protocol.encode_info(INFO) + protocol.encode_result(result) + protocol.encode_error(error)))]
    assert decoded == [INFO, result, error]
    assert INFO.to_dict()["self_test"] == "pass" and INFO.to_dict()["timer"] == "cycles"


def test_crc_is_ccitt_false():
    assert protocol.crc16(b"123456789") == 0x29B1  # the catalogued check value of CRC-16/CCITT-FALSE


def test_frames_split_at_every_byte_are_reassembled():
    stream = protocol.encode_infer(7, bytes(64)) + protocol.encode_info(INFO)
    for cut in range(1, len(stream)):
        deframer = protocol.Deframer()
        events = deframer.feed(stream[:cut]) + deframer.feed(stream[cut:])
        assert [f.type for f in frames_of(events)] == [protocol.INFER, protocol.INFO]
        assert not [e for e in events if not isinstance(e, protocol.Frame)]


def test_text_and_garbage_between_frames_are_text_not_frames():
    hello = protocol.encode(protocol.HELLO)
    events = protocol.Deframer().feed(b"Self-test: 0 of 10 output bytes differ\r\n\xa5\x00" + hello + b"PASS\r\n")
    assert frames_of(events) == [protocol.Frame(protocol.HELLO, b"")]
    text = b"".join(e.data for e in events if isinstance(e, protocol.Text))
    assert text == b"Self-test: 0 of 10 output bytes differ\r\n\xa5\x00PASS\r\n"


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, 10_000), bit=st.integers(0, 7), payload=st.binary(min_size=0, max_size=40))
def test_a_flipped_bit_is_never_read_as_a_frame_and_the_next_frame_is_found(position, bit, payload):
    frame = bytearray(protocol.encode(protocol.RESULT, payload))
    frame[position % len(frame)] ^= 1 << bit
    following = protocol.encode_info(INFO)
    deframer = protocol.Deframer()
    events = deframer.feed(bytes(frame) + following)
    if not frames_of(events):  # a length made longer stalls the frame until the host's timeout
        events += deframer.resync()
    assert frames_of(events) == [protocol.Frame(protocol.INFO, protocol.encode_info(INFO)[5:-2])]


def test_a_length_beyond_the_limit_is_corrupt_and_resynchronises():
    deframer = protocol.Deframer(max_payload=100)
    events = deframer.feed(protocol.encode(protocol.RESULT, bytes(200)) + protocol.encode(protocol.HELLO))
    assert any(isinstance(e, protocol.Corrupt) for e in events)
    assert frames_of(events)[-1] == protocol.Frame(protocol.HELLO, b"")


def test_a_partial_frame_waits_for_the_rest():
    deframer = protocol.Deframer()
    frame = protocol.encode_result(protocol.Result(1, 2, b"\x01\x02"))
    assert deframer.feed(frame[:-1]) == []
    assert frames_of(deframer.feed(frame[-1:]))


# -- the C side, built for the host -------------------------------------------------------------------

WRITE = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_uint8), ctypes.c_size_t)
INFER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int8), ctypes.POINTER(ctypes.c_int8),
                         ctypes.POINTER(ctypes.c_uint32))


class LinkInfo(ctypes.Structure):
    _fields_ = [("model_name", ctypes.c_char_p), ("input_size", ctypes.c_uint32), ("output_size", ctypes.c_uint32),
                ("arena_used", ctypes.c_uint32), ("arena_declared", ctypes.c_uint32),
                ("self_test_differing", ctypes.c_uint32), ("timer", ctypes.c_uint8), ("timer_hz", ctypes.c_uint32)]


class LinkBoard(ctypes.Structure):
    _fields_ = [("write", WRITE), ("infer", INFER), ("output", ctypes.POINTER(ctypes.c_int8)),
                ("info", LinkInfo)]


@pytest.fixture(scope="module")
def c_link(tmp_path_factory):
    """tp_link.c for a 64-byte input, compiled with -Wall -Wextra -Werror into a shared library."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no host C compiler")
    folder = tmp_path_factory.mktemp("tp_link")
    write_link_sources(folder, 64)
    library = folder / "tp_link.so"
    subprocess.run([compiler, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    str(folder / "tp_link.c"), "-o", str(library)], check=True, capture_output=True)
    return ctypes.CDLL(str(library))


class CBoard:
    """tp_link.c serving a board whose model adds 1 to the first 10 input bytes."""

    def __init__(self, library):
        self.library, self.sent = library, bytearray()
        self.write = WRITE(lambda data, count: self.sent.extend(data[:count]))
        self.infer = INFER(self._infer)
        self.output = (ctypes.c_int8 * 10)()
        self.board = LinkBoard(self.write, self.infer, self.output,
                               LinkInfo(b"digits_cnn", 64, 10, 2960, 3200, 0, protocol.TIMER_CYCLES, 25_000_000))
        self.receiver = ctypes.create_string_buffer(1024)

    @staticmethod
    def _infer(received, output, elapsed):
        for i in range(10):
            output[i] = (received[i] + 1) & 0x7F
        elapsed[0] = 777
        return 0

    def send(self, data: bytes) -> list:
        for byte in data:
            event = self.library.tp_link_feed(self.receiver, ctypes.c_uint8(byte))
            if event:
                self.library.tp_link_serve(self.receiver, ctypes.byref(self.board), event)
        answers = [protocol.decode(f) for f in frames_of(protocol.Deframer().feed(bytes(self.sent)))]
        self.sent.clear()
        return answers


def test_the_c_board_answers_hello_and_infer(c_link):
    board = CBoard(c_link)
    assert board.send(protocol.encode(protocol.HELLO)) == [INFO]
    [result] = board.send(b"noise\xa5" + protocol.encode_infer(300, bytes(range(64))))
    assert result == protocol.Result(300, 777, bytes(range(1, 11)))


@pytest.mark.parametrize("position", [2, 3, 5, 9, 40, 70])
def test_the_c_board_reports_a_corrupted_request_and_then_serves_the_next(c_link, position):
    board = CBoard(c_link)
    frame = bytearray(protocol.encode_infer(5, bytes(64)))
    frame[position] ^= 0x40
    answers = board.send(bytes(frame))
    assert all(isinstance(a, protocol.Error) for a in answers)  # an error or (lost length) nothing yet
    answers = board.send(protocol.encode_infer(6, bytes(64)) * 2)
    assert answers[-1] == protocol.Result(6, 777, bytes([1] * 10))


def test_the_c_board_rejects_a_too_long_frame_and_a_wrong_input_size(c_link):
    board = CBoard(c_link)
    assert board.send(protocol.encode(protocol.INFER, bytes(100))) == [
        protocol.Error(protocol.ERROR_TOO_LONG, protocol.NO_SEQUENCE)]
    assert board.send(protocol.encode_infer(9, bytes(10))) == [protocol.Error(protocol.ERROR_INPUT_SIZE, 9)]
    assert board.send(protocol.encode(0x33)) == [protocol.Error(protocol.ERROR_UNKNOWN_TYPE, protocol.NO_SEQUENCE)]

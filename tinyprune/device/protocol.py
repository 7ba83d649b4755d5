"""The serial protocol between tinyprune and the firmware (docs/protocol.md): framed, with a CRC, so
that a reset or garbage on the line is detected, never misread as an answer.

A frame is  A5 5A | type (1) | length (2, little-endian) | payload | CRC-16/CCITT-FALSE (2, LE)  where
the CRC covers type, length and payload. Pure Python, no serial port: `encode` builds frames and a
`Deframer` turns a byte stream (with the sketch's text lines between frames) back into events.
The C side is firmware_templates/device/tp_link.{h,c}.j2; the constants below must match it."""
from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass

SYNC = b"\xa5\x5a"
HEADER = struct.Struct("<BH")  # type, payload length
CRC = struct.Struct("<H")
VERSION = 1
MAX_PAYLOAD = 0xFFFF

# host -> board
HELLO = 0x01  # empty: the board answers INFO
INFER = 0x02  # sequence number (u16) + the int8 input: the board answers RESULT
# board -> host
INFO = 0x81
RESULT = 0x82
ERROR = 0xE0

# INFO.reason
BOOT = 0  # sent unsolicited after a reset: in the middle of a run it means the board restarted
ANSWER = 1  # the answer to HELLO

# INFO.timer: what RESULT.elapsed counts (at INFO.timer_hz)
TIMER_MICROSECONDS = 0
TIMER_CYCLES = 1

# ERROR.code
ERROR_CRC = 1  # a frame arrived with a wrong CRC: send it again
ERROR_TOO_LONG = 2  # the length field exceeds the board's buffer
ERROR_UNKNOWN_TYPE = 3
ERROR_INPUT_SIZE = 4  # INFER's input is not the model's input size
ERROR_INVOKE = 5  # the model failed to run
ERROR_NAMES = {ERROR_CRC: "bad CRC", ERROR_TOO_LONG: "frame too long", ERROR_UNKNOWN_TYPE: "unknown frame type",
               ERROR_INPUT_SIZE: "wrong input size", ERROR_INVOKE: "invoke failed"}

NO_SELF_TEST = 0xFFFFFFFF  # INFO.self_test_differing when the firmware carries no test vector
NO_SEQUENCE = 0xFFFF  # ERROR.sequence when the board could not read one
MAX_NAME = 64  # bytes of the model name INFO carries (tp_link.c truncates longer ones)

_INFO = struct.Struct("<BBBBIIIIII")  # version, reason, timer, reserved, input size, output size,
#                                      arena used, arena declared, self-test bytes differing, timer Hz
_RESULT = struct.Struct("<HI")  # sequence, elapsed
_ERROR = struct.Struct("<BH")  # code, sequence
INFO_MAX_PAYLOAD = _INFO.size + MAX_NAME


def max_board_payload(output_size: int) -> int:
    """The longest frame a board with `output_size` outputs sends: what the host need wait for."""
    return max(INFO_MAX_PAYLOAD, _RESULT.size + output_size)


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF): what tp_link.c computes."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode(frame_type: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = HEADER.pack(frame_type, len(payload)) + bytes(payload)
    return SYNC + body + CRC.pack(crc16(body))


@dataclass(frozen=True)
class Frame:
    type: int
    payload: bytes


@dataclass(frozen=True)
class Corrupt:
    """Sync bytes followed by a frame whose CRC does not match: garbage, a dropped byte or a flipped bit."""

    skipped: bytes


@dataclass(frozen=True)
class Text:
    """Bytes between frames: the sketch's human-readable lines (boot messages, errors)."""

    data: bytes


class Deframer:
    """Feed it bytes as they arrive; it returns the complete frames, corrupt frames and text found so far
    and keeps a partial frame for the next call. After a corrupt frame it resumes the search one byte
    past the bad sync, so a real frame hidden behind garbage is still found."""

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        self.max_payload = max_payload
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame | Corrupt | Text]:
        self._buffer += data
        events: list[Frame | Corrupt | Text] = []
        while self._buffer:
            start = self._buffer.find(SYNC)
            if start < 0:  # keep a trailing A5: it may be the first half of a sync
                keep = 1 if self._buffer.endswith(SYNC[:1]) else 0
                self._emit_text(events, len(self._buffer) - keep)
                break
            self._emit_text(events, start)
            if len(self._buffer) < len(SYNC) + HEADER.size:
                break
            frame_type, length = HEADER.unpack_from(self._buffer, len(SYNC))
            if length > self.max_payload:
                events.append(Corrupt(bytes(self._buffer[:len(SYNC)])))
                del self._buffer[:1]
                continue
            end = len(SYNC) + HEADER.size + length + CRC.size
            if len(self._buffer) < end:
                break
            body = bytes(self._buffer[len(SYNC):end - CRC.size])
            (crc,) = CRC.unpack_from(self._buffer, end - CRC.size)
            if crc != crc16(body):
                events.append(Corrupt(bytes(self._buffer[:end])))
                del self._buffer[:1]
                continue
            events.append(Frame(frame_type, body[HEADER.size:]))
            del self._buffer[:end]
        return events

    def resync(self) -> list[Frame | Corrupt | Text]:
        """Give up on stalled partial frames (after a timeout: a corrupted length field makes a frame
        look longer than it is) and search the bytes after each one's sync again."""
        events = self.feed(b"")
        while self._buffer.startswith(SYNC):
            events.append(Corrupt(bytes(self._buffer[:len(SYNC)])))
            del self._buffer[:1]
            events += self.feed(b"")
        return events

    def _emit_text(self, events: list, count: int) -> None:
        if count > 0:
            events.append(Text(bytes(self._buffer[:count])))
            del self._buffer[:count]


@dataclass(frozen=True)
class Info:
    """What the board says about itself, at boot and in answer to HELLO."""

    version: int
    reason: int  # BOOT or ANSWER
    timer: int  # TIMER_MICROSECONDS or TIMER_CYCLES
    input_size: int
    output_size: int
    arena_used: int
    arena_declared: int
    self_test_differing: int  # output bytes of the built-in test vector that differ; NO_SELF_TEST
    timer_hz: int
    name: str

    @property
    def self_test(self) -> str:
        if self.self_test_differing == NO_SELF_TEST:
            return "none"
        return "pass" if self.self_test_differing == 0 else "fail"

    def to_dict(self) -> dict:
        return {"model": self.name, "protocol_version": self.version, "input_size": self.input_size,
                "output_size": self.output_size, "arena_used": self.arena_used,
                "arena_declared": self.arena_declared, "self_test": self.self_test,
                "self_test_differing_bytes": None if self.self_test_differing == NO_SELF_TEST
                else self.self_test_differing,
                "timer": "cycles" if self.timer == TIMER_CYCLES else "microseconds", "timer_hz": self.timer_hz}


@dataclass(frozen=True)
class Result:
    sequence: int
    elapsed: int  # timer ticks (INFO.timer_hz a second)
    output: bytes  # int8


@dataclass(frozen=True)
class Error:
    code: int
    sequence: int

    @property
    def reason(self) -> str:
        return ERROR_NAMES.get(self.code, f"error {self.code}")


def encode_info(info: Info) -> bytes:
    return encode(INFO, _INFO.pack(info.version, info.reason, info.timer, 0, info.input_size, info.output_size,
                                   info.arena_used, info.arena_declared, info.self_test_differing,
                                   info.timer_hz) + info.name.encode("utf-8"))


def encode_infer(sequence: int, sample: bytes) -> bytes:
    return encode(INFER, struct.pack("<H", sequence) + bytes(sample))


def encode_result(result: Result) -> bytes:
    return encode(RESULT, _RESULT.pack(result.sequence, result.elapsed) + result.output)


def encode_error(error: Error) -> bytes:
    return encode(ERROR, _ERROR.pack(error.code, error.sequence))


def decode(frame: Frame) -> Info | Result | Error:
    """The board's frames as values; ValueError for a frame no firmware sends (a protocol mismatch)."""
    payload = frame.payload
    if frame.type == INFO and len(payload) >= _INFO.size:
        version, reason, timer, _, *sizes = _INFO.unpack_from(payload)
        name = payload[_INFO.size:].decode("utf-8", errors="replace")
        return Info(version, reason, timer, *sizes, name=name)
    if frame.type == RESULT and len(payload) >= _RESULT.size:
        sequence, elapsed = _RESULT.unpack_from(payload)
        return Result(sequence, elapsed, bytes(payload[_RESULT.size:]))
    if frame.type == ERROR and len(payload) == _ERROR.size:
        return Error(*_ERROR.unpack(payload))
    raise ValueError(f"unexpected frame type 0x{frame.type:02x} with {len(payload)} payload bytes")


def decode_request(frame: Frame) -> tuple[int, int, bytes]:
    """A host frame as (type, sequence, input): for stand-in boards written in Python (tests)."""
    if frame.type == INFER and len(frame.payload) >= 2:
        return INFER, struct.unpack_from("<H", frame.payload)[0], bytes(frame.payload[2:])
    return frame.type, NO_SEQUENCE, b""

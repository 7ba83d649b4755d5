"""A board written in Python on a pseudo-terminal: speaks tinyprune's serial protocol like the firmware,
and misbehaves on request (corrupts an answer, rejects a request, restarts, stays silent)."""
from __future__ import annotations

import os
import select
import threading
import tty
from dataclasses import dataclass, field

import numpy as np

from tinyprune.device import protocol


@dataclass
class Misbehaviour:
    corrupt_answer: set = field(default_factory=set)  # sequence numbers whose first RESULT gets a flipped bit
    reject_request: set = field(default_factory=set)  # ... answered first with ERROR bad CRC
    ignore_request: set = field(default_factory=set)  # ... not answered the first time
    reset_at: int | None = None  # sequence number at which the board reboots instead of answering
    silent: bool = False
    text: bytes = b"Arena: 1200 of 1280 bytes used\r\n"  # printed before every INFO


class FakeBoard:
    """Answers INFER with `compute(input bytes) -> output bytes`, `elapsed` ticks each."""

    def __init__(self, compute, input_size: int, output_size: int, misbehaviour: Misbehaviour | None = None,
                 elapsed: int = 4321, name: str = "fake_model"):
        self.compute, self.elapsed = compute, elapsed
        self.misbehaviour = misbehaviour or Misbehaviour()
        self.info = protocol.Info(protocol.VERSION, protocol.BOOT, protocol.TIMER_MICROSECONDS, input_size,
                                  output_size, 1200, 1280, 0, 1_000_000, name)
        self.master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no newline translation: a serial line, as qemu's pty is
        self.port = os.ttyname(slave)
        self._slave = slave  # kept open so the pseudo-terminal never hangs up between connections
        self.requests: list[tuple[int, int]] = []  # (type, sequence) as received
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakeBoard:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)
        os.close(self._slave)

    def _send(self, data: bytes) -> None:
        os.write(self.master, data)

    def _serve(self) -> None:
        deframer = protocol.Deframer()
        seen: set = set()
        if not self.misbehaviour.silent:
            self._send(self.misbehaviour.text + protocol.encode_info(self.info))
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            data = os.read(self.master, 4096)
            for event in deframer.feed(data):
                if isinstance(event, protocol.Frame) and not self.misbehaviour.silent:
                    self._answer(event, seen)

    def _answer(self, frame: protocol.Frame, seen: set) -> None:
        kind, sequence, sample = protocol.decode_request(frame)
        self.requests.append((kind, sequence))
        m = self.misbehaviour
        if kind == protocol.HELLO:
            answer = protocol.Info(**{**self.info.__dict__, "reason": protocol.ANSWER})
            self._send(self.misbehaviour.text + protocol.encode_info(answer))
            return
        first = sequence not in seen
        seen.add(sequence)
        if sequence == m.reset_at:
            self._send(self.misbehaviour.text + protocol.encode_info(self.info))
        elif first and sequence in m.ignore_request:
            pass
        elif first and sequence in m.reject_request:
            self._send(protocol.encode_error(protocol.Error(protocol.ERROR_CRC, protocol.NO_SEQUENCE)))
        else:
            answer = bytearray(protocol.encode_result(protocol.Result(sequence, self.elapsed, self.compute(sample))))
            if first and sequence in m.corrupt_answer:
                answer[-3] ^= 0x10
            self._send(bytes(answer))


def argmax_board(classes: int):
    """compute(): the input's first `classes` bytes as the output (so the answer is known)."""
    return lambda sample: bytes(np.frombuffer(sample, dtype=np.int8)[:classes].tobytes())


class CorruptingLine:
    """A serial line between the host and a board's port that flips one bit in chosen frames: the n-th
    INFER the host sends (`to_board`) and the n-th RESULT the board sends (`to_host`), counted from 1."""

    def __init__(self, board_port: str, to_board: set, to_host: set):
        import serial

        self.board = serial.serial_for_url(board_port, baudrate=115200, timeout=0)
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port, self._slave = os.ttyname(slave), slave
        self._directions = {"to_board": _Flipper(protocol.INFER, to_board),
                            "to_host": _Flipper(protocol.RESULT, to_host)}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._forward, daemon=True)

    @property
    def flipped(self) -> dict:
        return {name: flipper.flipped for name, flipper in self._directions.items()}

    def __enter__(self) -> CorruptingLine:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self.board.close()
        os.close(self.master)
        os.close(self._slave)

    def _forward(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master, self.board.fileno()], [], [], 0.05)
            if self.master in ready:
                self.board.write(self._directions["to_board"].pass_on(os.read(self.master, 4096)))
            if self.board.fileno() in ready:
                data = self.board.read(4096)
                if data:
                    os.write(self.master, self._directions["to_host"].pass_on(data))


class _Flipper:
    def __init__(self, frame_type: int, targets: set):
        self.frame_type, self.targets = frame_type, targets
        self.seen, self.flipped, self._previous, self._state = 0, 0, -1, None

    def pass_on(self, data: bytes) -> bytes:
        out = bytearray(data)
        for i, byte in enumerate(out):
            if self._state == "type":
                self.seen += byte == self.frame_type
                self._state = 5 if byte == self.frame_type and self.seen in self.targets else None
            elif isinstance(self._state, int):
                self._state -= 1
                if self._state == 0:  # a payload byte: only the CRC can tell
                    out[i] ^= 0x04
                    self.flipped += 1
                    self._state = None
            elif self._previous == protocol.SYNC[0] and byte == protocol.SYNC[1]:
                self._state = "type"
            self._previous = byte
        return bytes(out)

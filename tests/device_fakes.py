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

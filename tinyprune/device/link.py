"""The host end of the serial protocol: open a port, ask the board who it is, run inferences on it.

A corrupted answer (bad CRC, or the board's ERROR saying our frame arrived corrupted) is asked for
again, up to `retries` times a request, and counted; it is never taken for the board's answer. A
board that restarts in the middle of a run announces itself with an INFO frame marked BOOT, which
ends the run: the firmware's state (and maybe its model) is no longer the one measured so far."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from tinyprune.device import protocol
from tinyprune.errors import TinypruneError

BAUD_RATE = 115200


def ports_seen() -> list[str]:
    """The serial ports the operating system lists now."""
    from serial.tools import list_ports

    return sorted(port.device for port in list_ports.comports())


def port_list_fix(command: str) -> str:
    seen = ports_seen()
    listed = ", ".join(seen) if seen else "none (is the board plugged in, and its USB cable one that carries data?)"
    return f"pass one of the ports seen with {command} --port PORT: {listed}"


def open_port(port: str, baud_rate: int = BAUD_RATE):
    """pyserial's port for a device path or a URL (socket://host:port, rfc2217://...)."""
    import serial

    try:
        return serial.serial_for_url(port, baudrate=baud_rate, timeout=0.05, write_timeout=5)
    except (serial.SerialException, ValueError, OSError) as exc:
        raise TinypruneError(f"cannot open serial port {port!r} ({exc})", port_list_fix("tinyprune device-eval")) from None


@dataclass
class LinkCounters:
    corrupt_frames: int = 0  # frames from the board with a bad CRC
    rejected_requests: int = 0  # ERROR frames: the board received our frame corrupted
    timeouts: int = 0  # requests re-sent because no answer came in time
    text: bytearray = field(default_factory=bytearray)  # the firmware's human-readable lines


class BoardLink:
    """One serial connection to a board running the tinyprune protocol."""

    def __init__(self, port, name: str, answer_seconds: float = 10.0, request_seconds: float = 2.0,
                 retries: int = 5):
        self.port, self.name = port, name
        self.answer_seconds, self.request_seconds, self.retries = answer_seconds, request_seconds, retries
        self.deframer = protocol.Deframer(protocol.INFO_MAX_PAYLOAD)  # until INFO gives the output size
        self.counters = LinkCounters()
        self._pending: list = []

    @classmethod
    def open(cls, port: str, **options) -> BoardLink:
        return cls(open_port(port), port, **options)

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> BoardLink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def hello(self) -> protocol.Info:
        """The board's INFO, asking again each `request_seconds` until `answer_seconds` have passed."""
        deadline = time.monotonic() + self.answer_seconds
        while time.monotonic() < deadline:
            self._write(protocol.encode(protocol.HELLO))
            answer = self._next(protocol.Info, min(deadline, time.monotonic() + self.request_seconds))
            if answer is not None:
                self.deframer.max_payload = protocol.max_board_payload(answer.output_size)
                return answer
        raise TinypruneError(
            f"the board on {self.name} did not answer in {self.answer_seconds:g} s",
            f"flash the firmware tinyprune exported (tinyprune flash OUT --port {self.name}), check that "
            f"{self.name} is the board's port and nothing else has it open, then press the board's reset button")

    def infer(self, sequence: int, sample: bytes) -> protocol.Result:
        """The board's answer to one input; corrupted frames and lost requests are sent again."""
        frame = protocol.encode_infer(sequence, sample)
        for _ in range(self.retries + 1):
            self._write(frame)
            answer = self._next(protocol.Result, time.monotonic() + self.request_seconds, sequence)
            if answer is not None:
                return answer
        raise TinypruneError(
            f"the board on {self.name} stopped answering (request {sequence}, {self.retries + 1} tries of "
            f"{self.request_seconds:g} s)", "check the cable and the board's power, press reset and run again")

    def _write(self, frame: bytes) -> None:
        try:
            self.port.write(frame)
        except (OSError, ValueError) as exc:
            raise self._port_lost(exc) from None

    def _port_lost(self, exc: Exception) -> TinypruneError:
        """A USB serial port vanishes when its board resets or is unplugged."""
        return TinypruneError(f"lost the serial port {self.name} ({exc}): the board restarted or was unplugged",
                              "check its cable and power, then run again; what was measured before is in the report")

    def _next(self, wanted: type, deadline: float, sequence: int | None = None):
        """The next answer of type `wanted` (for `sequence`), None when it should be asked for again."""
        resynced = False
        while True:
            while self._pending:
                answer = self._answer(self._pending.pop(0), wanted, sequence)
                if answer is not None:
                    return None if answer is _ASK_AGAIN else answer
            if time.monotonic() >= deadline:
                if not resynced:  # the answer may sit behind a frame whose length was corrupted
                    resynced = True
                    self._pending.extend(self.deframer.resync())
                    continue
                self.counters.timeouts += 1
                return None
            try:
                data = self.port.read(max(1, self.port.in_waiting))
            except (OSError, ValueError) as exc:  # serial.SerialException is an OSError
                raise self._port_lost(exc) from None
            if data:
                self._pending.extend(self.deframer.feed(data))

    def _answer(self, event, wanted: type, sequence: int | None):
        if isinstance(event, protocol.Text):
            self.counters.text += event.data
            return None
        if isinstance(event, protocol.Corrupt):
            self.counters.corrupt_frames += 1
            return _ASK_AGAIN
        try:
            message = protocol.decode(event)
        except ValueError as exc:
            raise TinypruneError(f"the board on {self.name} speaks another protocol ({exc})",
                                 "flash the firmware of this tinyprune version (tinyprune flash OUT --port PORT)") from None
        if isinstance(message, protocol.Info) and wanted is not protocol.Info and message.reason == protocol.BOOT:
            raise TinypruneError(f"the board on {self.name} restarted in the middle of the run",
                                 "check its power supply and cable (a brown-out or a loose USB cable resets it), "
                                 "then run again; what was measured before the restart is in the report")
        if isinstance(message, protocol.Error):
            if message.code in (protocol.ERROR_CRC, protocol.ERROR_TOO_LONG):
                self.counters.rejected_requests += 1
                return _ASK_AGAIN
            if message.sequence in (sequence, protocol.NO_SEQUENCE):
                raise TinypruneError(f"the board on {self.name} answered: {message.reason}",
                                     "flash the firmware exported with this model (tinyprune flash OUT --port PORT)")
            return None
        if isinstance(message, wanted) and (sequence is None or message.sequence == sequence):
            return message
        return None  # a late answer to a request already asked again


_ASK_AGAIN = object()

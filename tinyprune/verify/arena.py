"""The exact tensor arena a model needs, found by asking the real TFLM interpreter (tflite-micro package).

The arena a model needs is the smallest `arena_size` with which the interpreter allocates *and*
invokes. It is not the recording allocator's total: the peak can come while a node is prepared or while
the memory planner runs, before the recorder's figures are final. So we search: each probe is one
interpreter in its own process (a too-small arena can segfault; a segfault means "too small"), the
probes bisect between a failing lower bound and a doubling upper bound. One probe server process (numpy
and tflite_micro only, see arena_probe.py) forks a child per probe, so a search costs one interpreter
start-up plus ~15 forks: well under a second for the zoo's models.

The host runtime allocates the arena with `new[]` (16-byte aligned on 64-bit glibc) and the recording
allocator grows the tail down from the unaligned end, so the figure depends on the size modulo 16:
`aligned16` is what a user declares, `exact` is the 1-byte figure. This is the oracle the memory
emulation (tinyprune.memory) is tested against."""
from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tinyprune.errors import TinypruneError
from tinyprune.sizes import align_up

ALIGNMENT = 16
FIRST_PROBE = 1 << 20
LARGEST_PROBE = 1 << 30

_TOTAL = re.compile(r"\[RecordingMicroAllocator\] Arena allocation (total|head|tail) (\d+) bytes")
_SECTION = re.compile(
    r"\[RecordingMicroAllocator\] '(?P<name>[^']+)' used (?P<used>\d+) bytes with alignment overhead "
    r"\(requested (?P<requested>\d+) bytes for (?P<count>\d+) "
)


@dataclass(frozen=True)
class RecordedSection:
    """One line of RecordingMicroAllocator::PrintAllocations()."""

    name: str  # as TFLM names it, e.g. "TfLiteEvalTensor data"
    used: int  # bytes including alignment overhead
    requested: int
    count: int  # allocations (or tensors, structs) counted by the recorder


@dataclass(frozen=True)
class Recording:
    """The recording allocator's report after allocate + invoke."""

    total: int
    head: int
    tail: int
    sections: dict[str, RecordedSection]

    @classmethod
    def parse(cls, text: str) -> Recording:
        totals = {kind: int(value) for kind, value in _TOTAL.findall(text)}
        if set(totals) != {"total", "head", "tail"}:
            raise ValueError(f"no RecordingMicroAllocator report in:\n{text}")
        sections = {}
        for match in _SECTION.finditer(text):
            section = RecordedSection(match["name"], int(match["used"]), int(match["requested"]),
                                      int(match["count"]))
            sections[section.name] = section
        return cls(totals["total"], totals["head"], totals["tail"], sections)


@dataclass(frozen=True)
class ArenaSearch:
    """The smallest arena the tflite-micro interpreter allocates and invokes with (64-bit host)."""

    aligned16: int  # smallest multiple of 16 that runs: what a user declares
    exact: int  # smallest size in bytes that runs
    recorded: Recording  # the recorder's report at `aligned16`
    probes: int  # interpreters started (each in its own process)
    crashes: int  # probes that ended in a signal (a too-small arena overwrote memory)
    runtime_version: str = ""
    failures: dict[int, str] = field(default_factory=dict, repr=False)  # size -> last line of the error


class _ProbeServer:
    """The probe process: one arena size in, one JSON answer out."""

    def __init__(self, model_path: Path):
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tinyprune.verify.arena_probe", str(model_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        self.answers: dict[int, dict] = {}

    def runs(self, size: int) -> bool:
        if size not in self.answers:
            self._process.stdin.write(f"{size}\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
            if not line:
                raise TinypruneError(
                    f"the TFLM probe process ended unexpectedly: {self._process.stderr.read().strip()}",
                    "check that the tflite-micro package imports: python -c 'import tflite_micro'",
                )
            answer = json.loads(line)
            if answer["python_error"]:
                raise TinypruneError(f"TFLM probe failed: {answer['output'].strip()}",
                                     "check the model runs in the tflite-micro interpreter")
            self.answers[size] = answer
        return self.answers[size]["runs"]

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait()
        self._process.stdout.close()
        self._process.stderr.close()


def _smallest_running(server: _ProbeServer, fails: int, runs: int, step: int) -> int:
    """Bisect the multiples of `step` in (fails, runs]: the smallest that runs (runs is known to)."""
    while runs - fails > step:
        middle = fails + (runs - fails) // step // 2 * step
        if server.runs(middle):
            runs = middle
        else:
            fails = middle
    return runs


def find_arena(model_bytes: bytes) -> ArenaSearch:
    """The smallest arena the real TFLM interpreter runs `model_bytes` with, at 16- and 1-byte resolution.
    Searched once per model in a process: the quantize stage's TFLM compression and verify both ask."""
    return _find_arena(bytes(model_bytes))


@functools.lru_cache(maxsize=8)
def _find_arena(model_bytes: bytes) -> ArenaSearch:
    if len(model_bytes) < 8 or model_bytes[4:8] != b"TFL3":
        raise TinypruneError("the arena search needs a TFLite flatbuffer (file identifier TFL3)",
                             "pass the .tflite bytes the converter wrote")
    with tempfile.TemporaryDirectory(prefix="tinyprune-arena-") as folder:
        model_path = Path(folder) / "model.tflite"
        model_path.write_bytes(model_bytes)
        server = _ProbeServer(model_path)
        try:
            return _search(server)
        finally:
            server.close()


def _search(server: _ProbeServer) -> ArenaSearch:
    upper = FIRST_PROBE
    while not server.runs(upper):
        if upper >= LARGEST_PROBE:
            raise TinypruneError(
                f"the TFLM interpreter does not run this model even with a {upper:,}-byte arena: "
                f"{_last_error(server.answers[upper])}",
                "check that TFLM supports the model's operators (tinyprune inspect lists them) and its "
                "quantization (a near-zero activation scale aborts SOFTMAX's preparation)",
            )
        upper *= 2
    # Head and tail are both alive at the end, so the recorder's total (less the alignment slack) is a
    # lower bound; it is probed like any other, never assumed.
    recorded_total = Recording.parse(server.answers[upper]["output"]).total
    lower = max(recorded_total // ALIGNMENT * ALIGNMENT - ALIGNMENT, 0)
    while lower > 0 and server.runs(lower):
        lower = lower // 2 // ALIGNMENT * ALIGNMENT
    upper_guess = align_up(recorded_total + recorded_total // 4 + 1024, ALIGNMENT)
    if upper_guess < upper and server.runs(upper_guess):
        upper = upper_guess
    elif upper_guess < upper:
        lower = upper_guess
    aligned16 = _smallest_running(server, lower, upper, ALIGNMENT)
    exact = _smallest_running(server, aligned16 - ALIGNMENT, aligned16, 1)
    answers = server.answers.values()
    return ArenaSearch(
        aligned16=aligned16,
        exact=exact,
        recorded=Recording.parse(server.answers[aligned16]["output"]),
        probes=len(server.answers),
        crashes=sum(1 for answer in answers if answer["signal"] is not None),
        runtime_version=_tflm_version(),
        failures={a["size"]: _last_error(a) for a in answers if not a["runs"]},
    )


def _last_error(answer: dict) -> str:
    """What went wrong in a failed probe: TFLM's first message (the cause; later lines are the callers'
    "failed to ..."), or the signal that ended it."""
    lines = [line.strip() for line in answer["output"].splitlines() if line.strip()]
    if answer["signal"] is not None:
        name = signal.Signals(answer["signal"]).name
        return f"the interpreter died on {name}" + (f" after: {lines[-1]}" if lines else "")
    return lines[0] if lines else "no message"


def _tflm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tflite-micro")
    except PackageNotFoundError:
        return "unknown"

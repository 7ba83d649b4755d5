"""Probe server for the arena search: `python -m tinyprune.verify.arena_probe model.tflite`.

Imports only numpy and tflite_micro (no TensorFlow), so it starts in a fraction of a second. It reads
one arena size a line on stdin and answers one JSON line on stdout. Every probe runs in a child forked
for it alone: a too-small arena can make TFLM write past its tail and segfault, which then ends only
that child. The child's stdout and stderr (file descriptors 1 and 2, where TFLM's C++ code prints) go to
a pipe the server reads, so the recording allocator's report is captured whole.

Answer fields: size, runs (allocated and invoked), signal (the signal that ended the child, or null),
output (everything the child printed: TFLM's messages, and print_allocations() when it ran)."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
from tflite_micro.python.tflite_micro import runtime

RAN, TOO_SMALL, CRASHED_IN_PYTHON = 0, 3, 4


def allocate_and_invoke(model: bytes, arena_size: int) -> None:
    """Build an interpreter with `arena_size`, run it once on zero inputs, print the recorder's report
    (to file descriptor 2, from C)."""
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
    index = 0
    while True:
        try:
            details = interpreter.get_input_details(index)
        except (IndexError, RuntimeError, ValueError):
            break
        interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), index)
        index += 1
    interpreter.invoke()
    interpreter.print_allocations()


def _child(model: bytes, arena_size: int, write_end: int) -> None:
    """Runs in the forked child; never returns."""
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    code = RAN
    try:
        allocate_and_invoke(model, arena_size)
    except RuntimeError as error:  # TFLM's "failed to allocate" and "invocation failed"
        os.write(2, f"\n{error}\n".encode())
        code = TOO_SMALL
    except BaseException as error:  # noqa: BLE001 — reported to the parent, which decides
        os.write(2, f"\n{type(error).__name__}: {error}\n".encode())
        code = CRASHED_IN_PYTHON
    os._exit(code)


def probe(model: bytes, arena_size: int) -> dict:
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(model, arena_size, write_end)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read()  # until the child's end closes: it exited
    _, status = os.waitpid(pid, 0)
    signal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    return {
        "size": arena_size,
        "runs": exit_code == RAN,
        "python_error": exit_code == CRASHED_IN_PYTHON,
        "signal": signal,
        "output": output.decode(errors="replace"),
    }


def main(model_path: str) -> None:
    with open(model_path, "rb") as f:
        model = f.read()
    for line in sys.stdin:
        if not line.strip():
            continue
        sys.stdout.write(json.dumps(probe(model, int(line))) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])

"""The terminal side of a run: one line per stage, a progress bar while training, and the native
noise of TensorFlow and the converters kept off the user's screen unless --verbose."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings
from typing import TextIO

from tinyprune.listener import Listener


@contextlib.contextmanager
def native_output_hidden(hide: bool):
    """Send file descriptors 1 and 2 (where C++ logging goes) to /dev/null; yield streams that still
    reach the terminal, for tinyprune's own output."""
    if not hide:
        yield sys.stdout, sys.stderr
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    out = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    err = os.fdopen(os.dup(saved[2]), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for fd in (1, 2):
                os.dup2(devnull, fd)
            yield out, err
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            os.close(devnull)
            out.close()
            err.close()


class CtrlC:
    """Ctrl-C as KeyboardInterrupt, remembered until a progress report sees it: one that lands while
    Python runs a finalizer (TensorFlow's resource deleters, run by the garbage collector mid-training)
    is printed as "Exception ignored" and dropped, and the build would run on."""

    def __init__(self):
        self.pressed = False

    def __call__(self, signum, frame):
        self.pressed = True
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        """As SIGINT's handler for the block (only the main thread may install one: elsewhere, none)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


class ConsoleListener(Listener):
    """Stage lines on `out`; a one-line progress bar on `err` when it is a terminal."""

    def __init__(self, out: TextIO, err: TextIO, quiet: bool = False, verbose: bool = False,
                 ctrl_c: CtrlC | None = None):
        self.out, self.err, self.quiet, self.verbose, self.ctrl_c = out, err, quiet, verbose, ctrl_c
        self.live = err.isatty()

    def _raise_dropped_ctrl_c(self) -> None:
        """At each epoch's report (never after a stage that handled its Ctrl-C, as device-eval does)."""
        if self.ctrl_c is not None and self.ctrl_c.pressed:
            raise KeyboardInterrupt

    def stage(self, name: str, line: str) -> None:
        if self.live:
            self.err.write("\r\033[K")
        if not self.quiet:
            self.out.write(f"{name:<9} {line}\n")
            self.out.flush()

    def progress(self, phase: str, step: int, total: int, figures: dict) -> None:
        self._raise_dropped_ctrl_c()
        if self.quiet:
            return
        shown = ", ".join(f"{k} {v:.4f}" for k, v in figures.items())
        if self.live:
            width = 24
            done = width * step // max(total, 1)
            self.err.write(f"\r\033[K{phase:<9} [{'#' * done}{'.' * (width - done)}] {step}/{total} {shown}")
            self.err.flush()
        elif self.verbose:
            self.err.write(f"{phase:<9} {step}/{total} {shown}\n")

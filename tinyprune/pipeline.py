"""The stages in order: load -> prune -> quantize -> check -> verify -> export -> report.

Each stage is a function from one artefact to the next; this module only sequences them, times
them, tells a listener what each did, and writes the outputs atomically: everything goes into a
temporary folder beside the output, renamed into place only when every stage has succeeded."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tinyprune.config import BuildConfig
from tinyprune.errors import TinypruneError
from tinyprune.listener import Listener


@dataclass
class BuildResult:
    out: Path
    report: dict
    files: list[str] = field(default_factory=list)


class _Timer:
    """Times each stage and tells the listener its one-line summary."""

    def __init__(self, listener: Listener):
        self.listener = listener
        self.seconds: dict[str, float] = {}

    def run(self, name: str, work: Callable[[], object], summary: Callable[[object], str]):
        start = time.perf_counter()
        result = work()
        self.seconds[name] = round(time.perf_counter() - start, 3)
        self.listener.stage(name, summary(result))
        return result


def prepare_output(out: Path, force: bool) -> None:
    """Refuse an existing output folder before any work is done, unless --force."""
    if out.exists() and not force:
        raise TinypruneError(f"output folder {out} already exists",
                             "choose another --out, or add --force to replace it")
    if out.exists() and not out.is_dir():
        raise TinypruneError(f"output path {out} is a file", "choose a folder path for --out")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent)
        Path(probe).rmdir()
    except OSError as exc:
        raise TinypruneError(f"cannot write in {parent} ({exc.strerror})",
                             "choose an --out in a folder you can write to") from None


def publish(staging: Path, out: Path) -> None:
    """Swap the finished staging folder into place; an old output is removed only after that. The
    staging folder was made private (mkdtemp: 0700); the output gets the mode the user's umask gives."""
    staging.chmod(0o777 & ~_umask())
    previous = None
    if out.exists():
        previous = out.with_name(f".{out.name}.previous")
        shutil.rmtree(previous, ignore_errors=True)
        out.rename(previous)
    staging.rename(out)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


@contextlib.contextmanager
def staged_output(out: Path):
    """A private folder beside `out` to write everything into: renamed into place when the block ends,
    removed when it fails or is interrupted, so no half-written output is ever left."""
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.resolve().parent))
    try:
        yield staging
        publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def build(config: BuildConfig, listener: Listener | None = None) -> BuildResult:
    """Run every stage for one configuration and write the output folder."""
    from tinyprune import stages
    from tinyprune.io.tflite import takes_model_as_it_is
    from tinyprune.report import write_reports

    listener = listener or Listener()
    config.validate()
    out = Path(config.out)
    prepare_output(out, config.force)
    timer = _Timer(listener)

    target = stages.resolve_target(config)
    if takes_model_as_it_is(config.model):
        return build_as_it_is(config, target, out, timer)
    loaded = timer.run("load", lambda: stages.load(config), stages.describe_load)
    trained = timer.run("train", lambda: stages.train_float(loaded, config, listener.progress),
                        stages.describe_train)
    pruned = timer.run("prune", lambda: stages.prune(trained, config, listener.progress), stages.describe_prune)
    quantized = timer.run("quantize", lambda: stages.quantize(pruned, trained, config, target, listener.progress),
                          stages.describe_quantize)
    checked = timer.run("check", lambda: stages.check(quantized, target), stages.describe_check)

    with staged_output(out) as staging:
        verified = timer.run("verify", lambda: stages.verify(checked, pruned, trained, config, target, loaded.name,
                                                             staging),
                             stages.describe_verify)
        files = timer.run("export", lambda: stages.export(verified, staging), stages.describe_export)
        report = write_reports(staging, config, target, loaded, trained, pruned, verified, files, timer.seconds)
    listener.stage("report", f"{out}/report.html, report.md, report.json")
    return BuildResult(out=out, report=report, files=files)


def build_as_it_is(config: BuildConfig, target, out: Path, timer: _Timer) -> BuildResult:
    """An int8 .tflite (or an exported SavedModel, converted to int8) as it is: load, check, verify, export
    and report; the stages that do not apply are reported as such, with the reason."""
    from tinyprune import stages
    from tinyprune.io import tflite
    from tinyprune.report.prebuilt import write_tflite_reports

    prebuilt = timer.run("load", lambda: tflite.load_model_as_it_is(config), tflite.describe_load)
    for stage in ("train", "prune", "quantize"):
        if stage in prebuilt.not_applied:
            timer.listener.stage(stage, f"did not apply: {prebuilt.not_applied[stage]}")
    if prebuilt.model_bytes is None:
        prebuilt = timer.run("quantize", lambda: tflite.convert_saved_model(prebuilt, config, target),
                             tflite.describe_convert)
    checked = timer.run("check", lambda: stages.check(tflite.as_quantized(prebuilt), target), stages.describe_check)
    with staged_output(out) as staging:
        verified = timer.run("verify", lambda: tflite.verify_tflite(checked, prebuilt, config, target, staging),
                             stages.describe_verify)
        files = timer.run("export", lambda: stages.export(verified, staging), stages.describe_export)
        report = write_tflite_reports(staging, config, target, prebuilt, verified, files, timer.seconds)
    timer.listener.stage("report", f"{out}/report.html, report.md, report.json")
    return BuildResult(out=out, report=report, files=files)


# The built-in default: the digits CNN trained from scratch, pruned to 75 % and its weights clustered to 16
# values a layer (4-bit table indices: as accurate on the digits, half the bytes of int8 nonzeros), for the
# Nano 33 BLE.
DEMO_SETTINGS = dict(model="demo", data="digits", board="nano33ble", out="build/demo", sparsity=0.75, clusters=16,
                     fine_tune_epochs=10, name="digits_cnn")


def demo_config(out: str = "build/demo", **overrides) -> BuildConfig:
    """DEMO_SETTINGS, with `overrides`."""
    from tinyprune.config import load_config

    return load_config(None, **{**DEMO_SETTINGS, "out": out, **overrides})

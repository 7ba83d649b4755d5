"""report.json: every figure of a build, per stage, in a versioned and documented schema.

Schema `tinyprune.report` version 1 (all sizes in bytes, accuracies as fractions):
- schema, schema_version, tinyprune_version
- config: the resolved BuildConfig; seed; versions: python and every library that shaped the bytes
- target: board (datasheet figures) and runtime (name, title, tflm_revision)
- model: name, source, parameters, macs, input_shape, task, classes
- data: name, train/test/calibration sample counts
- prune: method, kernel_weights (of the pruned model: fewer after compaction), nonzero_kernel_weights,
  sparsity, macs (of the pruned model; model.macs is the original's), details (per method: target and
  achieved sparsity per layer, units kept per layer, rounds, kept features, ...), history (per epoch)
- quantize: model_bytes, model_bytes_gzip, dense_model_bytes, dense_model_bytes_gzip, per_channel_dense,
  per_channel (False when clustered), qat (its details, or null), tflm_compression (sizes, the choice
  per tensor, the arena it costs and the TFLM build it needs, or null), passes (the graph rewrites that
  ran, in order: name, why, details)
- check: runtime and one entry per operator kind (count, resolver method, supported)
- accuracy: metric and one value per stage: float, pruned, litert_int8, tflm_int8 (the headline);
  confusion_float_vs_tflm: counts of (float model's class, TFLM's class), null for regression
- agreement: output bytes where LiteRT differs from TFLM over the whole test set
- memory: the host arena by search (arena_aligned16 = smallest multiple of 16 that runs, arena_exact =
  the 1-byte figure) and by emulation (host_emulated_*; emulation_matches_search), the target board's
  arena by emulation (board_*, with what it models; board_measured when --prove qemu measured it, and
  board_basis saying which of the two the firmware declares), the lower bound (largest sum of live tensors) and
  the planner's overhead above it, the margin and the arena the firmware declares (board + margin),
  the recorder's sections
- fit: flash and RAM items, needs and limits, fits; flash_basis and ram_basis say which figures are estimates
  (ram_basis: whether the RAM counts the call stack, measured under qemu, or not)
- firmware: the recommended backend, why it (with --backend auto) and why not the others, the files written
  (relative to the output folder)
- builds: every backend built, the recommended first, side by side: folder, flash and RAM needed (and what
  they rest on), stored_model (what the firmware keeps of the model: model_bytes, weight_bytes where its
  format keeps the weights apart, form; the report's model card shows the recommended one's), the arena,
  instructions per inference and output bytes differing from TFLM where a proof measured them (null where
  none ran), and what could not be proven here
- standalone (--backend standalone, else null): per-layer storage formats, bytes saved and MACs skipped;
  output bytes differing from TFLM on the host (whole test set) and under qemu; arm-none-eabi-size
  figures; instructions per inference and per MAC on the emulated core
- prove (--prove qemu with the TFLM backend, else null): the sketch built against the installed Arduino
  library (library, compiled, first_error, text/data/bss with the stand-in core), run on the board's qemu
  machine (sketch_output, sketch_passed), the probe's test inputs (samples, differing_bytes against the
  host's TFLM, output_bytes; kernel_difference: when they differ, the first operator the library is known to
  compute otherwise), the measured arena (arena_bytes: the smallest multiple of 4 that allocates and
  gives the same outputs; arena_used_bytes: TFLM's own count), instructions_per_inference, qemu_runs
- device: null after a build; `tinyprune flash` adds flash (tool, version, port, the board's boot INFO) and
  `tinyprune device-eval` adds evaluation (the board's INFO, inputs: "test set" or, for a model taken as it
  is without data, "self-test"; accuracy on the board and of the host's TFLM over the same samples, None
  without labels; output bytes differing per sample, latency per inference in microseconds and,
  for cycle-counting firmware, cycles; frames retried); see tinyprune/device/
- run: the only field that changes between identical builds (creation time, seconds per stage)
"""
from __future__ import annotations

import platform
import time
from importlib import metadata

SCHEMA = "tinyprune.report"
SCHEMA_VERSION = 1
LIBRARIES = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "tflite-micro",
             "numpy", "jinja2")
TOP_LEVEL_KEYS = ("schema", "schema_version", "tinyprune_version", "config", "seed", "versions", "target",
                  "model", "data", "prune", "quantize", "check", "accuracy", "agreement", "memory", "fit",
                  "firmware", "builds", "standalone", "prove", "device", "run")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_report(config, target, loaded, trained, pruned, verified, files, stage_seconds) -> dict:
    from dataclasses import asdict

    from tinyprune.sizes import gzip_size
    from tinyprune.prune.result import count_macs, kernel_weight_counts

    checked = verified.checked
    quantized = checked.quantized
    data = loaded.data
    nonzero, total = kernel_weight_counts(pruned.result.model)
    runtime = verified.builds[0].runtime  # the recommended firmware's
    return {
        **header_sections(config, target, verified),
        "model": {
            "name": loaded.name,
            "source": loaded.source,
            "parameters": int(trained.model.count_params()),
            "macs": int(count_macs(trained.model)),
            "input_shape": [int(d) for d in trained.model.input_shape[1:]],
            "task": data.task,
            "classes": data.classes,
        },
        "data": {
            "name": data.name,
            "train_samples": len(data.x_train),
            "test_samples": len(data.x_test),
            "calibration_samples": quantized.calibration_samples,
        },
        "prune": {
            "method": pruned.result.method,
            "kernel_weights": total,
            "nonzero_kernel_weights": nonzero,
            "sparsity": 1 - nonzero / total if total else 0.0,
            "macs": int(count_macs(pruned.result.model)),
            "details": pruned.result.details,
            "history": pruned.result.history,
        },
        "quantize": {
            "model_bytes": len(quantized.model_bytes),
            "model_bytes_gzip": gzip_size(quantized.model_bytes),
            "dense_model_bytes": len(quantized.dense_bytes),
            "dense_model_bytes_gzip": gzip_size(quantized.dense_bytes),
            "per_channel_dense": quantized.per_channel_dense,
            "per_channel": quantized.per_channel,
            "qat": quantized.qat,
            "tflm_compression": quantized.compression,
            "passes": [p.as_dict() for p in quantized.passes],
        },
        "check": {
            "runtime": runtime.name,
            "ops": [asdict(op) for op in checked.ops.ops],
        },
        "accuracy": {
            "metric": verified.scores[0].metric,
            "samples": verified.scores[0].samples,
            **{s.stage: s.value for s in verified.scores},
            "confusion_float_vs_tflm": verified.confusion,
        },
        "agreement": asdict(verified.agreement),
        "memory": memory_section(verified, config),
        "fit": fit_section(verified),
        **closing_sections(verified, files, stage_seconds),
    }


def memory_section(verified, config) -> dict:
    """The arena figures: host search and emulation, the board's emulation, what the firmware declares."""
    from dataclasses import asdict

    arena = verified.arena
    return {
        "arena_aligned16": arena.aligned16,
        "arena_exact": arena.exact,
        "arena_method": "smallest arena_size with which the tflite-micro interpreter (64-bit host) "
                        f"allocates and invokes, by bisection over {arena.probes} probes in separate processes",
        "host_emulated_aligned16": verified.host_arena.aligned16,
        "host_emulated_exact": verified.host_arena.exact,
        "emulation_matches_search": (verified.host_arena.aligned16, verified.host_arena.exact)
        == (arena.aligned16, arena.exact),
        "board_aligned16": (verified.memory.board_arena.aligned16 if verified.memory.board_arena_measured
                            else verified.memory.board_arena_bytes),
        "board_measured": verified.memory.board_arena_measured,
        "board_basis": verified.memory.board_arena_source or "emulated",
        "board_emulation_exact": verified.memory.board_arena.exact_model,
        "board_exact": verified.memory.board_arena.exact,
        "board_models": verified.memory.board_arena.models,
        "board_notes": list(verified.memory.board_arena.notes),
        "lower_bound": verified.host_arena.lower_bound,
        "planner_overhead": verified.host_arena.planner_overhead,
        "arena_margin": config.arena_margin,
        "arena_firmware": verified.memory.arena_firmware,
        "recorded": {name: asdict(section) for name, section in arena.recorded.sections.items()},
        "recorded_total": arena.recorded.total,
    }


def fit_section(verified) -> dict:
    return {
        "board": verified.fit.board,
        "flash_items": verified.fit.flash_items,
        "flash_basis": verified.fit.flash_basis,
        "flash_needed": verified.fit.flash_needed,
        "flash_limit": verified.fit.flash_limit,
        "ram_items": verified.fit.ram_items,
        "ram_basis": verified.fit.ram_basis,
        "ram_needed": verified.fit.ram_needed,
        "ram_limit": verified.fit.ram_limit,
        "fits": verified.fit.fits,
    }


def header_sections(config, target, verified) -> dict:
    """What every report opens with: the schema, the versions, the resolved configuration, the target (the
    board, and the runtime of the recommended firmware)."""
    from dataclasses import asdict

    from tinyprune import __version__

    runtime = verified.builds[0].runtime
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "tinyprune_version": __version__,
        "config": config.to_dict(),
        "seed": config.seed,
        "versions": library_versions(),
        "target": {
            "board": asdict(target.board),
            "runtime": {"name": runtime.name, "title": runtime.title, "tflm_revision": runtime.tflm_revision},
        },
    }


def closing_sections(verified, files, stage_seconds) -> dict:
    """What every report closes with: the firmware files and every backend's figures, the run's times."""
    return {
        **firmware_sections(verified, files),
        "device": None,
        "run": {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "stage_seconds": stage_seconds},
    }


def _build_figures(build) -> dict:
    """One backend's firmware for the side-by-side table."""
    return {"backend": build.backend.name, "title": build.backend.title, "folder": build.folder or ".",
            "why": build.why, "flash_needed": build.fit.flash_needed, "flash_basis": build.fit.flash_basis,
            "ram_needed": build.fit.ram_needed, "ram_basis": build.fit.ram_basis, "arena_firmware": build.memory.arena_firmware,
            "fits": build.fit.fits, "stored_model": build.backend.stored_model(build),
            **build.figures()}


def model_card(report: dict) -> tuple[int, str]:
    """The model's bytes as the recommended firmware stores them (its weights, where it keeps them apart
    from the rest) and what that figure is, the flatbuffer beside it: the model card of every page."""
    firmware = report["builds"][0]
    stored = firmware["stored_model"]
    flatbuffer = (report["quantize"] if "quantize" in report else report["model"])["model_bytes"]
    if stored["weight_bytes"] is None:
        return stored["model_bytes"], f"the TFLite flatbuffer the {firmware['backend']} firmware stores"
    return stored["weight_bytes"], (f"weights as the {firmware['backend']} firmware stores them "
                                    f"({stored['model_bytes']:,} B of constants in all); TFLite flatbuffer "
                                    f"{flatbuffer:,} B")


def firmware_sections(verified, files: list[str]) -> dict:
    """The firmware written (the recommended backend, why, why not the others), every backend's build side
    by side, and the proofs: the standalone C's, and the TFLM sketch's on qemu (--prove qemu)."""
    firmware = verified.builds[0]
    proofs = {build.backend.name: build.backend.report_figures(build.proof) for build in verified.builds}
    return {
        "firmware": {"files": files, "target_runtime": firmware.runtime.title, "backend": firmware.backend.name,
                     "why": firmware.why, "refused": verified.checked.refused},
        "builds": [_build_figures(build) for build in verified.builds],
        "standalone": proofs.get("standalone"),
        "prove": proofs.get("tflm"),
    }

"""The command line: arguments only. Every stage lives elsewhere; a TinypruneError becomes one line
on stderr and exit code 2, Ctrl-C exit code 130 with the output folder untouched."""
from __future__ import annotations

import argparse
import json
import sys
import traceback

from tinyprune.backends import backend_names
from tinyprune.config import option_names
from tinyprune.errors import TinypruneError


def _layer_sparsity(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LAYER=FRACTION (like dense_1=0.9)") from None


def _values(text: str) -> list:
    try:
        return [int(v) if v.strip().lstrip("-").isdigit() else float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not V1,V2,... (like 0,0.5,0.75)") from None


def _sweep_values(text: str) -> tuple[str, list]:
    option, sep, values = text.partition("=")
    if not sep or not option or not values:
        raise argparse.ArgumentTypeError(f"{text!r} is not OPTION=V1,V2,... (like sparsity=0.5,0.75)")
    return option.replace("-", "_"), _values(values)


def _output_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    noise = flags.add_mutually_exclusive_group()
    noise.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors (and --json)")
    noise.add_argument("--verbose", "-v", action="store_true",
                       help="show TensorFlow's own output and tracebacks")
    return flags


def _build_flags(demo: bool) -> argparse.ArgumentParser:
    """Options that override the pipeline file; None means 'not given'."""
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--out", "-o", help="output folder (written atomically)")
    flags.add_argument("--force", action="store_true", default=None, help="replace an existing output folder")
    flags.add_argument("--board", "-b", help="board id (see `tinyprune boards`) or a board .toml file")
    flags.add_argument("--sparsity", type=float, help="target sparsity of every prunable layer, in [0, 1)")
    flags.add_argument("--fine-tune-epochs", type=int, help="epochs of fine-tuning while pruning")
    flags.add_argument("--seed", type=int, help="seed of every random choice (same seed, same bytes)")
    flags.add_argument("--backend", choices=backend_names(),
                       help="firmware: tflm (the interpreter, default) or standalone (generated C, no interpreter)")
    flags.add_argument("--runtime", help="TFLM the firmware runs: arduino (Chirale_TensorFlowLite 2.0.0) or tflm")
    flags.add_argument("--prove", choices=("none", "qemu"),
                       help="qemu: compile the firmware for the board's core (the sketch against the installed "
                       "Arduino library) and run it on qemu; the measured arena goes into the firmware")
    flags.add_argument("--arduino-library", metavar="PATH",
                       help="the Arduino library's folder for --prove qemu (default: the IDE's libraries folder)")
    if demo:
        return flags
    flags.add_argument("--data", "-d", help=".npz with x_train, y_train, x_test, y_test [, x_calib], a folder of "
                       "images (one subfolder a class), a .csv table (with --target), or 'digits'")
    flags.add_argument("--target", metavar="COLUMN", help="the label column of a .csv table given as --data")
    flags.add_argument("--config", "-c", help="pipeline file (tinyprune.toml); flags override it")
    flags.add_argument("--method", help="pruning method: magnitude (default), structured, lottery, lassonet")
    flags.add_argument("--layer-sparsity", type=_layer_sparsity, action="append", metavar="LAYER=FRACTION",
                       help="sparsity of one layer (repeatable)")
    flags.add_argument("--schedule", choices=("polynomial", "constant"), help="TF-MOT pruning schedule")
    flags.add_argument("--m-by-n", metavar="M:N", help="magnitude: exactly M weights in every group of N (2:4)")
    flags.add_argument("--ratio", type=float, help="structured: share of units / filters removed per layer")
    flags.add_argument("--layer-ratio", type=_layer_sparsity, action="append", metavar="LAYER=FRACTION",
                       help="structured: share removed in one layer (repeatable)")
    flags.add_argument("--criterion", choices=("l1", "group_lasso"), help="structured: how units are ranked")
    flags.add_argument("--sensitivity-scan", action="store_true", default=None,
                       help="structured: prune robust layers harder, measured per layer")
    flags.add_argument("--rounds", type=int, help="lottery: prune-retrain rounds")
    flags.add_argument("--prune-fraction", type=float, help="lottery: share of remaining weights pruned a round")
    flags.add_argument("--rewind-epoch", type=int, help="lottery: rewind survivors to this epoch (0: original ticket)")
    flags.add_argument("--max-features", type=int, help="lassonet: keep at most this many input features")
    flags.add_argument("--lassonet-m", type=float, help="lassonet: hierarchy coefficient M")
    flags.add_argument("--train-epochs", type=int, help="train the float model first for this many epochs")
    flags.add_argument("--batch-size", type=int)
    flags.add_argument("--learning-rate", type=float)
    flags.add_argument("--calibration-samples", type=int, help="representative samples for int8 calibration")
    flags.add_argument("--clusters", type=int, help="cluster each kernel's weights into K values after pruning")
    flags.add_argument("--quantize", choices=("ptq", "qat"),
                       help="post-training (default) or quantization-aware fine-tuning keeping zeros and clusters")
    flags.add_argument("--qat-epochs", type=int)
    flags.add_argument("--tflm-compression", choices=("none", "lut", "prune", "auto"),
                       help="store weights in TFLM's compressed formats, decoded at run time (needs --runtime tflm)")
    flags.add_argument("--arena-margin", type=int, help="bytes added to the exact arena in the firmware")
    flags.add_argument("--ram-headroom", type=int, help="RAM kept for stack and runtime in the fit check")
    flags.add_argument("--name", help="model name in the firmware (a C identifier is derived from it)")
    return flags


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tinyprune", description="Fit Keras models onto microcontrollers: "
                                  "prune, quantize to int8, verify with TFLM, export firmware.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    output = _output_flags()
    demo = commands.add_parser("demo", parents=[output, _build_flags(demo=True)],
                               help="build the built-in digits CNN for the Nano 33 BLE Sense")
    demo.set_defaults(out="build/demo")
    build = commands.add_parser("build", parents=[output, _build_flags(demo=False)],
                                help="prune, quantize, verify and export a Keras model")
    build.add_argument("model", nargs="?", help=".keras/.h5 file (tf-keras or Keras 3), SavedModel folder, or an "
                       "int8 .tflite taken as it is (or set model in -c)")
    sweep = commands.add_parser("sweep", parents=[output, _build_flags(demo=False)],
                                help="build over a list of values and plot TFLM accuracy against flash")
    sweep.add_argument("model", nargs="?", help=".keras/.h5 file or SavedModel folder (default: the demo CNN)")
    sweep.add_argument("--over", required=True, type=_sweep_values, metavar="OPTION=V1,V2,...",
                       help="the option and its values, e.g. sparsity=0.5,0.75,0.9 or clusters=4,8,16")
    sweep.add_argument("--max-loss", type=float, default=0.01,
                       help="accuracy budget below the float model for the 'smallest within' mark (0.01 = 1 point)")
    sweep.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="run points in local processes (default) or on a Ray cluster (pip install ray)")
    sweep.add_argument("--workers", type=int, help="points run at once (default: the CPU count)")
    fit = commands.add_parser("fit", parents=[output, _build_flags(demo=False)],
                              help="search ratio, sparsity, clusters and backend for the smallest firmware within an "
                                   "accuracy budget")
    fit.add_argument("model", nargs="?", help=".keras/.h5 file or SavedModel folder (default: the demo CNN)")
    fit.add_argument("--max-loss", type=float, default=0.01,
                     help="points of TFLM accuracy the model may lose against the float model (0.01 = 1 point)")
    fit.add_argument("--max-builds", type=int, default=12, help="builds the search may run (default 12)")
    fit.add_argument("--ratio-values", type=_values, metavar="R1,R2,...",
                     help="structured ratios, gentlest first (default 0,0.25,0.5; 0 = no structured pruning)")
    fit.add_argument("--sparsity-values", type=_values, metavar="S1,S2,...",
                     help="sparsities, gentlest first (default 0,0.5,0.75,0.9)")
    fit.add_argument("--cluster-values", type=_values, metavar="K1,K2,...",
                     help="cluster counts, gentlest first (default 0,16,8,4; 0 = no clustering)")
    fit.add_argument("--backends", type=lambda text: tuple(text.split(",")), metavar="B1,B2",
                     help="backends, the grid searched on the first (default standalone,tflm)")
    fit.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="run builds in local processes (default) or on a Ray cluster (pip install ray)")
    fit.add_argument("--workers", type=int, help="builds run at once (default: the CPU count)")
    commands.add_parser("boards", parents=[output], help="list the board database")
    inspect = commands.add_parser("inspect", parents=[output],
                                  help="operators, tensors, arena and flash of an int8 .tflite (no TensorFlow)")
    inspect.add_argument("tflite", help="a full-integer int8 .tflite file")
    inspect.add_argument("--board", "-b", help="check the fit against this board")
    inspect.add_argument("--runtime", default="arduino", help="TFLM the firmware runs: arduino or tflm")
    prove = commands.add_parser("prove", parents=[output],
                                help="build a TFLM build's sketch against the installed Arduino library and run it "
                                     "on qemu: self-test, measured arena, instructions")
    prove.add_argument("out", help="the build's output folder (tinyprune build --out)")
    prove.add_argument("--arduino-library", metavar="PATH", help="the library's folder (default: the IDE's "
                       "libraries folder)")
    prove.add_argument("--samples", "-n", type=int, default=10, help="test inputs the firmware runs (default 10)")
    flash = commands.add_parser("flash", parents=[output],
                                help="build and upload the firmware (arduino-cli or PlatformIO), then read its self-test")
    flash.add_argument("out", help="the build's output folder (tinyprune build --out)")
    flash.add_argument("--port", "-p", required=True, help="the board's serial port (/dev/ttyACM0, COM3)")
    flash.add_argument("--tool", choices=("arduino-cli", "pio"), help="the uploader (default: arduino-cli if installed, else pio)")
    flash.add_argument("--timeout", type=float, default=10.0, help="seconds the board has to answer after the upload")
    device = commands.add_parser("device-eval", parents=[output],
                                 help="run the test set on the board over its serial port: accuracy, bytes "
                                      "differing from the host's TFLM, latency")
    device.add_argument("out", help="the build's output folder (tinyprune build --out)")
    device.add_argument("--port", "-p", required=True,
                        help="the board's serial port (/dev/ttyACM0, COM3), or qemu: the build's firmware on qemu")
    device.add_argument("--data", "-d", help="test set (default: the build's data set)")
    device.add_argument("--samples", "-n", type=int, help="only the first N test samples")
    device.add_argument("--timeout", type=float, default=10.0, help="seconds the board has to answer (default 10)")
    device.add_argument("--arduino-library", metavar="PATH",
                        help="--port qemu: the TFLM Arduino library's folder (default: where the IDE installs it)")
    return top


def _overrides(args: argparse.Namespace) -> dict:
    """The BuildConfig options given as flags (None where not given)."""
    values = {name: getattr(args, name, None) for name in option_names()}
    for name in ("layer_sparsity", "layer_ratio"):  # repeated LAYER=FRACTION flags
        if values[name] is not None:
            values[name] = dict(values[name])
    return values


def _board_table(boards) -> str:
    header = ("board", "MCU", "core", "MHz", "flash KiB", "RAM KiB", "Arduino FQBN", "qemu")
    rows = [(b.name, b.mcu, b.core, f"{b.clock_hz / 1e6:g}", f"{b.flash_bytes // 1024:,}",
             f"{b.ram_bytes // 1024:,}", b.arduino_fqbn, b.qemu_machine or "-") for b in boards]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in [header, *rows])


def _run(args: argparse.Namespace, out, err) -> int:
    from tinyprune import api
    from tinyprune.console import ConsoleListener

    if args.command == "boards":
        boards = api.boards()
        if args.json:
            from dataclasses import asdict

            out.write(json.dumps([asdict(b) for b in boards], indent=2) + "\n")
            return 0
        out.write(_board_table(boards) + "\n")
        return 0
    if args.command == "inspect":
        from tinyprune.inspection import format_inspection

        result = api.inspect(args.tflite, args.board, args.runtime)
        out.write((json.dumps(result, indent=2) if args.json else format_inspection(result)) + "\n")
        return 0
    listener = ConsoleListener(out, err, quiet=args.quiet or args.json, verbose=args.verbose)
    if args.command == "prove":
        from tinyprune.backends.tflm.qemu_proof import describe_prove_section

        section = api.prove(args.out, args.arduino_library, args.samples)
        listener.stage("prove", describe_prove_section(section))
        if args.json:
            out.write(json.dumps(section, indent=2) + "\n")
        return 0
    if args.command == "flash":
        from tinyprune.device.flash import describe_flash

        section = api.flash(args.out, args.port, args.tool, args.timeout)
        listener.stage("flash", describe_flash(section))
        if args.json:
            out.write(json.dumps(section, indent=2) + "\n")
        return 0
    if args.command == "device-eval":
        from tinyprune.device.evaluate import describe_evaluation

        section = api.device_eval(args.out, args.port, args.data, args.samples, args.timeout,
                                  lambda done, total: listener.progress("device", done, total, {}),
                                  args.arduino_library)
        listener.stage("device", describe_evaluation(section))
        if args.json:
            out.write(json.dumps(section, indent=2) + "\n")
        return 130 if section["stopped"] == "interrupted" else 0
    if args.command == "demo":
        result = api.demo(listener=listener, **{k: v for k, v in _overrides(args).items() if v is not None})
    elif args.command == "sweep":
        option, values = args.over
        overrides = {**_overrides(args), "out": args.out or "build/sweep"}
        sweep = api.sweep(option, values, args.config, args.max_loss, args.executor, args.workers, listener,
                          **overrides)
        if args.json:
            out.write(json.dumps({"points": sweep.points, "best": sweep.best, "files": sweep.files}, indent=2) + "\n")
        return 0
    elif args.command == "fit":
        searched = [f"--{name.replace('_', '-')}" for name in ("sparsity", "ratio", "clusters", "backend", "method")
                    if getattr(args, name) is not None]
        if searched:
            raise TinypruneError(f"fit searches {', '.join(searched)} itself",
                                 "give the values to try as --sparsity-values, --ratio-values, --cluster-values, "
                                 "--backends")
        ladders = {knob: values for knob, values in (("ratio", args.ratio_values), ("sparsity", args.sparsity_values),
                                                     ("clusters", args.cluster_values)) if values is not None}
        fit = api.fit(args.config, ladders, args.backends, args.max_loss, args.max_builds, args.executor,
                      args.workers, listener, **{**_overrides(args), "out": args.out or "build/fit"})
        if args.json:
            out.write(json.dumps({"tried": fit.tried, "skipped": fit.skipped, "chosen": fit.chosen,
                                  "chosen_build": fit.chosen_build, "files": fit.files}, indent=2) + "\n")
        return 0
    else:
        result = api.build(args.config, listener=listener, **_overrides(args))
    if args.json:
        out.write(json.dumps(result.report, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    from tinyprune.console import native_output_hidden

    args = parser().parse_args(argv)
    with native_output_hidden(hide=not args.verbose) as (out, err):
        try:
            return _run(args, out, err)
        except TinypruneError as exc:
            err.write(f"tinyprune: error: {exc}\n")
            return 2
        except KeyboardInterrupt:
            err.write("\ntinyprune: interrupted; the output folder was left as it was\n")
            return 130
        except Exception as exc:  # a bug, not bad input: one line unless --verbose
            if args.verbose:
                traceback.print_exc(file=err)
            else:
                err.write(f"tinyprune: internal error: {type(exc).__name__}: {exc} (run with --verbose "
                          "for the traceback, and please report it)\n")
            return 1


if __name__ == "__main__":
    sys.exit(main())

"""The command line: arguments only. Every stage lives elsewhere; a TinypruneError becomes one line
on stderr and exit code 2, Ctrl-C exit code 130 with the output folder untouched."""
from __future__ import annotations

import argparse
import json
import sys
import traceback

from dataclasses import MISSING, fields

from tinyprune.backends import backend_choices
from tinyprune.config import BuildConfig, option_names
from tinyprune.errors import TinypruneError
from tinyprune.pipeline import DEMO_SETTINGS


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


SWEEP_OUT = "build/sweep"
DEMO_OPTIONS = ("out", "force", "board", "sparsity", "clusters", "fine_tune_epochs", "seed", "backend", "runtime",
                "weight_storage", "prove", "arduino_library")
"""The options `tinyprune demo` takes; `build` and `sweep` take every option of BuildConfig."""


def _build_flags(demo: bool, defaults: dict | None = None) -> argparse.ArgumentParser:
    """A flag for each option of BuildConfig (tinyprune/config.py declares them, with their help and
    defaults); None means 'not given', so the pipeline file's value stands. `defaults` overrides the
    default shown in the help (the demo's output folder)."""
    flags = argparse.ArgumentParser(add_help=False)
    for option in fields(BuildConfig):
        if option.name == "model" or (demo and option.name not in DEMO_OPTIONS):
            continue
        meta, default = option.metadata, (defaults or {}).get(option.name, _default(option))
        names = [f"--{option.name.replace('_', '-')}"] + ([meta["short"]] if meta["short"] else [])
        shown = f" (default: {default})" if default not in ("", {}, False) else ""
        settings = {"help": meta["help"] + shown, "metavar": meta["metavar"]}
        if isinstance(default, bool):
            settings = {"help": meta["help"], "action": "store_true", "default": None}
        elif isinstance(default, dict):
            settings.update(type=_layer_sparsity, action="append")
        elif meta["choices"]:
            settings.update(choices=meta["choices"], metavar=None)
        else:
            settings["type"] = type(default)
        flags.add_argument(*names, **settings)
    if not demo:
        flags.add_argument("--config", "-c", help="pipeline file (tinyprune.toml); flags override it")
    return flags


def _default(option):
    return option.default_factory() if option.default is MISSING else option.default


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line gets one line (as a TinypruneError does) instead of the whole
    usage block before the error, which buries the error under forty options."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} — fix: see `{self.prog} --help`\n")


def parser() -> argparse.ArgumentParser:
    top = _OneLineParser(prog="tinyprune", description="Fit Keras models onto microcontrollers: "
                                  "prune, quantize to int8, verify with TFLM, export firmware.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    output = _output_flags()
    demo = commands.add_parser("demo", parents=[output, _build_flags(demo=True, defaults=DEMO_SETTINGS)],
                               help="build the built-in digits CNN for the Nano 33 BLE Sense")
    demo.set_defaults(out="build/demo")
    build = commands.add_parser("build", parents=[output, _build_flags(demo=False)],
                                help="prune, quantize, verify and export a Keras model")
    build.add_argument("model", nargs="?", help=".keras/.h5 file (tf-keras or Keras 3), SavedModel folder, or an "
                       "int8 .tflite taken as it is (or set model in -c)")
    sweep = commands.add_parser("sweep", parents=[output, _build_flags(demo=False, defaults={"out": SWEEP_OUT})],
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
                     help="structured ratios, gentlest first (default 0,0.25,0.375,0.5; 0 = no structured pruning)")
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
                                  help="operators, tensors, arena and flash of an int8 .tflite (no TensorFlow); "
                                       "with --board, the firmware build would choose and its fit (exit code 1 "
                                       "when it cannot run or does not fit)",
                                  epilog="exit codes: 0 it runs and fits (without --board: the runtime runs it), "
                                         "1 no firmware runs it on the board or it does not fit (without --board: "
                                         "the runtime cannot run it), 2 bad input")
    inspect.add_argument("tflite", help="a full-integer int8 .tflite file")
    inspect.add_argument("--board", "-b", help="choose the firmware for this board and check its fit")
    inspect.add_argument("--runtime", default=BuildConfig.runtime,
                         help=f"TFLM the firmware runs: arduino or tflm (default: {BuildConfig.runtime})")
    inspect.add_argument("--backend", default=BuildConfig.backend, choices=backend_choices(),
                         help=f"with --board: the firmware, chosen as build chooses it (default: {BuildConfig.backend})")
    prove = commands.add_parser("prove", parents=[output],
                                help="build a build's TFLM sketch (the firmware, or the one beside it for comparison) "
                                     "against the installed Arduino library and run it on qemu: self-test, "
                                     "measured arena, instructions")
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
    device.add_argument("--data", "-d", help="test set (default: the build's data set; a model built without "
                                             "data: its self-test inputs, no accuracy)")
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


def _board_table(boards, support: dict[str, dict]) -> str:
    """The board database, each board with the backends that build for it; then why not the others."""
    header = ("board", "MCU", "core", "MHz", "flash KiB", "RAM KiB", "Arduino FQBN", "qemu", "builds with")
    rows = [(b.name, b.mcu, b.core, f"{b.clock_hz / 1e6:g}", f"{b.flash_bytes // 1024:,}",
             f"{b.ram_bytes // 1024:,}", b.arduino_fqbn, b.qemu_machine or "-",
             ", ".join(label for label, why in support[b.name].items() if why is None)) for b in boards]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    refusals = [f"  {name}: not {label}: {why}" for name, labels in support.items()
                for label, why in labels.items() if why is not None]
    return "\n".join(lines + (["", "why not:", *refusals] if refusals else []))


def _run(args: argparse.Namespace, out, err, ctrl_c=None) -> int:
    from tinyprune import api
    from tinyprune.console import ConsoleListener

    if args.command == "boards":
        boards = api.boards()
        support = {b.name: api.board_support(b) for b in boards}
        if args.json:
            from dataclasses import asdict

            out.write(json.dumps([{**asdict(b), "backends": support[b.name]} for b in boards], indent=2) + "\n")
            return 0
        out.write(_board_table(boards, support) + "\n")
        return 0
    if args.command == "inspect":
        from tinyprune.inspection import exit_code, format_inspection

        result = api.inspect(args.tflite, args.board, args.runtime, args.backend)
        out.write((json.dumps(result, indent=2) if args.json else format_inspection(result)) + "\n")
        return exit_code(result)  # a firmware's CI gates on it
    listener = ConsoleListener(out, err, quiet=args.quiet or args.json, verbose=args.verbose, ctrl_c=ctrl_c)
    if args.command == "prove":
        from tinyprune.backends.tflm.qemu_proof import describe_prove_build

        section = api.prove(args.out, args.arduino_library, args.samples)
        listener.stage("prove", describe_prove_build(args.out, section))
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
        overrides = {**_overrides(args), "out": args.out or SWEEP_OUT}
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
        if args.model is None and args.config is None:
            raise TinypruneError("tinyprune build needs a model",
                                 "give one (tinyprune build model.keras, or `demo` for the built-in model on --data) "
                                 "or a pipeline file that names it (-c tinyprune.toml); `tinyprune demo` builds "
                                 "the built-in digits CNN")
        result = api.build(args.config, listener=listener, **_overrides(args))
    if args.json:
        out.write(json.dumps(result.report, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    from tinyprune.console import CtrlC, native_output_hidden

    args = parser().parse_args(argv)
    with native_output_hidden(hide=not args.verbose) as (out, err), CtrlC().installed() as ctrl_c:
        try:
            return _run(args, out, err, ctrl_c)
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

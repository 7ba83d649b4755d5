"""On-device figures without a board: the demo built per backend, then its whole test set run through
`tinyprune device-eval --port qemu` (the firmware on the board's qemu machine, over its UART and the
serial protocol). Prints accuracy on the "board" beside the host TFLM's, output bytes differing and
latency per inference (qemu's virtual time: -icount shift=0, one instruction a nanosecond).
Run with `python bench/device.py [--quick] [--out FOLDER] [--arduino-library PATH]` (FOLDER keeps the builds)."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinyprune.console import native_output_hidden  # noqa: E402
from tinyprune.device.evaluate import device_eval  # noqa: E402
from tinyprune.pipeline import build, demo_config  # noqa: E402

BACKENDS = ("standalone", "tflm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer epochs (for a smoke run)")
    parser.add_argument("--out", help="keep the builds in this folder")
    parser.add_argument("--arduino-library", help="the TFLM Arduino library's folder (default: the IDE's)")
    args = parser.parse_args()
    epochs = {"train_epochs": 3, "fine_tune_epochs": 2} if args.quick else {}
    header = ("backend", "samples", "board acc", "host TFLM acc", "bytes differing", "latency us min/med/max",
              "cycles (median)")
    rows = []
    with native_output_hidden(hide=True) as (out, _), tempfile.TemporaryDirectory() as scratch:
        for backend in BACKENDS:
            folder = Path(args.out or scratch) / f"demo_{backend}"
            build(demo_config(str(folder), backend=backend, force=True, **epochs))
            e = device_eval(folder, "qemu", arduino_library=args.arduino_library)
            latency = e["latency_us"]
            rows.append((backend, e["samples"], f"{e['device']:.4f}", f"{e['host_tflm']:.4f}",
                         f"{e['differing_bytes']} of {e['total_bytes']}",
                         f"{latency['min']} / {latency['median']} / {latency['max']}",
                         f"{e['cycles']['median']:,}" if "cycles" in e else "-"))
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            out.write("  ".join(str(c).rjust(w) for c, w in zip(row, widths)) + "\n")


if __name__ == "__main__":
    main()

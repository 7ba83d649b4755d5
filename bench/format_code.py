"""The code bytes of each weight format's path in each weighted standalone kernel (arm-none-eabi-gcc -O2,
the board's flags), against the figures formats.KERNEL_CODE_BYTES states and codegen weighs when it
decides which formats a model's kernels compile. Run with `python bench/format_code.py [--board B]`."""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinyprune.boards import load_board  # noqa: E402
from tinyprune.backends.standalone.cortex_m import format_code_bytes  # noqa: E402
from tinyprune.backends.standalone.formats import KERNEL_CODE_BYTES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", default="nano33ble")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        measured = format_code_bytes(load_board(args.board), work)
    print(f"{'kernel':<22}{'format':<14}{'measured B':>12}{'stated B':>10}")
    for kernel, sizes in measured.items():
        for form, size in sizes.items():
            print(f"{kernel:<22}{form or '(no format)':<14}{size:>12,}{KERNEL_CODE_BYTES[kernel][form]:>10,}")


if __name__ == "__main__":
    main()

"""The protocol's C side (firmware_templates/device/), written beside every backend's firmware: the
TFLM sketch, the standalone sketch and the bare-metal Cortex-M firmware all link the same tp_link.c."""
from __future__ import annotations

from pathlib import Path

from tinyprune.device import protocol
from tinyprune.backends.templates import render

LINK_FILES = (("device/tp_link.h.j2", "tp_link.h"), ("device/tp_link.c.j2", "tp_link.c"))


def link_buffer_bytes(input_size: int, output_size: int) -> int:
    """The RAM the protocol's sketch side declares that grows with the model: the frame being received
    (tp_link_receiver's payload: the sequence number and an input) and the output it answers with
    (device/arduino_link.cpp.j2's protocolOutput)."""
    return (2 + input_size) + output_size


def write_link_sources(folder: str | Path, input_size: int) -> list[Path]:
    """tp_link.h and tp_link.c in `folder`, sized for a model with `input_size` int8 inputs."""
    if 2 + input_size > protocol.MAX_PAYLOAD:
        raise ValueError(f"an input of {input_size} bytes does not fit one frame ({protocol.MAX_PAYLOAD - 2} at most)")
    folder = Path(folder)
    written = []
    for template, name in LINK_FILES:
        path = folder / name
        path.write_text(render(template, protocol=protocol, input_size=input_size), encoding="utf-8")
        written.append(path)
    return written

"""Choosing, per tensor, how it is stored: as it is, as a LUT, or pruned.

Each DECODE costs flash of its own (two tensors, the operator, the 16-byte header, alignment padding;
one DECODE per consuming operator), so an encoding is judged by what it really changes in the file:
the flatbuffer is written with that one tensor encoded and compared with the file without it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tflite_micro.tensorflow.lite.micro.compression import model_editor, spec

from tinyprune.compress.assemble import PLUGINS, Candidate, candidates, compress_tensors
from tinyprune.compress.lut import lut_method
from tinyprune.errors import TinypruneError

# --tflm-compression value -> the encodings it may use
MODES: dict[str, tuple[str, ...]] = {"none": (), "lut": ("lut",), "prune": ("pruned",), "auto": ("lut", "pruned")}


@dataclass
class TensorChoice:
    """How one constant tensor is stored, and what each encoding would change in the file (bytes)."""

    index: int
    name: str
    raw_bytes: int
    encoding: str = "as is"
    detail: str = ""  # e.g. "4-bit indices, per channel (axis 0)" for a LUT
    file_delta: dict[str, int] = field(default_factory=dict)  # encoding -> file size change
    notes: list[str] = field(default_factory=list)  # why an encoding was not possible

    def as_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "raw_bytes": self.raw_bytes, "encoding": self.encoding,
                "detail": self.detail, "file_delta": dict(self.file_delta), "notes": list(self.notes)}


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise TinypruneError(f"unknown TFLM compression {mode!r}",
                             f"use one of: {', '.join(MODES)}")


def encoding_methods(tensor: model_editor.Tensor, allowed: tuple[str, ...]) -> tuple[dict, list[str]]:
    """The spec method of each allowed encoding this tensor can take, and why the others cannot."""
    methods: dict[str, spec.CompressionMethod] = {}
    notes: list[str] = []
    if "lut" in allowed:
        method = lut_method(tensor)
        if isinstance(method, str):
            notes.append(f"lut: {method}")
        else:
            methods["lut"] = method
    if "pruned" in allowed:
        methods["pruned"] = spec.PruningCompression()
    return methods, notes


def choose(model_bytes: bytes, mode: str) -> tuple[dict[int, spec.CompressionMethod], list[TensorChoice]]:
    """Per candidate tensor, the encoding allowed by `mode` that shrinks the file most (none if none does)."""
    check_mode(mode)
    model = model_editor.read(model_bytes)
    uncompressed = len(compress_tensors(model_bytes, {}))
    chosen: dict[int, spec.CompressionMethod] = {}
    choices = []
    for candidate in candidates(model):
        choice, method = _choose_one(model_bytes, model.subgraphs[0].tensors[candidate.index], candidate,
                                     MODES[mode], uncompressed)
        if method is not None:
            chosen[candidate.index] = method
        choices.append(choice)
    return chosen, choices


def _choose_one(model_bytes: bytes, tensor: model_editor.Tensor, candidate: Candidate, allowed: tuple[str, ...],
                uncompressed: int) -> tuple[TensorChoice, spec.CompressionMethod | None]:
    choice = TensorChoice(candidate.index, candidate.name, candidate.nbytes)
    methods, choice.notes = encoding_methods(tensor, allowed)
    payloads = {}
    for encoding, method in methods.items():
        result = PLUGINS[type(method)].compress(tensor, method)
        payloads[encoding] = len(result.encoded_data) + len(result.ancillary_data)
        if payloads[encoding] >= candidate.nbytes:
            choice.notes.append(f"{encoding}: {payloads[encoding]} B encoded, not smaller")
            continue
        choice.file_delta[encoding] = len(compress_tensors(model_bytes, {candidate.index: method})) - uncompressed
    shrinking = {encoding: delta for encoding, delta in choice.file_delta.items() if delta < 0}
    if not shrinking:
        return choice, None
    choice.encoding = min(shrinking, key=lambda encoding: (shrinking[encoding], encoding))
    method = methods[choice.encoding]
    if isinstance(method, spec.LookUpTableCompression):
        mode = f"per channel (axis {method.mode.axis})" if isinstance(method.mode, spec.PerChannel) else "per tensor"
        choice.detail = f"{method.index_bitwidth}-bit indices, {mode}"
    else:
        choice.detail = f"bitmask and kept values, {payloads[choice.encoding]} B"
    return choice, method

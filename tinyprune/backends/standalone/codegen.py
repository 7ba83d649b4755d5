"""The standalone C backend: an int8 TFLite graph -> model.c / model.h plus the kernels it calls.

No flatbuffer, interpreter or malloc on the device: the weights are `const` arrays (each weighted layer
in its smallest storage form, see formats.py), every activation has a fixed offset in one static arena
(plan.py), and `model_invoke(input, output)` calls the kernels in order. RESHAPE costs nothing (the
output names the input's bytes) and element-wise ops write over an input that dies with them."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tinyprune.errors import TinypruneError
from tinyprune.backends.standalone.contracts import check_steps
from tinyprune.backends.standalone.formats import (FAST_FORMATS, FORMATS, WeightEncoding, encodings,
                                                    formats_worth_compiling, no_slower_than_dense)
from tinyprune.backends.standalone.ops import LOWERINGS, STANDALONE_OPS, LayerReport, Step, gemm_widening
from tinyprune.backends.standalone.plan import ArenaPlan, BufferRequest, plan_arena
from tinyprune.backends.templates import c_identifier, render
from tinyprune.graph.ir import Graph, Operator, Tensor
from tinyprune.resources import templates_dir

KERNEL_DIR = "standalone/kernels"
ELEMENT_BYTES = {"int8_t": 1, "uint8_t": 1, "uint16_t": 2, "int32_t": 4, "uint32_t": 4}


def tap_bytes(steps: list[Step]) -> int:
    """The bytes of a convolution tap offset (C type tp_tap, tp_config.h's TP_TAP_BYTES): 1 when every tap
    table of the model fits uint8_t, else 2."""
    largest = max((max(array.values) for step in steps for array in step.arrays if array.ctype == "tp_tap"),
                  default=0)
    return 1 if largest < 256 else 2


def array_bytes(steps: list[Step]) -> int:
    """The bytes of every const array the steps define."""
    sizes = {**ELEMENT_BYTES, "tp_tap": tap_bytes(steps)}
    return sum(sizes[array.ctype] * len(array.values) for step in steps for array in step.arrays)
SHARED_HEADERS = ("tp_arith.h", "tp_fixedpoint.h", "tp_kernels.h", "tp_simd.h", "tp_weights.h")
# kernels defined in a header model.c includes (KERNEL.h, not KERNEL.c): each call inlined with its constant
# parameters, where that makes the code smaller than one shared function plus a parameter struct a call
INLINE_KERNELS = ("tp_pad",)


@dataclass(eq=False)
class Buffer:
    """Bytes an activation lives in: the caller's input or output, or a slice of the arena."""

    key: int
    size: int
    binding: str = ""  # "input", "output", "none" (no buffer: NULL), or "" for the arena
    offset: int = 0


@dataclass
class StandaloneModel:
    name: str
    out_dir: Path
    files: list[Path]
    sources: list[Path]  # the .c files to compile
    layers: list[LayerReport]
    ops: list[str]
    arena_bytes: int
    arena_lower_bound: int  # the largest sum of activation bytes alive at one step (plan.py)
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_quantization: tuple[float, int]
    output_quantization: tuple[float, int]
    constant_bytes: int  # every const array the model defines (weights, biases, multipliers, tables)
    steps: list[Step]  # the kernel calls model_invoke() makes, in order

    @property
    def input_size(self) -> int:
        return int(_product(self.input_shape))

    @property
    def output_size(self) -> int:
        return int(_product(self.output_shape))

    @property
    def weight_bytes_dense(self) -> int:
        return sum(layer.dense_bytes for layer in self.layers)

    @property
    def weight_bytes_stored(self) -> int:
        return sum(layer.stored_bytes for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def macs_skipped(self) -> int:
        return sum(layer.macs_skipped for layer in self.layers)

    def summary(self) -> dict:
        """Plain figures for the report: totals, and per weighted layer its storage form, the bytes it
        saves against dense int8 and the multiplications its zero weights skip."""
        return {
            "ops": list(self.ops), "arena_bytes": self.arena_bytes, "arena_lower_bound": self.arena_lower_bound,
            "constant_bytes": self.constant_bytes,
            "weight_bytes_dense": self.weight_bytes_dense, "weight_bytes_stored": self.weight_bytes_stored,
            "macs": self.macs, "macs_skipped": self.macs_skipped,
            "layers": [{"layer": layer.layer, "op": layer.op, "format": layer.format,
                        "dense_bytes": layer.dense_bytes, "stored_bytes": layer.stored_bytes,
                        "bytes_saved": layer.bytes_saved, "macs": layer.macs, "macs_skipped": layer.macs_skipped,
                        "fused": layer.fused}
                       for layer in self.layers],
        }


def _product(values) -> int:
    result = 1
    for value in values:
        result *= value
    return result


class Lowering:
    """What an op's lowering (ops.py) sees: tensors, buffers, unique names, and where steps go."""

    def __init__(self, graph: Graph, formats: tuple[str, ...], wide_gemms: frozenset[str] = frozenset(),
                 per_kernel: dict[str, tuple[str, ...]] | None = None, convolutions_in_place: bool = True,
                 speed_first: bool = False):
        self.graph = graph
        self.speed_first = speed_first  # a sparse format only where it is estimated faster than dense (formats.py)
        self.convolutions_in_place = convolutions_in_place  # pruned pointwise ones may write over their input
        self.formats = formats
        self.per_kernel = per_kernel or {}  # kernel -> the formats it may use (formats.formats_worth_compiling)
        self.candidates: dict[tuple[str, str], dict[str, int]] = {}  # (kernel, layer) -> {format: stored bytes}
        self.wide_gemms = wide_gemms  # tp_gemm steps (by name) that may take more than two columns a pass
        self.steps: list[Step] = []
        self.layers: list[LayerReport] = []
        self._buffers: dict[int, Buffer] = {}
        self._names: set[str] = set()
        self._next_scratch = -1
        self.fused: set[int] = set()  # operators another one's kernel computes (a pool after its convolution)
        self._readers: dict[int, list[Operator]] = {}
        for op in graph.operators:
            for index in set(op.inputs):
                self._readers.setdefault(index, []).append(op)

    def tensor(self, index: int) -> Tensor:
        return self.graph.tensors[index]

    def layer(self, op: Operator) -> str:
        return self.graph.producer_layer(op)

    def name(self, op: Operator, suffix: str = "") -> str:
        base = f"{self.layer(op)}_{op.opcode.lower()}" + (f"_{suffix}" if suffix else "")
        identifier = c_identifier(base, self._names)
        self._names.add(identifier)
        return identifier

    def readers(self, index: int) -> list[Operator]:
        """The operators that read tensor `index`."""
        return self._readers.get(index, [])

    def fuse(self, op: Operator) -> None:
        """`op` is computed inside another operator's step: it gets no step of its own."""
        self.fused.add(op.index)

    def buffer(self, index: int) -> Buffer:
        if index not in self._buffers:
            tensor = self.tensor(index)
            binding = ("input" if index in self.graph.inputs else
                       "output" if index in self.graph.outputs else "")
            self._buffers[index] = Buffer(index, tensor.nbytes, binding)
        return self._buffers[index]

    def scratch(self, size: int) -> Buffer:
        self._next_scratch -= 1
        return Buffer(self._next_scratch, size)

    def nothing(self) -> Buffer:
        """No buffer: a kernel argument passed as NULL."""
        self._next_scratch -= 1
        return Buffer(self._next_scratch, 0, "none")

    def alias(self, output: int, source: int) -> bool:
        """Let tensor `output` name `source`'s bytes; False when one is the graph input, the other its output."""
        existing = self.buffer(source)
        wants_output = output in self.graph.outputs
        if wants_output and existing.binding == "input":
            return False
        if wants_output:
            existing.binding = "output"
        self._buffers[output] = existing
        return True

    def encode(self, op: Operator, kernel: str, matrix, formats: tuple[str, ...] | None = None) -> WeightEncoding:
        """The smallest encoding of a layer's weights among `formats` (default: the build's) that `kernel`
        may use; every candidate's size is kept for formats_worth_compiling."""
        allowed = tuple(f for f in (formats or self.formats) if f in self.per_kernel.get(kernel, FORMATS))
        options = encodings(matrix, allowed, fast_walks=self.speed_first)
        if self.speed_first:
            options = no_slower_than_dense(kernel, matrix, options)
        self.candidates[(kernel, self.layer(op))] = {name: e.stored_bytes for name, e in options.items()}
        return min(options.values(), key=lambda encoding: encoding.stored_bytes)

    def add(self, step: Step, report: LayerReport | None = None) -> None:
        self.steps.append(step)
        if report is not None:
            step.macs = report.macs
            self.layers.append(report)


def check_supported(graph: Graph) -> None:
    """Raise naming every op (and a layer using it) that the standalone backend cannot compile."""
    missing: dict[str, str] = {}
    for op in graph.operators:
        if op.opcode not in LOWERINGS:
            missing.setdefault(op.opcode, graph.producer_layer(op))
    if missing:
        listed = ", ".join(f"{opcode} (layer {layer!r})" for opcode, layer in sorted(missing.items()))
        raise TinypruneError(
            f"the standalone backend has no kernel for {listed}",
            f"use --backend tflm, or replace those layers; the standalone ops are: {', '.join(STANDALONE_OPS)}")
    for tensor in graph.input_tensors() + graph.output_tensors():
        if tensor.dtype != "int8" or tensor.quantization is None:
            raise TinypruneError(f"model tensor {tensor.name!r} is {tensor.dtype}, not quantized int8",
                                 "convert with full-integer quantization (int8 input and output)")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TinypruneError(f"the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs",
                             "the standalone backend compiles models with one input and one output")


def _write_in_place(steps: list[Step]) -> None:
    """A step that may (element-wise ops, tp_gemm) writes over an input it is the last reader of: not the
    caller's input, not a scratch buffer, at least as large as the output (exactly, for the caller's output)."""
    for position, step in enumerate(steps):
        if not step.in_place:
            continue
        later = steps[position + 1:]
        for candidate in step.inputs:
            if (candidate.key < 0 or candidate.binding == "input" or candidate.size < step.output.size
                    or (step.output.binding and candidate.size != step.output.size)
                    or (candidate.binding and step.output.binding)
                    or any(candidate in s.inputs or candidate is s.output for s in later)):
                continue
            replaced = step.output
            candidate.binding = candidate.binding or replaced.binding
            for s in [step] + later:
                s.inputs = [candidate if b is replaced else b for b in s.inputs]
                s.output = candidate if s.output is replaced else s.output
            break


def _drop_idle_staging(steps: list[Step]) -> None:
    """A step whose staging scratch (its last input) serves only to write over its input gets none where
    it does not: no arena bytes for it."""
    for step in steps:
        if step.staging and step.output not in step.inputs[:-1]:
            step.inputs[-1] = Buffer(step.inputs[-1].key, 0, "none")


def _share_constants(steps: list[Step]) -> None:
    """Constant arrays of the same type and values (per-tensor multipliers and shifts, equal biases or
    tables) are defined once: later steps name the first one."""
    first: dict[tuple, str] = {}
    for step in steps:
        renamed: dict[str, str] = {}
        kept = []
        for array in step.arrays:
            name = first.setdefault((array.ctype, tuple(array.values)), array.name)
            if name == array.name:
                kept.append(array)
            else:
                renamed[array.name] = name
        step.arrays = kept
        step.fields = [(path, renamed.get(value, value) if isinstance(value, str) else value)
                       for path, value in step.fields]


def _spans(steps: list[Step]) -> list[list]:
    """[buffer, first step, last step] of every arena buffer, in order of first use."""
    spans: list[list] = []
    for position, step in enumerate(steps):
        for buffer in step.inputs + [step.output]:
            if not buffer.binding:
                span = next((s for s in spans if s[0] is buffer), None)
                if span is None:
                    spans.append([buffer, position, position])
                else:
                    span[2] = position
    return spans


def _place(steps: list[Step]) -> ArenaPlan:
    """Give every arena buffer its offset; the plan (arena size and its lower bound)."""
    spans = _spans(steps)
    plan = plan_arena([BufferRequest(key, buffer.size, first, last)
                       for key, (buffer, first, last) in enumerate(spans)])
    for key, (buffer, _, _) in enumerate(spans):
        buffer.offset = plan.offsets[key]
    return plan


@dataclass
class Lowered:
    """The graph as kernel calls with every arena buffer placed: what model.c is rendered from."""

    graph: Graph
    steps: list[Step]
    layers: list[LayerReport]
    plan: ArenaPlan
    candidates: dict = field(default_factory=dict)  # (kernel, layer) -> {format: stored bytes}

    @property
    def arena_bytes(self) -> int:
        return self.plan.size

    @property
    def constant_bytes(self) -> int:
        """Every const array model.c will define (weights, biases, multipliers, tables)."""
        return array_bytes(self.steps)


def lower(graph: Graph, formats: tuple[str, ...] = FAST_FORMATS, weigh_code: bool = True,
          per_kernel: dict[str, tuple[str, ...]] | None = None) -> Lowered:
    """Each operator as kernel calls, each weighted layer in its smallest allowed storage form
    (`formats`: ("dense",) for an uncompressed build), the activations planned into one arena."""
    check_supported(graph)
    # each weighted kernel keeps only the formats that save more than their code costs (formats.py;
    # weigh_code=False: every layer its smallest allowed format, whatever the code; `per_kernel`: the
    # formats each weighted kernel may use, as given, e.g. {"tp_conv2d": ("dense", "bitmask")} for a bench)
    # `fast` storage (the default, FAST_FORMATS chosen as the build's) stores a layer sparse only where that
    # is estimated to take fewer instructions than dense (formats.KERNEL_INSTRUCTIONS)
    speed_first = tuple(formats) == FAST_FORMATS and weigh_code and per_kernel is None
    if per_kernel is None:
        per_kernel = formats_worth_compiling(
            _lower(graph, tuple(formats), frozenset(), speed_first=speed_first).candidates) if weigh_code else {}
    lean = _lower(graph, tuple(formats), frozenset(), per_kernel, speed_first=speed_first)
    # a pruned pointwise convolution written over its input stages its outputs (more instructions): kept
    # only where that shrinks the arena
    in_place = any(step.staging and step.inputs[-1].binding != "none" for step in lean.steps)
    if in_place:
        plain = _lower(graph, tuple(formats), frozenset(), per_kernel, False, speed_first)
        in_place = plain.arena_bytes > lean.arena_bytes
        lean = lean if in_place else plain
    # wider GEMM passes need more scratch: widen the steps where the bytes alive beside them leave room
    # for it within the arena, and keep the result only if the arena stayed as it was
    alive = [0] * len(lean.steps)
    for buffer, first, last in _spans(lean.steps):
        for position in range(first, last + 1):
            alive[position] += -(-buffer.size // 4) * 4
    wide = frozenset(step.name for step, bytes_alive in zip(lean.steps, alive)
                     if step.kernel == "tp_gemm" and bytes_alive + gemm_widening(step) <= lean.arena_bytes)
    if not wide:
        return lean
    fast = _lower(graph, tuple(formats), wide, per_kernel, in_place, speed_first)
    return fast if fast.arena_bytes <= lean.arena_bytes else lean


def _lower(graph: Graph, formats: tuple[str, ...], wide_gemms: frozenset[str],
           per_kernel: dict[str, tuple[str, ...]] | None = None, convolutions_in_place: bool = True,
           speed_first: bool = False) -> Lowered:
    lowering = Lowering(graph, formats, wide_gemms, per_kernel, convolutions_in_place, speed_first)
    for op in graph.operators:
        if op.index not in lowering.fused:
            LOWERINGS[op.opcode](lowering, op)
    _write_in_place(lowering.steps)
    _drop_idle_staging(lowering.steps)
    check_steps(lowering.steps)  # before sharing: each step still holds the arrays its fields name
    _share_constants(lowering.steps)
    return Lowered(graph, lowering.steps, lowering.layers, _place(lowering.steps), lowering.candidates)


def generate_standalone(graph: Graph, out_dir: str | Path, name: str = "model",
                        formats: tuple[str, ...] = FAST_FORMATS, weigh_code: bool = True,
                        per_kernel: dict[str, tuple[str, ...]] | None = None) -> StandaloneModel:
    """Write model.c, model.h and the kernels `graph` needs into `out_dir`."""
    return write_standalone(lower(graph, formats, weigh_code, per_kernel), out_dir, name)


def kernel_formats(steps: list[Step]) -> list[tuple[str, list[str]]]:
    """(macro, format enums) per weighted kernel, e.g. ("TP_CONV2D_FORMATS", ["TP_BITMASK"]): the formats
    its steps store weights in, the only ones tp_weights.h compiles code for."""
    found: dict[str, set[str]] = {}
    for step in steps:
        form = dict(step.fields).get("weights.format")
        if form is not None:
            found.setdefault(f"{kernel_macro(step.kernel)}_FORMATS", set()).add(form)
    return [(macro, sorted(forms)) for macro, forms in sorted(found.items())]


def kernel_paths(steps: list[Step]) -> list[tuple[str, int]]:
    """(macro, 0 or 1) for the convolution kernels' paths, e.g. ("TP_CONV2D_POOLED", 1): whether a step of
    the kernel has a fused pool, whether one has none, and whether a tp_conv2d writes over its input; and
    which walks of table-indexed bitmask rows tp_fully_connected takes; a path no step takes is not compiled.
    Whether the convolutions' and the fully connected layers' requantization takes the short form.
    Also the largest fused pool window of a tp_conv2d, which sizes its window table."""
    paths = []
    arrays = {array.name: array.values for step in steps for array in step.arrays}
    for kernel in ("tp_conv2d", "tp_gemm"):
        pooled = [bool(dict(step.fields).get("pool_h")) for step in steps if step.kernel == kernel]
        paths += [(f"{kernel_macro(kernel)}_POOLED", int(any(pooled))),
                  (f"{kernel_macro(kernel)}_PLAIN", int(not all(pooled)))]
    # a pointwise convolution that writes over its input (its staging scratch kept)
    paths.append(("TP_CONV2D_IN_PLACE", int(any(step.kernel == "tp_conv2d" and step.staging
                                                and step.inputs[-1].binding != "none" for step in steps))))
    # bitmask_lut rows of FULLY_CONNECTED, CONV_2D with 4-bit indices (read two a byte)
    for kernel in ("tp_fully_connected", "tp_conv2d"):
        indexed = [dict(step.fields)["weights.index_bits"] for step in steps if step.kernel == kernel
                   and dict(step.fields).get("weights.format") == "TP_BITMASK_LUT"]
        paths.append((f"{kernel_macro(kernel)}_LUT4", _taken([bits == 4 for bits in indexed])))
    paths.append(("TP_CONV2D_UNPACKED", unpacked_nonzeros(steps)))
    for kernel in ("tp_conv2d", "tp_fully_connected"):
        paths.append((f"{kernel_macro(kernel)}_DOUBLED",
                       _taken([short_requantization(step, arrays) for step in steps if step.kernel == kernel])))
    # tp_conv2d's largest fused pool window: its walk of windows beyond the first four compiles only if above 4
    members = [fields["pool_h"] * fields["pool_w"] for fields in map(dict, (step.fields for step in steps
               if step.kernel == "tp_conv2d")) if fields.get("pool_h")]
    paths.append(("TP_CONV2D_POOL_MEMBERS", max(members, default=4)))
    return paths


def kernel_macro(kernel: str) -> str:
    """A kernel's prefix in tp_config.h: tp_conv2d -> TP_CONV2D."""
    return f"TP_{kernel.removeprefix('tp_').upper()}"


def _taken(flags: list[bool]) -> int:
    """tp_config.h's value for a path the steps of a kernel may take: 1 every step, 2 some (the kernel
    decides per step), 0 none."""
    return 1 if flags and all(flags) else 2 if any(flags) else 0


def short_requantization(step: Step, arrays: dict[str, list[int]]) -> bool:
    """Whether every output channel of convolution or fully connected `step` takes tp_arith.h's short
    requantization (tp_doubled_scale_of: a right shift of 1 to 21, |accumulator| < 2^29 with each row
    position adding at most 128 * 128 to the bias), so that tp_conv2d or tp_fully_connected compiles that
    form alone (TP_CONV2D_DOUBLED, TP_FULLY_CONNECTED_DOUBLED)."""
    fields = dict(step.fields)
    bound = max(abs(value) for value in arrays[fields["bias"]]) + 128 * 128 * fields["weights.row_len"]
    return bound < 1 << 29 and all(1 <= -shift <= 21 for shift in arrays[fields["requant.shift"]])


UNPACKED_STACK_BYTES = 1024  # the most call stack tp_conv2d's unpacked row may take (else it walks the stored rows)


def unpacked_nonzeros(steps: list[Step]) -> int:
    """The most nonzeros of a row that tp_conv2d unpacks once for all its windows (bitmask rows, of int8
    or of 4-bit indices: tp_conv2d.c's UNPACKED), which sizes its stack array (a tp_nonzero of 2 bytes,
    4 with two-byte taps); 0: no step has such rows, or the array would take more than
    UNPACKED_STACK_BYTES."""
    arrays = {array.name: array.values for step in steps for array in step.arrays}
    most = 0
    for step in steps:
        fields = dict(step.fields)
        if step.kernel == "tp_conv2d" and (fields.get("weights.format") == "TP_BITMASK" or (
                fields.get("weights.format") == "TP_BITMASK_LUT" and fields["weights.index_bits"] == 4)):
            mask, stride = arrays[fields["weights.mask"]], fields["weights.row_stride"]
            most = max([most] + [sum(bin(word).count("1") for word in mask[row:row + stride])
                                 for row in range(0, len(mask), stride)])
    return most if most * 2 * tap_bytes(steps) <= UNPACKED_STACK_BYTES else 0


def write_standalone(lowered: Lowered, out_dir: str | Path, name: str = "model") -> StandaloneModel:
    """Render a lowered graph as model.c / model.h and copy the kernels its steps call into `out_dir`."""
    graph, steps, arena_bytes = lowered.graph, lowered.steps, lowered.arena_bytes
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    source, output = graph.input_tensors()[0], graph.output_tensors()[0]
    arrays = [array for step in steps for array in step.arrays]
    context = {
        "name": c_identifier(name), "steps": steps, "arrays": arrays, "arena_bytes": arena_bytes,
        "layers": lowered.layers, "input_size": source.num_elements, "output_size": output.num_elements,
        "input_shape": source.shape, "output_shape": output.shape,
        "input_scale": source.quantization.scale[0], "input_zero_point": source.quantization.zero_point[0],
        "output_scale": output.quantization.scale[0], "output_zero_point": output.quantization.zero_point[0],
    }
    context["kernel_formats"] = kernel_formats(steps)
    context["kernel_paths"] = kernel_paths(steps)
    context["tap_bytes"] = tap_bytes(steps)
    kernels = sorted({step.kernel for step in steps})
    kernel_files = [f"{kernel}.h" if kernel in INLINE_KERNELS else f"{kernel}.c" for kernel in kernels]
    context["kernel_headers"] = [file_name for file_name in kernel_files if file_name.endswith(".h")]
    files = []
    for template, target in (("standalone/model.h.j2", "model.h"), ("standalone/model.c.j2", "model.c"),
                             ("standalone/tp_config.h.j2", "tp_config.h")):
        path = out_dir / target
        path.write_text(render(template, **context), encoding="utf-8")
        files.append(path)
    sources = [out_dir / "model.c"]
    for file_name in SHARED_HEADERS + tuple(kernel_files):
        target = out_dir / file_name
        shutil.copyfile(templates_dir() / KERNEL_DIR / file_name, target)
        files.append(target)
        if file_name.endswith(".c"):
            sources.append(target)
    return StandaloneModel(
        name=context["name"], out_dir=out_dir, files=files, sources=sources, layers=lowered.layers,
        ops=graph.op_names, arena_bytes=arena_bytes, arena_lower_bound=lowered.plan.lower_bound,
        input_shape=source.shape, output_shape=output.shape,
        input_quantization=(context["input_scale"], context["input_zero_point"]),
        output_quantization=(context["output_scale"], context["output_zero_point"]),
        constant_bytes=lowered.constant_bytes, steps=steps,
    )

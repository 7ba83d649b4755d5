"""A static bound on a firmware's call stack, from GCC's own figures: compiled with -fcallgraph-info=su,
each object gets a .ci file (VCG text) naming every function's frame in bytes and every call it makes.
The bound is the deepest chain of frames from a root (Reset_Handler: the whole firmware; model_invoke:
the model). It is known before anything runs; the measured high-water mark (cortex_m/startup.c.j2 paints
the stack at reset) is the proof, and stays at or under it. The C library's functions (newlib's memset,
memcpy) come compiled, without a figure: their frames are read from their code in the linked ELF (what
they push and subtract from sp), when they call nothing further. What the bound still cannot see is
said, not guessed: frames GCC calls dynamic, recursion and calls through pointers (startup's C++
constructors)."""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

CALLGRAPH_FLAGS = ("-fcallgraph-info=su",)  # GCC 10+: writes <output>-<source>.ci beside the output
INDIRECT_CALL = "__indirect_call"  # GCC's callee for a call through a pointer

_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"]*?(?:\\n(\d+) bytes \(([^)]*)\))?" ')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
# what a function's code does to sp (objdump's Thumb spelling): pushes, pushes of FPU registers, sp -= n
_PUSH = re.compile(r"\t(?:push(?:\.w)?\t|stmdb(?:\.w)?\tsp!, )\{([^}]*)\}")
_VPUSH = re.compile(r"\tvpush\t\{([^}]*)\}")
_SUB_SP = re.compile(r"\tsub(?:\.w)?\tsp, (?:sp, )?#(\d+)")
_TARGET = re.compile(r"\tb[a-z.]*\t[0-9a-f]+ <([^+>]+)")  # a branch's or call's target function


@dataclass
class CallGraph:
    frames: dict[str, int] = field(default_factory=dict)  # function -> its frame in bytes (GCC's "static" figure)
    dynamic: set[str] = field(default_factory=set)  # functions whose frame GCC reports as dynamic (alloca, VLAs)
    calls: dict[str, set[str]] = field(default_factory=dict)  # caller -> callees

    def add(self, text: str) -> None:
        """One .ci file's nodes and edges. A static function's title is `file:name`, so two files' statics
        never meet; an external's node has no frame (its own file, if compiled, gives it)."""
        for title, size, kind in _NODE.findall(text):
            if size:
                self.frames[title] = int(size)
                if kind != "static":
                    self.dynamic.add(title)
        for caller, callee in _EDGE.findall(text):
            self.calls.setdefault(caller, set()).add(callee)


@dataclass
class StackBound:
    root: str
    bytes: int  # the deepest chain's frames, summed
    chain: list[str]  # that chain, root first
    unknown: list[str]  # functions reached whose frame GCC did not give (not counted)
    dynamic: list[str]  # reached functions with a dynamic frame (their static part counted)
    indirect: list[str]  # reached functions calling through a pointer (the callees not followed)
    recursive: bool = False  # a cycle was reached: the bound holds for one turn of it only

    @property
    def complete(self) -> bool:
        return not (self.unknown or self.dynamic or self.indirect or self.recursive)

    def describe(self) -> str:
        gaps = ([f"frames of {', '.join(self.unknown)} not counted (no figure, and their code calls on)"]
                if self.unknown else []) \
            + ([f"dynamic frames in {', '.join(self.dynamic)}"] if self.dynamic else []) \
            + ([f"calls through pointers in {', '.join(self.indirect)} not followed"] if self.indirect else []) \
            + (["recursion counted once"] if self.recursive else [])
        return f"static bound {self.bytes:,} B from {self.root} ({' > '.join(_name(f) for f in self.chain)})" + \
            (f"; {'; '.join(gaps)}" if gaps else "")


def code_frame(function: str, disassembly: str) -> int | None:
    """A function's frame from its code (objdump -d of it alone): every register it pushes (4 B, an FPU
    double 8 B) and every sp -= n, summed; None if it calls or branches into anything else (those frames
    are not known), or calls through a register (blx rN)."""
    if "\tblx\tr" in disassembly or any(target != function for target in _TARGET.findall(disassembly)):
        return None
    pushed = sum(4 * len(_registers(group)) for group in _PUSH.findall(disassembly))
    pushed += sum(8 * len(_registers(group)) for group in _VPUSH.findall(disassembly))
    return pushed + sum(int(n) for n in _SUB_SP.findall(disassembly))


def add_library_frames(graph: CallGraph, elf: Path, objdump: str = "arm-none-eabi-objdump") -> None:
    """Frames for the graph's functions without one (linked from a library), read from their code in `elf`."""
    for function in sorted({callee for callees in graph.calls.values() for callee in callees} - set(graph.frames)):
        if function == INDIRECT_CALL:
            continue
        code = subprocess.run([objdump, "-d", f"--disassemble={function}", str(elf)], capture_output=True, text=True,
                              check=False).stdout
        if f"<{function}>:" in code:
            frame = code_frame(function, code.split(f"<{function}>:", 1)[1])
            if frame is not None:
                graph.frames[function] = frame


def _registers(group: str) -> list[str]:
    """`r4, r5, lr` or `r4-r7` or `d8-d15` as the registers it names."""
    names = []
    for part in (p.strip() for p in group.split(",") if p.strip()):
        first, _, last = part.partition("-")
        names += [part] if not last else [f"{first[0]}{i}" for i in range(int(first[1:]), int(last[1:]) + 1)]
    return names


def read_call_graph(folder: Path) -> CallGraph:
    """Every .ci file in `folder` (what a build with CALLGRAPH_FLAGS left there)."""
    graph = CallGraph()
    for path in sorted(Path(folder).glob("*.ci")):
        graph.add(path.read_text(encoding="utf-8", errors="replace"))
    return graph


def stack_bound(graph: CallGraph, root: str) -> StackBound:
    """The deepest chain of frames from `root` through the call graph."""
    unknown, dynamic, indirect, recursive = set(), set(), set(), False
    deepest: dict[str, tuple[int, list[str]]] = {}

    def visit(function: str, active: frozenset) -> tuple[int, list[str]]:
        nonlocal recursive
        if function in active:
            recursive = True
            return 0, []
        if function in deepest:
            return deepest[function]
        if function not in graph.frames:
            unknown.add(function)
        if function in graph.dynamic:
            dynamic.add(function)
        callees = graph.calls.get(function, set())
        if INDIRECT_CALL in callees:
            indirect.add(function)
        below = [visit(callee, active | {function}) for callee in sorted(callees - {INDIRECT_CALL})]
        depth, chain = max(below, key=lambda pair: pair[0], default=(0, []))
        deepest[function] = (graph.frames.get(function, 0) + depth, [function] + chain)
        return deepest[function]

    total, chain = visit(root, frozenset())
    return StackBound(root, total, chain, *(sorted(_name(f) for f in names) for names in (unknown, dynamic, indirect)),
                      recursive)


def _name(title: str) -> str:
    """A node's function name without the file GCC prefixes to statics."""
    return title.rsplit(":", 1)[-1]

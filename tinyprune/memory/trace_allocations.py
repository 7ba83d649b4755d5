"""Every arena operation the tflite-micro package performs for a model, with the code that asked for
it: the evidence behind the host recipes in kernels.py. When a model brings an operator kernels.py does
not know, trace it and read the operator's Init and Prepare off the output. Needs gdb.

    python -m tinyprune.memory.trace_allocations model.tflite [arena_bytes] > allocations.txt

Lines: "tail SIZE/ALIGN" (AllocatePersistentBuffer), "temp SIZE/ALIGN" (AllocateTemp), "head SIZE"
(ResizeBuffer), "reset" (ResetTempAllocations: a node's Prepare ended), "scratch SIZE" (a kernel's
RequestScratchBufferInArena), "planner SIZE" (the memory planner's working memory), each followed by
the innermost TFLM functions on the call stack.

The module runs twice: as a program it starts gdb on a Python that builds the interpreter, and gdb
loads this same file to set the breakpoints.
"""
from __future__ import annotations

import subprocess
import sys

_BREAKPOINTS = {
    "SingleArenaBufferAllocator::AllocatePersistentBuffer(unsigned long, unsigned long)": "tail",
    "SingleArenaBufferAllocator::AllocateTemp(unsigned long, unsigned long)": "temp",
    "SingleArenaBufferAllocator::ResizeBuffer(unsigned char*, unsigned long, unsigned long)": "head",
    "SingleArenaBufferAllocator::ResetTempAllocations()": "reset",
    "MicroAllocator::RequestScratchBufferInArena(unsigned long, int, int*)": "scratch",
    "GreedyMemoryPlanner::Init(unsigned char*, int)": "planner",
}
_NAMESPACE = "tflite::micro::"  # the package's TFLM build; older builds use "tflite::"
_PYTHON_BOUNDARY = ("InterpreterWrapper", "pybind11")  # frames above these are the Python binding's


def _caller_names(gdb, depth: int = 6) -> str:
    frame, names = gdb.selected_frame().older(), []
    while frame is not None and len(names) < depth:
        name = (frame.name() or "?").split("(")[0].replace(_NAMESPACE, "")
        if any(boundary in name for boundary in _PYTHON_BOUNDARY):
            break
        if "Recording" not in name:  # the recorder's wrappers around the allocator's own calls
            names.append(name.replace("(anonymous namespace)::", ""))
        frame = frame.older()
    return " < ".join(names)


def _install_breakpoints(gdb) -> None:
    """Inside gdb: print one line per arena operation (x86-64 argument registers rsi, rdx)."""

    class Operation(gdb.Breakpoint):
        def __init__(self, signature: str, kind: str):
            super().__init__(_NAMESPACE + signature, internal=True)
            self.kind = kind

        def stop(self) -> bool:
            first, second = (int(gdb.parse_and_eval(register)) for register in ("$rsi", "$rdx"))
            figures = {"tail": f"{first}/{second}", "temp": f"{first}/{second}", "head": f"{second}",
                       "scratch": f"{first}", "planner": f"{second}", "reset": ""}[self.kind]
            print(f"{self.kind} {figures} | {_caller_names(gdb)}", flush=True)
            return False

    gdb.execute("set pagination off")
    gdb.execute("set breakpoint pending on")
    for signature, kind in _BREAKPOINTS.items():
        Operation(signature, kind)


_BUILD_INTERPRETER = (
    "import sys; from tinyprune.verify.arena_probe import allocate_and_invoke; "
    "allocate_and_invoke(open(sys.argv[1], 'rb').read(), int(sys.argv[2]))"
)


def main(model_path: str, arena_bytes: int = 1 << 20) -> None:
    command = ["gdb", "-batch", "-x", __file__, "-ex", "run", "--args",
               sys.executable, "-c", _BUILD_INTERPRETER, model_path, str(arena_bytes)]
    traced = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in traced.stdout.splitlines():
        if line.split(" ", 1)[0] in _BREAKPOINTS.values():
            print(line)


try:
    import gdb  # present only when gdb loads this file
except ImportError:
    if __name__ == "__main__":
        main(sys.argv[1], *(int(arg) for arg in sys.argv[2:3]))
else:
    _install_breakpoints(gdb)

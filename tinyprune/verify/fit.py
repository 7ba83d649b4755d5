"""Stage 5 (fit): does the model fit the board? Flash and RAM needs, each an itemised sum, against
the board's limits. A model that does not fit is an error that prints both figures and the limit."""
from __future__ import annotations

from dataclasses import dataclass

from tinyprune.errors import TinypruneError


STACK = "stack"  # the RAM item of the call stack's high-water mark
HEAP = "heap"  # the RAM item of what a measured firmware took with malloc
SKETCH_BUFFERS = "sketch buffers"  # the RAM item of the sketch's own input/output and serial-protocol buffers
SHRINK_SKETCH_BUFFERS = ("a model with a smaller input, or your own loop() in the sketch that reads the input "
                         "straight into the model's (the example loop() holds it again, with the serial frame)")


@dataclass
class BoardFit:
    board: str
    flash_items: dict[str, int]  # what the flash holds, in bytes
    flash_limit: int
    ram_items: dict[str, int]  # what the RAM holds, in bytes
    ram_limit: int
    flash_basis: str = ""  # which flash figures are measured and which estimated
    ram_basis: str = ""  # the same for RAM where it is not said by the items (the stack: measured or not counted)

    @property
    def flash_needed(self) -> int:
        return sum(self.flash_items.values())

    @property
    def ram_needed(self) -> int:
        return sum(self.ram_items.values())

    @property
    def fits(self) -> bool:
        return self.flash_needed <= self.flash_limit and self.ram_needed <= self.ram_limit


def board_fit(graph, board, runtime_name: str, arena_bytes: int, ram_headroom: int, arena_margin: int = 0,
              sketch_buffers: int = 0, stack_bytes: int = 0, stack_measured_on: str = "",
              heap_bytes: int = 0) -> BoardFit:
    """The model's flash (its bytes plus the runtime's code for its operators) and RAM (the arena, the
    margin the firmware declares above it, the call stack and the C library's heap where a firmware
    measured them (see stack_item), the sketch's buffers that grow with the model, and headroom) against
    the board."""
    from tinyprune.memory import estimate_flash

    flash = estimate_flash(graph, runtime_name)
    stack, stack_basis = stack_item(stack_bytes, board.core, stack_measured_on)
    if heap_bytes:
        stack[HEAP] = heap_bytes
        stack_basis += "; heap: what the same firmware took with malloc (the C library's, the C++ runtime's)"
    return BoardFit(
        board=board.name,
        flash_items={"model": flash.model_bytes,
                     "TFLM runtime and kernels": flash.core_bytes + sum(flash.kernel_bytes.values()),
                     "application": flash.application_bytes},
        flash_limit=board.flash_bytes,
        ram_items={"arena": arena_bytes, "arena margin": arena_margin, **stack,
                   **({SKETCH_BUFFERS: sketch_buffers} if sketch_buffers else {}), "headroom": ram_headroom},
        ram_limit=board.ram_bytes,
        flash_basis=flash.basis,
        ram_basis=stack_basis,
    )


def stack_item(stack_bytes: int, core: str, measured_on: str, bound_bytes: int = 0,
               bound: str = "") -> tuple[dict[str, int], str]:
    """The fit's RAM item for the call stack and the words saying what it rests on: the high-water mark a
    firmware measured under qemu (`measured_on`: which firmware, where; its stack region painted at reset,
    the deepest word overwritten when main returned); else GCC's static bound of a firmware built but not
    run (`bound_bytes`, `bound` in words: toolchains/stack.py); else no item, said so."""
    if stack_bytes:
        return {STACK: stack_bytes}, f"stack measured: the high-water mark of {measured_on}"
    if bound_bytes:
        return {STACK: bound_bytes}, f"stack not measured (the firmware did not run): {bound}"
    return {}, f"the call stack is not included: no firmware ran for {core} to measure it"


def itemised(items: dict[str, int]) -> str:
    """'name 1,234 + other 56': the parts of a figure that are not zero."""
    return " + ".join(f"{name} {value:,}" for name, value in items.items() if value)


def require_fit(fit: BoardFit, shrinks: dict[str, str] | None = None) -> None:
    """Raise with the figures, part by part, when the model does not fit the board. `shrinks` maps a part
    (an item of the fit) to what makes it smaller on this backend; the fix offers only those, for the
    parts of the memory that overflows, and never an option that saves nothing there."""
    problems, parts = [], []
    for memory, needed, limit, items in (("flash", fit.flash_needed, fit.flash_limit, fit.flash_items),
                                         ("RAM", fit.ram_needed, fit.ram_limit, fit.ram_items)):
        if needed > limit:
            problems.append(f"{memory} {needed:,} B = {itemised(items)} > {fit.board}'s {limit:,} B "
                            f"(over by {needed - limit:,} B)")
            parts += [name for name, value in items.items() if value and name in (shrinks or {})]
    if problems:
        advice = [f"for the {part}: {shrinks[part]}" for part in dict.fromkeys(parts)]
        raise TinypruneError("the model does not fit the board: " + "; ".join(problems),
                             "; ".join(advice + ["or choose a board with more memory (tinyprune boards)"]))

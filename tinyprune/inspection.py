"""`tinyprune inspect`: what an int8 .tflite will cost on a board, without TensorFlow or a board —
its operators and the runtime's support for them, every planned tensor's offset and lifetime, the
arena (host exact, the board's 32-bit build, the lower bound) and the flash, against a board."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from tinyprune.config import BuildConfig
from tinyprune.errors import TinypruneError


def inspect_model(path: str | Path, board_name: str | None = None, runtime_name: str = BuildConfig.runtime,
                  ram_headroom: int = BuildConfig.ram_headroom, arena_margin: int = BuildConfig.arena_margin) -> dict:
    """Everything `inspect` prints, as a JSON-serialisable dictionary."""
    from tinyprune.boards import load_board
    from tinyprune.graph.check import check_graph
    from tinyprune.graph.reader import read_graph_file
    from tinyprune.graph.runtimes import get_runtime
    from tinyprune.memory import board_arena, emulate_arena, estimate_flash
    from tinyprune.verify.fit import board_fit

    graph = read_graph_file(path)
    runtime = get_runtime(runtime_name)
    try:
        check_graph(graph, runtime)
        problem = None
    except TinypruneError as exc:
        if any(t.dtype != "int8" for t in graph.input_tensors() + graph.output_tensors()):
            raise TinypruneError(f"{path} is not a full-integer int8 model: {exc.problem}", exc.fix) from None
        problem = str(exc)
    host = emulate_arena(graph, "host")
    board = board_arena(graph, runtime.name)
    flash = estimate_flash(graph, runtime.name)
    result = {
        "model": str(path),
        "model_bytes": graph.model_bytes,
        "runtime": {"name": runtime.name, "title": runtime.title, "problem": problem},
        "operators": [{"index": op.index, "opcode": op.opcode, "layer": graph.producer_layer(op),
                       "supported": runtime.supports(op.opcode), "inputs": list(op.inputs),
                       "outputs": list(op.outputs)} for op in graph.operators],
        "tensors": [asdict(p) for p in host.placements],
        "arena": {
            "host_aligned16": host.aligned16, "host_exact": host.exact,
            "board_target": board.target, "board_aligned16": board.aligned16, "board_exact": board.exact,
            "board_models": board.models, "lower_bound": host.lower_bound,
            "planner_overhead": host.planner_overhead, "peak": asdict(host.peak),
            "exact_model": host.exact_model and board.exact_model, "notes": list(board.notes),
        },
        "flash": {"model": flash.model_bytes, "runtime_code": flash.code_bytes, "total": flash.total,
                  "basis": flash.basis},
    }
    if board_name is not None:
        fit = board_fit(graph, load_board(board_name), runtime.name, board.aligned16, ram_headroom, arena_margin)
        result["fit"] = {"board": fit.board, "flash_needed": fit.flash_needed, "flash_limit": fit.flash_limit,
                         "ram_needed": fit.ram_needed, "ram_limit": fit.ram_limit, "fits": fit.fits,
                         "ram_items": fit.ram_items}
    return result


def format_inspection(result: dict) -> str:
    """The dictionary as text for a terminal."""
    lines = [f"{result['model']}: {result['model_bytes']:,} B, {len(result['operators'])} operators, "
             f"checked against {result['runtime']['title']}"]
    if result["runtime"]["problem"]:
        lines.append(f"  NOT RUNNABLE there: {result['runtime']['problem']}")
    lines.append("\noperators")
    for op in result["operators"]:
        mark = "" if op["supported"] else "   <- not in this runtime"
        lines.append(f"  {op['index']:>3}  {op['opcode']:<20} {op['layer']}{mark}")
    lines.append("\ntensors in the arena's head (host plan): offset, bytes, alive at steps")
    for t in result["tensors"]:
        lines.append(f"  {t['offset']:>8,}  {t['size']:>8,}  {t['first']:>3}-{t['last']:<3}  {t['name']}")
    a = result["arena"]
    board_label = f"board ({a['board_target']})"
    lines += [
        "\narena",
        f"  {'host (tflite-micro package, 64-bit)':<38}{a['host_aligned16']:>9,} B   (1-byte figure {a['host_exact']:,} B)",
        f"  {board_label:<38}{a['board_aligned16']:>9,} B   (1-byte figure {a['board_exact']:,} B)",
        f"  {'lower bound (live tensors)':<38}{a['lower_bound']:>9,} B   planner overhead {a['planner_overhead']:,} B",
        f"  decided {a['peak']['phase']}: {a['peak']['what']}",
    ]
    f = result["flash"]
    lines += ["\nflash", f"  model {f['model']:,} B + runtime code {f['runtime_code']:,} B = {f['total']:,} B",
              f"  ({f['basis']})"]
    if "fit" in result:
        fit = result["fit"]
        verdict = "fits" if fit["fits"] else "DOES NOT FIT"
        lines += [f"\n{fit['board']}: {verdict}: flash {fit['flash_needed']:,} / {fit['flash_limit']:,} B, "
                  f"RAM {fit['ram_needed']:,} / {fit['ram_limit']:,} B (arena + margin + headroom)"]
    return "\n".join(lines)

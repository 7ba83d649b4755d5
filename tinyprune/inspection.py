"""`tinyprune inspect`: what an int8 .tflite will cost on a board, without TensorFlow or a board —
its operators and the runtime's support for them, every planned tensor's offset and lifetime, the
arena (host exact, the board's 32-bit build, the lower bound) and the flash, against a board."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from tinyprune.config import BuildConfig
from tinyprune.errors import TinypruneError


def inspect_model(path: str | Path, board_name: str | None = None, runtime_name: str = BuildConfig.runtime,
                  ram_headroom: int = BuildConfig.ram_headroom, arena_margin: int = BuildConfig.arena_margin,
                  backend: str = BuildConfig.backend) -> dict:
    """Everything `inspect` prints, as a JSON-serialisable dictionary. With a board, the firmware is
    chosen as `tinyprune build` chooses it (`backend`, auto by default) and "fit" is that firmware's."""
    from tinyprune.graph.check import check_graph
    from tinyprune.graph.reader import read_graph_file
    from tinyprune.graph.runtimes import get_runtime
    from tinyprune.memory import board_arena, emulate_arena, estimate_flash

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
        config = BuildConfig(model=str(path), board=board_name, runtime=runtime_name, backend=backend,
                             ram_headroom=ram_headroom, arena_margin=arena_margin).validate()
        result["firmware"] = _firmware(graph, host, config)
        if result["firmware"]["builds"]:
            result["fit"] = result["firmware"]["builds"][0]["fit"]
    return result


def _firmware(graph, host_arena, config: BuildConfig) -> dict:
    """The firmware `build` would recommend for the board and the builds beside it, each with its
    estimated fit; or, when no backend can run the model, why not."""
    from tinyprune.stages import firmware_builds, no_firmware_error, resolve_target

    target = resolve_target(config)  # an option the board cannot take is bad input, as in build
    builds, refused, errors = firmware_builds(graph, target)
    for build in builds:
        build.memory = build.backend.memory(graph, build, host_arena, config)
        build.fit = build.backend.fit(graph, build, build.memory, None, None, config)
    return {
        "board": target.board.name,
        "board_title": target.board.title,
        "backend": builds[0].backend.name if builds else None,
        "why": builds[0].why if builds else f"none: {no_firmware_error(errors, target.board)}",
        "refused": refused,
        "builds": [{"backend": b.backend.name, "title": b.backend.title, "runtime": b.runtime.name,
                    "folder": b.folder, "why": b.why, "arena_bytes": b.memory.arena_firmware,
                    "fit": _fit_figures(b.fit, b.backend.name)} for b in builds],
    }


def _fit_figures(fit, backend: str) -> dict:
    return {"board": fit.board, "backend": backend, "flash_needed": fit.flash_needed, "flash_limit": fit.flash_limit,
            "flash_items": fit.flash_items, "flash_basis": fit.flash_basis, "ram_needed": fit.ram_needed,
            "ram_limit": fit.ram_limit, "ram_items": fit.ram_items, "fits": fit.fits}


def exit_code(result: dict) -> int:
    """What `inspect` exits with, so a firmware's CI can gate on it: 1 when the model cannot run (no
    backend runs it on the board; without a board, the runtime cannot) or does not fit, else 0."""
    if "firmware" in result:
        return 0 if result.get("fit", {"fits": False})["fits"] else 1
    return 1 if result["runtime"]["problem"] else 0


def format_inspection(result: dict) -> str:
    """The dictionary as text for a terminal: with a board, the firmware first; then the TFLM figures."""
    from tinyprune.verify.fit import itemised

    firmware = result.get("firmware")
    lines = [f"{result['model']}: {result['model_bytes']:,} B, {len(result['operators'])} operators"]
    if firmware is None:
        lines[0] += f", checked against {result['runtime']['title']}"
        if result["runtime"]["problem"]:
            lines.append(f"  NOT RUNNABLE there: {result['runtime']['problem']}")
    else:
        lines.append(f"\nfirmware for {firmware['board_title']}: {firmware['why']}")
        for build in firmware["builds"]:
            fit = build["fit"]
            lines.append(f"  {build['backend']}{' (beside it)' if build['folder'] else ''}: "
                         f"{'fits' if fit['fits'] else 'does not fit'}: flash {fit['flash_needed']:,} B "
                         f"({itemised(fit['flash_items'])}), RAM {fit['ram_needed']:,} B "
                         f"({itemised(fit['ram_items'])}); {fit['flash_basis']}")
    lines.append(f"\noperators (TFLM: {result['runtime']['title']})")
    for op in result["operators"]:
        mark = "" if op["supported"] else "   <- not in this runtime"
        lines.append(f"  {op['index']:>3}  {op['opcode']:<20} {op['layer']}{mark}")
    lines.append("\ntensors in the arena's head (host plan): offset, bytes, alive at steps")
    for t in result["tensors"]:
        lines.append(f"  {t['offset']:>8,}  {t['size']:>8,}  {t['first']:>3}-{t['last']:<3}  {t['name']}")
    a = result["arena"]
    board_label = f"board ({a['board_target']})"
    lines += [
        "\nTFLM arena",
        f"  {'host (tflite-micro package, 64-bit)':<38}{a['host_aligned16']:>9,} B   (1-byte figure {a['host_exact']:,} B)",
        f"  {board_label:<38}{a['board_aligned16']:>9,} B   (1-byte figure {a['board_exact']:,} B)",
        f"  {'lower bound (live tensors)':<38}{a['lower_bound']:>9,} B   planner overhead {a['planner_overhead']:,} B",
        f"  decided {a['peak']['phase']}: {a['peak']['what']}",
    ]
    f = result["flash"]
    lines += ["\nTFLM flash", f"  model {f['model']:,} B + runtime code {f['runtime_code']:,} B = {f['total']:,} B",
              f"  ({f['basis']})"]
    if firmware is not None:
        lines.append("")
        if "fit" not in result:
            lines.append(f"{firmware['board']}: CANNOT RUN: no backend runs this model there (firmware, above)")
        else:
            fit = result["fit"]
            lines.append(f"{fit['board']}: {'fits' if fit['fits'] else 'DOES NOT FIT'} with the {fit['backend']} "
                         f"firmware: flash {fit['flash_needed']:,} / {fit['flash_limit']:,} B, RAM "
                         f"{fit['ram_needed']:,} / {fit['ram_limit']:,} B ({itemised(fit['ram_items'])})")
    return "\n".join(lines)

"""The report of a build from an int8 .tflite taken as it is (tinyprune build model.tflite): report.json
with the sections of a Keras build that apply (target, check, accuracy when data was given, agreement,
memory, fit, firmware) plus `not_applied` (the stages skipped, and why); report.md and report.html."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from tinyprune.report.schema import closing_sections, fit_section, header_sections, memory_section, model_card


def tflite_report(config, target, prebuilt, verified, files, stage_seconds) -> dict:
    from tinyprune.sizes import gzip_size

    graph, data, scores = prebuilt.graph, prebuilt.data, verified.scores
    runtime = verified.builds[0].runtime  # the recommended firmware's
    return {
        **header_sections(config, target, verified),
        "model": {"name": prebuilt.name, "source": prebuilt.source,
                  "input": "int8 .tflite, as it is" if "quantize" in prebuilt.not_applied
                  else "exported SavedModel, converted to int8",
                  "input_shape": [int(d) for d in graph.input_tensors()[0].shape[1:]],
                  "model_bytes": len(prebuilt.model_bytes), "model_bytes_gzip": gzip_size(prebuilt.model_bytes)},
        "not_applied": prebuilt.not_applied,
        "data": None if data is None else {"name": data.name, "test_samples": len(data.x_test), "task": data.task},
        "self_test": "the first test samples and TFLM's outputs" if data is not None
        else "deterministic int8 inputs (seeded) and TFLM's outputs",
        "check": {"runtime": runtime.name, "ops": [asdict(op) for op in verified.checked.ops.ops]},
        "accuracy": None if not scores else {"metric": scores[0].metric, "samples": scores[0].samples,
                                             **{s.stage: s.value for s in scores}},
        "agreement": asdict(verified.agreement),
        "memory": memory_section(verified, config),
        "fit": fit_section(verified),
        **closing_sections(verified, files, stage_seconds),
    }


def rows(report: dict) -> list[tuple[str, str]]:
    """The page's rows, stage by stage: the same for report.md and report.html."""
    memory, fit, accuracy, agreement = report["memory"], report["fit"], report["accuracy"], report["agreement"]
    table = [(stage, f"did not apply: {reason}") for stage, reason in report["not_applied"].items()]
    table.append(("check", f"{', '.join(op['name'] for op in report['check']['ops'])}: all supported"))
    table.append(("accuracy", ((f"float {accuracy['float']:.4g}, " if "float" in accuracy else "")
                               + f"TFLM int8 {accuracy['tflm_int8']:.4g}, LiteRT int8 {accuracy['litert_int8']:.4g} "
                               f"({accuracy['metric']}, {accuracy['samples']} samples)") if accuracy
                  else "no data given: " + report["self_test"]))
    table.append(("LiteRT vs TFLM", f"{agreement['differing_bytes']} of {agreement['total_bytes']:,} output bytes "
                                    "differ" + (f"; {agreement['first_difference']}" if agreement["first_difference"]
                                                else "")))
    table.append(("arena", f"host {memory['arena_aligned16']:,} B (search = emulation: "
                           f"{memory['emulation_matches_search']}), board {memory['board_aligned16']:,} B, firmware "
                           f"{memory['arena_firmware']:,} B"))
    stored, words = model_card(report)
    table.append(("model in the firmware", f"{stored:,} B: {words}"))
    table.append(("fit", f"flash {fit['flash_needed']:,} / {fit['flash_limit']:,} B, RAM {fit['ram_needed']:,} / "
                         f"{fit['ram_limit']:,} B: {'fits' if fit['fits'] else 'does not fit'}"))
    table += [(f"{b['backend']}, beside it", f"in {b['folder']}/: flash {b['flash_needed']:,} B, RAM "
                                             f"{b['ram_needed']:,} B; {_proof_words(b)}") for b in report["builds"][1:]]
    table += [(f"device {part}", "measured on the board: see report.json") for part in (report["device"] or {})]
    return table


def _proof_words(build: dict) -> str:
    """A comparison build's proof in words: why it failed, or its output bytes against TFLM's."""
    if build.get("proof_failure"):
        return f"not proven: {build['proof_failure']}"
    if build["differing_bytes"] is None:
        return "not run: " + "; ".join(build["not_proven"])
    return f"{build['differing_bytes']:,} output bytes differ from TFLM's"


def title(report: dict) -> tuple[str, str]:
    model = report["model"]
    return (f"{model['name']}: {model['source']} for {report['fit']['board']}",
            f"An {model['input']} ({model['model_bytes']:,} B), for {report['target']['runtime']['title']}.")


def tflite_markdown(report: dict) -> str:
    heading, summary = title(report)
    lines = [f"# {heading}", "", summary, "", "| stage | |", "|---|---|"]
    lines += [f"| {stage} | {text} |" for stage, text in rows(report)]
    return "\n".join(lines + ["", "Files: " + ", ".join(f"`{f}`" for f in report["firmware"]["files"]), ""])


def tflite_html(report: dict) -> str:
    from tinyprune.report.html import environment

    heading, summary = title(report)
    return environment().get_template("as_it_is.html.j2").render(heading=heading, summary=summary,
                                                                   rows=rows(report), files=report["firmware"]["files"])


def write_tflite_reports(folder: Path, config, target, prebuilt, verified, files, stage_seconds) -> dict:
    report = tflite_report(config, target, prebuilt, verified, files + ["report.html", "report.json", "report.md"],
                           stage_seconds)
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (folder / "report.md").write_text(tflite_markdown(report))
    (folder / "report.html").write_text(tflite_html(report))
    return report

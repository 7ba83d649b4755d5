"""The report of a build from an int8 .tflite taken as it is (tinyprune build model.tflite): report.json
with the sections of a Keras build that apply (target, check, accuracy when data was given, agreement,
memory, fit, firmware) plus `not_applied` (the stages skipped, and why), and report.md."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from tinyprune.report.schema import closing_sections, fit_section, header_sections, memory_section


def tflite_report(config, target, prebuilt, verified, files, stage_seconds) -> dict:
    from tinyprune.sizes import gzip_size

    graph, data, scores = prebuilt.graph, prebuilt.data, verified.scores
    return {
        **header_sections(config, target),
        "model": {"name": prebuilt.name, "source": prebuilt.source,
                  "input": "int8 .tflite, as it is" if "quantize" in prebuilt.not_applied
                  else "exported SavedModel, converted to int8",
                  "input_shape": [int(d) for d in graph.input_tensors()[0].shape[1:]],
                  "model_bytes": len(prebuilt.model_bytes), "model_bytes_gzip": gzip_size(prebuilt.model_bytes)},
        "not_applied": prebuilt.not_applied,
        "data": None if data is None else {"name": data.name, "test_samples": len(data.x_test), "task": data.task},
        "self_test": "the first test samples and TFLM's outputs" if data is not None
        else "deterministic int8 inputs (seeded) and TFLM's outputs",
        "check": {"runtime": target.runtime.name, "ops": [asdict(op) for op in verified.checked.ops.ops]},
        "accuracy": None if not scores else {"metric": scores[0].metric, "samples": scores[0].samples,
                                             **{s.stage: s.value for s in scores}},
        "agreement": asdict(verified.agreement),
        "memory": memory_section(verified, config),
        "fit": fit_section(verified),
        **closing_sections(config, target, verified, files, stage_seconds),
    }


def tflite_markdown(report: dict) -> str:
    memory, fit, accuracy = report["memory"], report["fit"], report["accuracy"]
    lines = [f"# {report['model']['name']}: {report['model']['source']} for {fit['board']}", "",
             f"An {report['model']['input']} ({report['model']['model_bytes']:,} B), for "
             f"{report['target']['runtime']['title']}.", "", "| stage | |", "|---|---|"]
    lines += [f"| {stage} | did not apply: {reason} |" for stage, reason in report["not_applied"].items()]
    lines += [f"| check | {', '.join(op['name'] for op in report['check']['ops'])}: all supported |",
              "| accuracy | " + ((f"float {accuracy['float']:.4g}, " if "float" in accuracy else "")
                                 + f"TFLM int8 {accuracy['tflm_int8']:.4g}, LiteRT int8 {accuracy['litert_int8']:.4g} "
                                  f"({accuracy['metric']}, {accuracy['samples']} samples)" if accuracy
                                  else "no data given: " + report["self_test"]) + " |",
              f"| LiteRT vs TFLM | {report['agreement']['differing_bytes']} of {report['agreement']['total_bytes']:,}"
              " output bytes differ |",
              f"| arena | host {memory['arena_aligned16']:,} B (search = emulation: "
              f"{memory['emulation_matches_search']}), board {memory['board_aligned16']:,} B, firmware "
              f"{memory['arena_firmware']:,} B |",
              f"| fit | flash {fit['flash_needed']:,} / {fit['flash_limit']:,} B, RAM {fit['ram_needed']:,} / "
              f"{fit['ram_limit']:,} B: {'fits' if fit['fits'] else 'does not fit'} |",
              "", "Files: " + ", ".join(f"`{f}`" for f in report["firmware"]["files"]), ""]
    return "\n".join(lines)


def write_tflite_reports(folder: Path, config, target, prebuilt, verified, files, stage_seconds) -> dict:
    report = tflite_report(config, target, prebuilt, verified, files + ["report.json", "report.md"], stage_seconds)
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (folder / "report.md").write_text(tflite_markdown(report))
    return report

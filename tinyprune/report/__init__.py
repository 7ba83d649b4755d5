"""Stage 7: what the build did, as report.json for machines, report.md and report.html for people."""
from __future__ import annotations

import json
from pathlib import Path

from tinyprune.report.html import render_html
from tinyprune.report.markdown import render_markdown
from tinyprune.report.schema import build_report


def write_reports(folder: Path, config, target, loaded, trained, pruned, verified, files, stage_seconds) -> dict:
    report = build_report(config, target, loaded, trained, pruned, verified,
                          files + ["report.html", "report.json", "report.md"], stage_seconds)
    (folder / "report.json").write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    (folder / "report.md").write_text(render_markdown(report))
    (folder / "report.html").write_text(render_html(report))
    return report


def render_pages(report: dict) -> dict[str, str]:
    """report.md and report.html of a report.json: a Keras build's, or a model's taken as it is."""
    if "not_applied" in report:
        from tinyprune.report.prebuilt import tflite_html, tflite_markdown

        return {"report.md": tflite_markdown(report), "report.html": tflite_html(report)}
    return {"report.md": render_markdown(report), "report.html": render_html(report)}


def add_device_section(folder: Path, part: str, section: dict) -> dict:
    """Put what was measured on the board (`flash` or `evaluation`) into an existing build's reports."""
    folder = Path(folder)
    report = json.loads((folder / "report.json").read_text())
    report["device"] = {**(report.get("device") or {}), part: section}
    rewrite_reports(folder, report)
    return report


def rewrite_reports(folder: Path, report: dict) -> None:
    """An existing build's report.json, report.md and report.html replaced by `report`'s, each file whole so
    an interrupted write never leaves half a report. A report the templates no longer read (an older build)
    keeps the new figures in report.json alone."""
    import os

    from tinyprune.errors import TinypruneError

    files = {"report.json": json.dumps(report, indent=2, sort_keys=False) + "\n"}
    try:
        files.update(render_pages(report))
    except Exception as exc:  # jinja2's UndefinedError: a field this version's report has and that one lacks
        problem = f"{folder}/report.md and report.html were not updated ({type(exc).__name__}: {exc})"
    else:
        problem = None
    for name, text in files.items():
        staged = folder / f".{name}.partial"
        staged.write_text(text)
        os.replace(staged, folder / name)
    if problem:
        raise TinypruneError(problem + "; report.json holds the measurement",
                             "rebuild the folder with this tinyprune version to get the pages too")

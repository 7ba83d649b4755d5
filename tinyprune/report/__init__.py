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

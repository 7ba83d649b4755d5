"""report.html: rendered from a real build's report dict, self-contained, escaped, deterministic,
tolerant of every pruning method's details, and drawn by a real browser (headless Chromium)."""
import base64
import copy
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyprune.report import plots
from tinyprune.report.html import render_html

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
WINDOW = (1280, 2400)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    """The report dict of a real, short demo build (it trains: the tests using it are slow), the exact
    content of its report.json."""
    from tinyprune.pipeline import build, demo_config

    out = tmp_path_factory.mktemp("report_html") / "demo"
    report = build(demo_config(str(out), train_epochs=3, fine_tune_epochs=1)).report
    assert json.loads((out / "report.json").read_text()) == report
    return report


def images(page: str) -> list[bytes]:
    return [base64.b64decode(uri) for uri in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def png_shape(png: bytes) -> tuple[int, int]:
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(png), format="png").shape[:2]


def variant(report: dict, **changes) -> dict:
    """A deep copy of the report with dotted keys replaced, e.g. {"accuracy.metric": "mse"}."""
    changed = copy.deepcopy(report)
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = changed
        for key in path:
            node = node[key]
        node[last] = value
    return changed


@pytest.mark.slow
def test_page_is_self_contained_with_every_plot_inline(demo_report):
    page = render_html(demo_report)
    assert not re.search(r"(src|href)=\"(?!data:image/png;base64,)", page)
    assert "http://" not in page and "https://" not in page and "url(" not in page
    pngs = images(page)
    # stage times, accuracy per stage, confusion matrix, board budget, sparsity per layer
    assert len(pngs) == 5
    for png in pngs:
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        height, width = png_shape(png)
        assert width >= 300 and height >= 200


@pytest.mark.slow
def test_page_states_the_report_figures(demo_report):
    page = render_html(demo_report)
    accuracy = demo_report["accuracy"]
    assert f"{accuracy['tflm_int8'] * 100:.2f} %" in page
    assert f"{accuracy['float'] * 100:.2f} %" in page
    assert f"{demo_report['fit']['flash_needed']:,} B" in page
    assert f"{demo_report['fit']['ram_limit']:,} B" in page
    memory = demo_report["memory"]
    for key in ("arena_exact", "arena_aligned16", "arena_firmware", "board_aligned16", "lower_bound"):
        assert key not in memory or f"{memory[key]:,} B</td>" in page
    for op in demo_report["check"]["ops"]:  # the standalone C (the default firmware) has no op resolver
        assert f"{op['resolver_method']}()" in page if op["resolver_method"] else "<code>—</code>" in page
    for build in demo_report["builds"]:  # the backends side by side
        assert f"{build['flash_needed']:,} B" in page and f"<code>{build['folder']}</code>" in page
    for layer, achieved in demo_report["prune"]["details"]["achieved_sparsity"].items():
        assert re.search(rf"<td>{layer}</td><td class=\"num\">[^<]*</td><td class=\"num\">{achieved * 100:.2f} %",
                         page)
    for stage, seconds in demo_report["run"]["stage_seconds"].items():
        assert f"<td>{stage}</td><td class=\"num\">{seconds:.1f}</td>" in page
    matrix = np.array(accuracy["confusion_float_vs_tflm"])
    assert matrix.sum() == accuracy["samples"]
    assert f"<b>{matrix.sum() - np.trace(matrix)}</b> sample" in page
    assert f"Seed <b>{demo_report['seed']}</b>" in page
    assert f"<td>tflite-micro</td><td>{demo_report['versions']['tflite-micro']}</td>" in page


@pytest.mark.slow
def test_model_card_is_what_the_recommended_firmware_stores(demo_report):
    """The demo's firmware is the standalone C: its card is the weights it stores (sparse), not the
    flatbuffer, which is named beside it; the markdown says the same."""
    from tinyprune.report.markdown import render_markdown

    stored = demo_report["builds"][0]["stored_model"]
    assert demo_report["builds"][0]["backend"] == "standalone"
    assert stored["weight_bytes"] == demo_report["standalone"]["model"]["weight_bytes_stored"]
    assert stored["weight_bytes"] < demo_report["quantize"]["model_bytes"]
    page = render_html(demo_report)
    assert re.search(rf'model in the firmware</div>\s*<div class="value">{stored["weight_bytes"]:,} B</div>\s*'
                     rf'<div class="note">weights as the standalone firmware stores them \({stored["model_bytes"]:,} '
                     rf'B of constants in all\); TFLite flatbuffer {demo_report["quantize"]["model_bytes"]:,} B', page)
    assert f"| model in the firmware | {stored['weight_bytes']:,} B: weights" in render_markdown(demo_report)


@pytest.mark.slow
def test_text_is_escaped(demo_report):
    hostile = "<script>alert('x')</script>"
    page = render_html(variant(demo_report, **{"model.name": hostile, "prune.details.note": hostile,
                                               "firmware.files": [hostile]}))
    assert "<script>" not in page
    assert page.count("&lt;script&gt;") >= 3


@pytest.mark.slow
def test_same_report_gives_the_same_bytes_in_a_fresh_process(demo_report, tmp_path):
    """No timestamp, version string or font cache state may leak into the PNGs."""
    page = render_html(demo_report)
    assert render_html(copy.deepcopy(demo_report)) == page
    report_file = tmp_path / "report.json"
    report_file.write_text(json.dumps(demo_report))
    fresh = subprocess.run(
        [sys.executable, "-c", "import json, sys, tinyprune; from tinyprune.report.html import render_html; "
                               "sys.stdout.write(render_html(json.load(open(sys.argv[1]))))", str(report_file)],
        capture_output=True, text=True, check=True, cwd=ROOT)
    assert fresh.stdout == page


def test_plots_follow_their_figures():
    """Deterministic, yet not constant: a different figure gives a different picture."""
    scores = {"float": 0.97, "pruned": 0.96, "litert_int8": 0.955, "tflm_int8": 0.955}
    first = plots.accuracy_per_stage(scores, "accuracy")
    assert plots.accuracy_per_stage(dict(scores), "accuracy") == first
    assert plots.accuracy_per_stage({**scores, "tflm_int8": 0.90}, "accuracy") != first
    assert png_shape(first) == (round(3.4 * plots.DPI), round(6.0 * plots.DPI))
    assert b"Software" not in first and b"matplotlib" not in first.lower()


@pytest.mark.slow
def test_regression_report_has_no_confusion_matrix(demo_report):
    report = variant(demo_report, **{"accuracy.metric": "mse", "accuracy.float": 0.0123,
                                     "accuracy.pruned": 0.0151, "accuracy.litert_int8": 0.0162,
                                     "accuracy.tflm_int8": 0.0160, "accuracy.confusion_float_vs_tflm": None})
    page = render_html(report)
    assert "confusion matrix" not in page
    assert "MSE per stage" in page and "0.016</td>" in page
    assert len(images(page)) == 4


@pytest.mark.slow
@pytest.mark.parametrize("method, details, chart", [
    ("structured", {"criterion": "l1", "ratio": 0.5,
                    "layers": {"conv2d": {"units_before": 16, "units_after": 8, "ratio": 0.5, "tied_with": []}},
                    "macs_before": 91776, "macs_after": 40000}, True),
    ("lottery", {"rounds": [{"round": 1, "remaining_weights": 0.8, "test_accuracy": 0.95}],
                 "layer_remaining": {"conv2d": 0.8, "dense": 0.64}, "ticket_accuracy": 0.95}, True),
    ("cluster", {"clusters": 16, "kernel_clusters": {"dense": 16}, "achieved_sparsity": {"dense": 0.0}}, True),
    ("lassonet", {"lambda_path": [0.1, 0.2], "selected_features": [1, 2, 3]}, False),
    ("custom", {}, False),
])
def test_every_pruning_method_renders(demo_report, method, details, chart):
    page = render_html(variant(demo_report, **{"prune.method": method, "prune.details": details}))
    assert f"Pruning: {method}" in page
    assert (' per layer">' in page) == chart
    assert len(images(page)) == 4 + chart
    charted = {"achieved_sparsity", "target_sparsity", "layer_remaining"}
    assert all(key in page for key in details if key not in charted)


@pytest.mark.slow
def test_sweep_section_plots_accuracy_against_flash(demo_report):
    assert "Sweep" not in render_html(demo_report)
    points = [{"sparsity": s, "flash_bytes": 90_000 - int(s * 20_000), "accuracy": 0.97 - s / 10, "label": f"{s:.0%}"}
              for s in (0.5, 0.75, 0.9)]
    page = render_html(variant(demo_report, sweep={"points": points, "board_flash_limit": 1_048_576}))
    assert "Sweep: accuracy vs size" in page and "1,048,576 B" in page
    assert len(images(page)) == 6
    assert "<td class=\"num\">75%</td>" in page
    as_list = render_html(variant(demo_report, sweep=points))
    assert len(images(as_list)) == 6


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: Path, png: Path, profile: Path) -> None:
    subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                    f"--window-size={WINDOW[0]},{WINDOW[1]}", page.resolve().as_uri()],
                   capture_output=True, timeout=120, check=True)


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="Debian's chromium is not installed (tests/run.sh installs it)")
def test_headless_chromium_draws_the_page(demo_report, tmp_path):
    import matplotlib.image

    page = tmp_path / "report.html"
    page.write_text(render_html(demo_report))
    png = tmp_path / "report.png"
    screenshot(page, png, tmp_path / "profile")
    pixels = matplotlib.image.imread(png)[..., :3]
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    assert pixels.std() > 0.05  # not a blank page
    # The TFLM colour fills the plots' TFLM bar; the CSS uses it only for text and a border (~1,800 pixels
    # when the images are missing, ~14,000 when they are drawn).
    tflm = np.array([int(plots.TFLM_COLOUR[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    assert np.count_nonzero(np.abs(pixels - tflm).max(axis=-1) < 0.02) > 6000


@pytest.mark.slow
def test_a_comparison_build_that_was_not_proven_says_why_in_both_pages(demo_report):
    """A build beside the firmware whose proof failed (report.json builds[].proof_failure, as
    Build.figures() writes it): its cell says "not proven" rather than "not run", and the reason follows."""
    from tinyprune.backends.base import proof_figures
    from tinyprune.report.markdown import render_markdown

    why = "the sketch does not compile against /lib: model_data.cpp: error"
    report = copy.deepcopy(demo_report)
    assert [b["backend"] for b in report["builds"]] == ["standalone", "tflm"]
    report["builds"][1].update(proof_figures({}, why))
    page, text = render_html(report), render_markdown(report)
    assert f"<li>tflm, not proven here: {why}.</li>" in page and f"- tflm, not proven here: {why}." in text
    assert page.count(">not proven</td>") == 1 and text.count("| not measured | not proven |") == 1


@pytest.mark.slow
def test_each_builds_flash_says_whether_it_was_measured(demo_report):
    """The standalone C's flash is its linked firmware's; the TFLM sketch's an estimate for the board's core
    (a --prove qemu build's text + data links a stand-in core, so it is not that figure): both pages say which."""
    from tinyprune.report.markdown import render_markdown

    standalone, tflm = demo_report["builds"]
    assert standalone["flash_basis"].startswith("measured") and not tflm["flash_basis"].startswith("measured")
    page, text = render_html(demo_report), render_markdown(demo_report)
    for build, word in ((standalone, "measured"), (tflm, "estimate")):
        cell = f"{build['flash_needed']:,} B ({word})"
        assert f"| {cell} |" in text and f">{cell}</td>" in page

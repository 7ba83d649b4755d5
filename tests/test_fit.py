"""`tinyprune fit`: the grid search (fast, with a fake build: no TensorFlow) and one real search on digits."""
import json
from pathlib import Path

import pytest

from tinyprune.errors import TinypruneError
from tinyprune.fit import search

LADDERS = {"ratio": [0.0, 0.5], "sparsity": [0.0, 0.5, 0.75, 0.9], "clusters": [0, 16, 4]}


def fake_build(log):
    """Flash shrinks and accuracy drops with every rung of every knob; sparsity 0.9 and ratio 0.5 with
    4 clusters break a 1-point budget."""
    def build_wave(wave):
        log.append(wave)
        results = []
        for s in wave:
            steps = LADDERS["sparsity"].index(s["sparsity"]) + 2 * (s["ratio"] > 0) + LADDERS["clusters"].index(s["clusters"])
            loss = 0.003 * steps + (0.05 if s["sparsity"] == 0.9 else 0.0)
            results.append({"flash_bytes": 10_000 - 1_000 * steps - (300 if s["ratio"] else 0),
                            "accuracy": 0.97 - loss, "float_accuracy": 0.97})
        return results
    return build_wave


def test_search_finds_the_smallest_within_budget_and_never_builds_a_decided_point():
    log = []
    searched = search(LADDERS, fake_build(log), max_loss=0.01, max_builds=48, wave_size=2)
    built = [s for wave in log for s in wave]
    assert all(len(wave) <= 2 for wave in log)
    assert len(built) == len(searched.tried) < 2 * 4 * 3  # the monotone assumptions spared builds
    assert len(searched.tried) + len(searched.skipped) == 2 * 4 * 3
    within = [t for t in searched.tried if t["within_budget"]]
    assert all(t["accuracy"] >= 0.96 - 1e-9 for t in within)
    assert searched.chosen == min(within, key=lambda t: t["flash_bytes"])
    # 3 steps is the most 1 point allows (0.009): ratio 0.5 plus one more rung, the extra 300 B wins
    assert searched.chosen["ratio"] == 0.5 and searched.chosen["flash_bytes"] == 10_000 - 3_000 - 300
    assert not any(s["sparsity"] == 0.9 and s["ratio"] == 0.5 and s["clusters"] == 4 for s in built)
    assert any("broke the budget" in s["reason"] for s in searched.skipped)
    assert any("within it" in s["reason"] for s in searched.skipped)
    assert built[0] == {"ratio": 0.0, "sparsity": 0.0, "clusters": 0}  # knobs alone, gentlest first
    assert not any(s["sparsity"] == 0.9 and s["clusters"] for s in built)  # sparsity 0.9 alone broke it


def test_search_stops_at_max_builds_and_says_what_it_left():
    log = []
    searched = search(LADDERS, fake_build(log), max_loss=0.01, max_builds=3, wave_size=2)
    assert [len(wave) for wave in log] == [1, 2]
    assert any(s["reason"] == "not built: --max-builds reached" for s in searched.skipped)
    assert searched.chosen is not None and searched.chosen["within_budget"]


def test_search_refuses_an_empty_ladder_and_no_builds():
    with pytest.raises(TinypruneError, match="sparsity ladder is empty"):
        search({**LADDERS, "sparsity": []}, fake_build([]), 0.01, 5)
    with pytest.raises(TinypruneError, match="max_builds"):
        search(LADDERS, fake_build([]), 0.01, 0)


def test_fit_refuses_too_few_builds_for_its_backends(tmp_path):
    from tinyprune.config import load_config
    from tinyprune.fit import fit_builds

    with pytest.raises(TinypruneError, match="leaves no build for the search"):
        fit_builds(load_config(None, out=str(tmp_path / "fit")), backends=("standalone", "tflm"), max_builds=1)
    with pytest.raises(TinypruneError, match="not whole numbers"):
        fit_builds(load_config(None, out=str(tmp_path / "fit")), {"clusters": [0, 2.5]})
    with pytest.raises(TinypruneError, match="built as it is"):
        fit_builds(load_config(None, model="kws.tflite", out=str(tmp_path / "fit")))
    assert not (tmp_path / "fit").exists()


def fake_point(base: dict, point: dict) -> dict:
    """One build without TensorFlow, run in a worker process: figures from the options alone, and the
    point's folder written as a build would."""
    options = point["options"]
    steps = options["sparsity"] * 4 + (options["method"] == "structured") + (options["clusters"] > 0)
    standalone = options["backend"] == "standalone"
    Path(options["out"]).mkdir(parents=True)
    (Path(options["out"]) / "report.json").write_text(json.dumps({"config": options}))
    return {"flash_bytes": int((8_000 if standalone else 70_000) - 1_000 * steps), "model_bytes": 1, "arena_bytes": 1,
            "accuracy": 0.97 - 0.004 * steps, "float_accuracy": 0.97, "fits": True,
            "report": {"standalone": {"model": {"constant_bytes": int(2_000 - 100 * steps)}} if standalone else None}}


def test_fit_writes_every_build_and_marks_the_smallest_within_budget(tmp_path, monkeypatch):
    from tinyprune.config import load_config
    from tinyprune.fit import fit_builds

    pages = []  # report.html needs a real build's report: the slow test renders it
    monkeypatch.setattr("tinyprune.sweep.write_sweep_page", lambda folder, report, points, *rest: pages.append(
        (report, points)))

    out = tmp_path / "fit"
    config = load_config(None, out=str(out))
    result = fit_builds(config, {"ratio": [0.0, 0.5], "sparsity": [0.0, 0.5, 0.75], "clusters": [0, 4]},
                        max_loss=0.01, max_builds=13, workers=2, build_point=fake_point)
    # within 1 point: 2 steps (0.008); ratio + clusters (2 steps) and sparsity 0.5 (2 steps) tie on bytes
    assert result.chosen["backend"] == "standalone" and result.chosen["flash_bytes"] == 6_000
    assert result.chosen["constant_bytes"] == 1_800
    assert [t["backend"] for t in result.tried].count("tflm") == 1  # the chosen settings rebuilt on tflm
    assert {"fit.md", "fit.csv", "fit.png", "fit.json"} <= set(result.files)
    assert (out / result.chosen_build / "report.json").is_file()
    [(page_report, page_points)] = pages
    assert page_report["config"]["out"].endswith(result.chosen_build)
    assert page_points == [{k: v for k, v in t.items() if k != "label"} for t in result.tried]
    saved = json.loads((out / "fit.json").read_text())
    assert saved["chosen"] == result.chosen and len(saved["tried"]) + len(saved["skipped"]) == 12 + 1
    assert len(saved["skipped"]) >= 3  # every combination with sparsity 0.75, which broke the budget alone
    table = (out / "fit.md").read_text()
    assert "Smallest within budget: 6000 B" in table and "`r0.0_s0.5_k0_standalone`" in table and "which broke the budget" in table
    assert not list(tmp_path.glob(".fit.*"))  # no staging folder left


@pytest.mark.slow
def test_fit_on_digits_chooses_the_smallest_build_within_budget(tmp_path, capfd):
    from tinyprune.cli import main

    out = tmp_path / "fit"
    assert main(["fit", "--out", str(out), "--ratio-values", "0", "--sparsity-values", "0.5,0.9",
                 "--cluster-values", "0", "--backends", "standalone", "--max-builds", "3", "--max-loss", "0.05",
                 "--train-epochs", "4", "--fine-tune-epochs", "2", "--workers", "2", "--json"]) == 0
    result = json.loads(capfd.readouterr().out)
    tried = result["tried"]
    assert 1 <= len(tried) <= 3
    within = [t for t in tried if t["accuracy"] >= t["float_accuracy"] - 0.05 - 1e-9]
    chosen = result["chosen"]
    assert chosen is not None and chosen in tried
    assert chosen["flash_bytes"] == min(t["flash_bytes"] for t in within)
    assert chosen["constant_bytes"] > 0
    assert {"fit.md", "fit.csv", "fit.png", "fit.json", "report.html"} <= set(result["files"])
    assert (out / "points" / result["chosen_build"].split("/")[-1] / "report.json").is_file()
    assert "Smallest within budget" in (out / "fit.md").read_text()
    assert "accuracy against flash bytes over the sweep" in (out / "report.html").read_text()


def test_fit_refuses_a_knob_it_searches_in_one_line(capfd):
    from tinyprune.cli import main

    assert main(["fit", "--sparsity", "0.5", "--out", "never-written"]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "--sparsity-values" in err

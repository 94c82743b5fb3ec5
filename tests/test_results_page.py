"""The results page and the README's results table are generated from the benchmark records, and only from them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
spec = importlib.util.spec_from_file_location("make_results_page", ROOT / "benchmarks" / "make_results_page.py")
page = importlib.util.module_from_spec(spec)
spec.loader.exec_module(page)


def test_results_page_and_readme_table_are_up_to_date():
    assert page.main(["--check"]) == 0, "run python benchmarks/make_results_page.py and commit the result"


def test_every_record_says_how_and_where_it_was_measured():
    for record in page.load_records():
        run = record["run"]
        assert run["command"] and run["commit"] and run["date"] and run["machine"]["cpu_count"], record["file"]
        assert record["headline"], f"{record['file']} has no headline figure"
        for anchor in record["anchors"]:
            assert anchor["source"] and anchor["measured_here"] is False


def test_a_figure_changed_in_a_record_changes_the_page(tmp_path):
    record = {"name": "demo", "application": "qm9", "title": "QM9 demo", "file": "demo.json",
              "headline": [{"metric": "test MAE", "value": 0.8123, "unit": "kcal/mol", "spread": None,
                            "baseline": {"label": "SOAP + ridge", "value": 1.1}, "note": ""}],
              "tables": [], "anchors": [], "notes": [],
              "run": {"command": "wavephase qm9 --out runs/q", "commit": "abc1234", "date": "2026-12-05T00:00:00",
                      "machine": {"cpu_count": 2, "processor": "x86_64", "torch_threads": 2, "gpu": None}}}
    text = page.render_page([record])
    assert "0.812 kcal/mol" in text and "abc1234" in text and "SOAP + ridge: 1.1" in text
    record["headline"][0]["value"] = 0.4567
    assert "0.457 kcal/mol" in page.render_page([record])
    assert "wavephase qm9 --out runs/q" in page.render_readme_block([record])
    json.dumps(record)  # records are plain JSON


def _benchmark_module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generation_run(folder: Path, fsd: float, vae: float, command: str, commit: str = "abc1234") -> dict:
    run = {"command": command, "commit": commit, "date": "2026-12-05T00:00:00+00:00",
           "machine": {"cpu_count": 2, "processor": "x86_64", "torch_threads": 2, "gpu": None}}
    metrics = {"dataset": "polygons", "n_train": 1500, "fsd_samples": fsd, "fsd_vae_baseline": vae,
               "fsd_gaussian_baseline": 99.3, "fsd_train_images": 9.1, "interp_nearest_train_rmse": 0.13,
               "blend_nearest_train_rmse": 0.18, "psnr_train": 19.4, "psnr_test": 18.8,
               "refine_lowpass_error": 0.005, "generator_parameters": 1, "vae_parameters": 1, "n_components": 64,
               "epochs": 4, "vae_epochs": 8, "fit_seconds": 1.0, "vae_seconds": 1.0, "run": run}
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return run


def test_a_documented_run_becomes_a_record_with_its_own_command(tmp_path):
    module = _benchmark_module("record_experiment")
    run = _generation_run(tmp_path / "g", 35.3, 31.9, "wavephase generate --dataset polygons --out runs/g")
    target = module.record_from_metrics(tmp_path / "g", "generation", str(tmp_path / "generation.json"))
    record = json.loads(target.read_text()) | {"file": "generation.json"}
    assert record["run"] == run and record["application"] == "generation"
    (h,) = record["headline"]
    assert h["value"] == 35.3 and h["baseline"]["value"] == 31.9
    assert "35.3" in page.render_page([record]) and "wavephase generate" in page.render_readme_block([record])


def test_seed_runs_give_the_median_and_spread_of_each_headline(tmp_path):
    module = _benchmark_module("record_experiment")
    for seed, fsd, vae in [(0, 35.3, 31.9), (1, 30.1, 33.0), (2, 40.2, 30.0)]:
        flag = "" if seed == 0 else f" --seed {seed}"
        _generation_run(tmp_path / f"seed-{seed}", fsd, vae,
                        f"wavephase generate --dataset polygons{flag} --out runs/seed-{seed}")
    target = module.record_from_metrics(tmp_path / "seed-0", "generation", str(tmp_path / "g.json"),
                                        seed_folders=[tmp_path / "seed-1", tmp_path / "seed-2"])
    record = json.loads(target.read_text()) | {"file": "g.json"}
    (h,) = record["headline"]
    assert h["value"] == 35.3 and h["spread"] == [30.1, 40.2] and h["baseline"]["value"] == 31.9
    per_seed = record["tables"][0]
    assert [row[0] for row in per_seed["rows"]] == [0, 1, 2]
    assert [row[1] for row in per_seed["rows"]] == [35.3, 30.1, 40.2]
    assert "medians over the seeds [0, 1, 2]" in record["notes"][0]
    assert "35.3 (30.1–40.2)" in page.render_page([record])


def test_seed_runs_of_different_commands_or_commits_are_refused(tmp_path):
    module = _benchmark_module("record_experiment")
    _generation_run(tmp_path / "a", 35.3, 31.9, "wavephase generate --dataset polygons --out a")
    _generation_run(tmp_path / "b", 30.1, 33.0, "wavephase generate --dataset polygons --epochs 9 --seed 1 --out b")
    _generation_run(tmp_path / "c", 30.1, 33.0, "wavephase generate --dataset polygons --seed 1 --out c", "def5678")
    _generation_run(tmp_path / "d", 30.1, 33.0, "wavephase generate --dataset polygons --seed=0 --out d")
    for other, message in [("b", "differing only by --seed"), ("c", "different commits"), ("d", "share a seed")]:
        with pytest.raises(SystemExit, match=message):
            module.record_from_metrics(tmp_path / "a", "g", str(tmp_path / "g.json"), seed_folders=[tmp_path / other])


def test_seed_spread_skips_the_seeds_already_run(tmp_path):
    module = _benchmark_module("seed_spread")
    args = ["generate", "--dataset", "polygons"]
    _generation_run(tmp_path / "seed-1", 30.1, 33.0, "wavephase generate --dataset polygons --seed 1 --out x")
    _generation_run(tmp_path / "seed-2", 30.1, 33.0, "main.py generate --dataset mnist --seed 2 --out y")
    assert module.is_complete(tmp_path / "seed-1", args)
    assert not module.is_complete(tmp_path / "seed-2", args)  # another command in that folder
    assert not module.is_complete(tmp_path / "seed-3", args)
    with pytest.raises(SystemExit):
        module.main(["--name", "g", "--work", str(tmp_path), "--seeds", "0", "1", "--", *args, "--seed", "4"])


def test_a_record_table_shows_the_errors_of_scored_rows():
    module = _benchmark_module("record_experiment")
    from wavephase.report.section import comparison, row

    comp = comparison("t", [row("energy", -1.39, -1.04, -1.42, error_ours=0.022, error_baseline=0.27, error="rel"),
                            row("spectrum", None, None, None, error_ours=0.16, error_baseline=0.19, error="rms"),
                            row("seconds", 3.0, 4.0)],
                      ours_label="synthesis", baseline_label="Gaussian", truth_label="truth")
    table = module._table(comp)
    assert table["columns"] == ["metric", "truth", "synthesis", "Gaussian", "error: synthesis", "error: Gaussian"]
    # a vector statistic has no value to show, only its error; an unscored row has no error
    assert table["rows"] == [["energy", -1.42, -1.39, -1.04, 0.022, 0.27], ["spectrum", None, None, None, 0.16, 0.19],
                             ["seconds", None, 3.0, 4.0, None, None]]

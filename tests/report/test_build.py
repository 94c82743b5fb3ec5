"""build_report: kept section results (resume), failures, earlier runs included as sections."""

import json

import pytest

from wavephase.report import Section, build_report, comparison, headline, row

CALLS = []
STEPS = []


def _counting(out, settings):
    CALLS.append(dict(settings))
    (out / "figure.png").write_bytes(b"\x89PNG fake figure " * 100)
    return {"headlines": [headline("Fake", "error", settings["ours"], 2.0, ours_label="ours",
                                   baseline_label="the baseline")],
            "comparisons": [comparison("t", [row("error", settings["ours"], 2.0)], ours_label="ours",
                                       baseline_label="the baseline")],
            "figures": {"a figure": "figure.png"}}


def _section(ours=1.0):
    return Section("fake", "A fake section", _counting, quick={"ours": ours}, full={"ours": ours},
                   expected_seconds=(1, 2))


def test_a_full_report_reuses_kept_sections_with_the_same_settings(tmp_path):
    CALLS.clear()
    build_report(tmp_path, quick=False, sections=[_section()])
    build_report(tmp_path, quick=False, sections=[_section()])
    assert len(CALLS) == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["sections"][0]["origin"] == "reused"
    assert "Reused from an earlier full report" in (tmp_path / "index.html").read_text()
    build_report(tmp_path, quick=False, sections=[_section(ours=3.0)])  # other settings: run again
    assert len(CALLS) == 2 and CALLS[-1] == {"ours": 3.0}
    assert "behind the baseline on error" in (tmp_path / "index.html").read_text()


@pytest.mark.parametrize("damage", ["section", "figure", "missing figure"])
def test_a_damaged_kept_section_is_run_again(tmp_path, damage):
    CALLS.clear()
    build_report(tmp_path, quick=False, sections=[_section()])
    if damage == "section":
        kept = tmp_path / "fake" / "section.json"
        kept.write_bytes(kept.read_bytes()[:-10])
    elif damage == "figure":
        (tmp_path / "fake" / "figure.png").write_bytes(b"another figure")
    else:
        (tmp_path / "fake" / "figure.png").unlink()
    build_report(tmp_path, quick=False, sections=[_section()])
    assert len(CALLS) == 2


def test_a_quick_report_computes_every_number_afresh_unless_asked(tmp_path):
    CALLS.clear()
    build_report(tmp_path, quick=True, sections=[_section()])
    build_report(tmp_path, quick=True, sections=[_section()])
    assert len(CALLS) == 2
    build_report(tmp_path, quick=True, sections=[_section()], resume=True)
    assert len(CALLS) == 2


def _classify_run(folder, model, error):
    folder.mkdir(parents=True)
    (folder / "confusion.png").write_bytes(b"\x89PNG confusion")
    (folder / "metrics.json").write_text(json.dumps({
        "dataset": "mnist", "model": model, "test_error": error, "test_accuracy": 1 - error, "train_size": 60000,
        "test_size": 10000, "evaluated_on": "test set", "feature_seconds": 60.0, "fit_seconds": 600.0,
        "seconds": 700.0, "run": {"command": f"wavephase classify --model {model}", "commit": "abc1234",
                                  "date": "2026-01-02T03:04:05+00:00", "machine": {"processor": "x86_64",
                                                                                    "cpu_count": 2}}}))


def test_earlier_runs_are_included_with_their_provenance(tmp_path):
    runs = tmp_path / "runs"
    _classify_run(runs / "linear", "scattering-linear", 0.0075)
    _classify_run(runs / "sparse", "sparse-scattering", 0.0037)
    (runs / "notes").mkdir()
    (runs / "notes" / "metrics.json").write_text("{\"unrelated\": 1}")
    page = build_report(tmp_path / "report", sections=[], include=[runs])
    html = page.read_text()
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    (section,) = report["sections"]
    assert section["origin"] == "included" and section["status"] == "ok"
    (h,) = section["headlines"]
    assert (h["ours"], h["baseline"]) == pytest.approx((0.37, 0.75))
    for text in ("Included from an earlier run", "wavephase classify --model sparse-scattering", "abc1234",
                 "2026-01-02T03:04:05+00:00", "cpu_count 2", "beats scattering + linear on test error"):
        assert text in html, text
    for src in section["figures"].values():  # copied: the report folder stands alone
        assert (tmp_path / "report" / src).is_file() and src.startswith("included/")


def test_an_include_without_results_is_a_failed_section_and_a_missing_one_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    build_report(tmp_path / "report", sections=[], include=[tmp_path / "empty"])
    (section,) = json.loads((tmp_path / "report" / "report.json").read_text())["sections"]
    assert section["status"] == "failed" and "holds no metrics.json" in section["error"]
    with pytest.raises(ValueError, match="does not exist"):
        build_report(tmp_path / "report", sections=[], include=[tmp_path / "nowhere"])
    with pytest.raises(ValueError, match="unknown report sections"):
        build_report(tmp_path / "report", sections=[_section()], only=["nope"])


def _checkpointing(out, settings):
    # Like a driver: its checkpoint refuses other settings, and it stops once (a killed run) when asked to.
    from wavephase.runs import Checkpoint

    ckpt = Checkpoint(out / "driver.ckpt", settings, what="driver checkpoint", on_mismatch="raise")
    state = ckpt.load() or {"steps": 0}
    STEPS.append(state["steps"])
    ckpt.save({"steps": state["steps"] + 1})
    if settings.get("stop_once") and state["steps"] == 0:
        raise RuntimeError("stopped")
    return _counting(out, {"ours": 1.0})


def test_a_full_report_runs_where_a_quick_one_left_its_checkpoints(tmp_path):
    section = Section("fake", "fake", _checkpointing, quick={"size": 1}, full={"size": 2})
    build_report(tmp_path, quick=True, sections=[section])
    (tmp_path / "fake" / "stray.txt").write_text("left by the quick report")
    build_report(tmp_path, quick=False, sections=[section])  # another driver configuration: no StaleFileError
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["sections"][0]["status"] == "ok" and not (tmp_path / "fake" / "stray.txt").exists()


def test_an_interrupted_section_resumes_from_its_drivers_checkpoints(tmp_path):
    STEPS.clear()
    section = Section("fake", "fake", _checkpointing, full={"stop_once": True})
    build_report(tmp_path, quick=False, sections=[section])  # fails after one step
    build_report(tmp_path, quick=False, sections=[section])  # resumes from step 1
    assert STEPS == [0, 1]
    STEPS.clear()
    build_report(tmp_path, quick=False, sections=[section], resume=False)  # afresh: the folder is emptied
    assert STEPS == [0]

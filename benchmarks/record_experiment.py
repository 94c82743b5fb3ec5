"""Turn the ``metrics.json`` of a documented command into a record of the results page.

The applications' figures come from their commands (``wavephase qm9 --out runs/qm9``...),
which write ``metrics.json`` with the command, commit, date and machine that made them.
This script reads such a file through the report's summaries (the same headlines, baselines
of the same run and published anchors as the HTML report) and writes
``benchmarks/results/<name>.json``, keeping the run block of the measurement itself:

    python benchmarks/record_experiment.py runs/qm9 --name qm9
    python benchmarks/make_results_page.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from wavephase.report.include import find_runs, summarize_runs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import headline, write_record  # noqa: E402

def _cell(value: Any) -> Any:
    return "(curve)" if isinstance(value, list) else value


def _table(comp: dict[str, Any]) -> dict[str, Any]:
    keys = [k for k in ("truth", "ours", "baseline") if k != "truth" or comp.get("truth_label")]
    columns = ["metric", *[comp[f"{k}_label"] for k in keys]]
    return {"title": comp["title"], "columns": columns,
            "rows": [[r["metric"], *[_cell(r[k]) for k in keys]] for r in comp["rows"]]}


def record_from_metrics(folder: Path, name: str, path: str | None = None, title: str | None = None) -> Path:
    """Write the record of every ``metrics.json`` under ``folder`` (one application).

    Parameters
    ----------
    folder : Path
        Output folder of one documented command (classification folders may hold several runs).
    name : str
        File stem of the record.
    path : str, optional
        Where to write instead of ``benchmarks/results/<name>.json``.
    title : str, optional
        Heading on the results page (default: the application of the first headline),
        e.g. to tell two runs of one application apart.

    Returns
    -------
    Path
        The record written.
    """
    try:
        found = find_runs(folder)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    apps = {app for _, _, app in found}
    if len(apps) != 1:
        raise SystemExit(f"{folder} mixes applications {sorted(apps)}; record one at a time")
    app = apps.pop()
    runs = [(m, f) for m, f, _ in found]
    summaries = [summarize_runs(app, runs)] if app == "classification" else [summarize_runs(app, [r]) for r in runs]
    firsts = [s["headlines"][0]["application"] for s in summaries if s["headlines"]]
    headline_title = firsts[0] if firsts else name
    headlines, anchors, tables, notes = [], [], [], []
    for s in summaries:
        for h in s["headlines"]:
            base = (h["baseline_label"], h["baseline"]) if h["baseline"] is not None else None
            metric = h["metric"] if h["application"] == headline_title else f"{h['application']}: {h['metric']}"
            headlines.append(headline(metric, h["ours"], h["unit"], baseline=base, note=h["ours_label"]))
            if h.get("anchor"):
                value = h["anchor"]["value"]
                anchors.append({"label": f"{h['application']}: {h['metric']}", "value": value,
                                "unit": h["unit"] if isinstance(value, (int, float)) else "",
                                "source": h["anchor"]["source"]})
        tables += [_table(c) for c in s["comparisons"]]
        # The report's wording; here the baselines are fitted by this script.
        notes += [n.replace("by this report", "by benchmarks/record_experiment.py") for n in s["notes"]]
    run = found[0][0].get("run")
    return write_record(name, application=app, title=title or headline_title,
                        headlines=headlines, tables=tables, anchors=anchors, notes=notes, path=path, run=run)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``record_experiment.py FOLDER --name NAME``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="output folder of a wavephase command (or its metrics.json)")
    parser.add_argument("--name", required=True, help="record file stem, e.g. qm9")
    parser.add_argument("--record", help="write here instead of benchmarks/results/NAME.json")
    parser.add_argument("--title", help="heading on the results page (default: the application's headline)")
    args = parser.parse_args(argv)
    record_from_metrics(args.folder, args.name, args.record, args.title)


if __name__ == "__main__":
    main()

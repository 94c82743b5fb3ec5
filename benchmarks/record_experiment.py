"""Turn the ``metrics.json`` of a documented command into a record of the results page.

The applications' figures come from their commands (``wavephase qm9 --out runs/qm9``...),
which write ``metrics.json`` with the command, commit, date and machine that made them.
This script reads such a file through the report's summaries (the same headlines, baselines
of the same run and published anchors as the HTML report) and writes
``benchmarks/results/<name>.json``, keeping the run block of the measurement itself:

    python benchmarks/record_experiment.py runs/qm9 --name qm9
    python benchmarks/make_results_page.py

With ``--seed-runs``, the folders of the same command run with other ``--seed`` values
(``benchmarks/seed_spread.py`` makes them) turn each headline into its median over the
seeds, with its spread.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence

from wavephase.report.include import find_runs, summarize_runs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import headline, write_record  # noqa: E402


def _cell(value: Any) -> Any:
    return "(curve)" if isinstance(value, list) else value


def _table(comp: dict[str, Any]) -> dict[str, Any]:
    keys = [k for k in ("truth", "ours", "baseline") if k != "truth" or comp.get("truth_label")]
    columns = ["metric", *[comp[f"{k}_label"] for k in keys]]
    rows = [[r["metric"], *[_cell(r[k]) for k in keys]] for r in comp["rows"]]
    if any(r.get("scored_on") for r in comp["rows"]):
        # errors against the truth, which the verdicts compare: the only figures of vector statistics
        columns += [f"error: {comp['ours_label']}", f"error: {comp['baseline_label']}"]
        for cells, r in zip(rows, comp["rows"]):
            cells += [r["score_ours"], r["score_baseline"]] if r.get("scored_on") else [None, None]
    return {"title": comp["title"], "columns": columns, "rows": rows}


def _collect(folder: Path) -> dict[str, Any]:
    """Headlines, anchors, tables, notes and run block of every ``metrics.json`` under ``folder``."""
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
    headline_title = firsts[0] if firsts else folder.name
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
    return {"application": app, "title": headline_title, "headlines": headlines, "anchors": anchors,
            "tables": tables, "notes": notes, "run": found[0][0].get("run") or {}}


def command_without_seed(command: str) -> list[str]:
    """The arguments of a recorded command without its program name, ``--seed`` and ``--out``.

    Two runs whose commands agree on these differ only by their seed (and where they wrote).
    """
    tokens, kept = shlex.split(command)[1:], []
    skip = False
    for token in tokens:
        if skip:
            skip = False
        elif token in ("--seed", "--out"):
            skip = True
        elif not token.startswith(("--seed=", "--out=")):
            kept.append(token)
    return kept


def seed_of(command: str) -> int:
    """The ``--seed`` of a recorded command (0, the commands' default, when it has none)."""
    tokens = shlex.split(command)
    for i, token in enumerate(tokens):
        if token == "--seed" and i + 1 < len(tokens):
            return int(tokens[i + 1])
        if token.startswith("--seed="):
            return int(token.split("=", 1)[1])
    return 0


def _with_seed_spread(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first run's record with every headline replaced by its median over the runs, and its spread.

    The runs must be one command at one commit, differing only by ``--seed`` (and ``--out``).
    """
    commands = [r["run"].get("command", "") for r in runs]
    if len({tuple(command_without_seed(c)) for c in commands}) != 1:
        raise SystemExit("the seed runs are not one command differing only by --seed and --out:\n  "
                         + "\n  ".join(commands))
    commits = sorted({str(r["run"].get("commit")) for r in runs})
    if len(commits) != 1:
        raise SystemExit(f"the seed runs come from different commits {commits}; rerun them at one commit")
    seeds = [seed_of(c) for c in commands]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"two runs share a seed: {seeds}")
    first = runs[0]
    per_seed = []
    for i, h in enumerate(first["headlines"]):
        others = [next((g for g in r["headlines"] if g["metric"] == h["metric"]), None) for r in runs]
        if any(g is None for g in others):
            raise SystemExit(f"not every seed run reports {h['metric']!r}")
        values = [g["value"] for g in others]
        base = None
        if h["baseline"] is not None:
            base = (h["baseline"]["label"], statistics.median(g["baseline"]["value"] for g in others))
        first["headlines"][i] = headline(h["metric"], statistics.median(values), h["unit"], spread=values,
                                         baseline=base, note=h["note"])
        per_seed.append((h, others))
    columns = ["seed"]
    for h, _ in per_seed:
        columns += [f"{h['metric']}: {h['note']}" if h["note"] else h["metric"]]
        columns += [f"{h['metric']}: {h['baseline']['label']}"] if h["baseline"] is not None else []
    rows = []
    for k, seed in enumerate(seeds):
        row: list[Any] = [seed]
        for h, others in per_seed:
            row += [others[k]["value"]] + ([others[k]["baseline"]["value"]] if h["baseline"] is not None else [])
        rows.append(row)
    first["tables"] = [{"title": f"Headline figures of each seed ({len(seeds)} runs)", "columns": columns,
                        "rows": sorted(rows)}, *first["tables"]]
    first["notes"] = [f"Headline values and their baselines are medians over the seeds {sorted(seeds)} of one "
                      f"command (the spread: smallest and largest); the other tables are those of seed {seeds[0]}.",
                      *first["notes"]]
    return first


def record_from_metrics(folder: Path, name: str, path: str | None = None, title: str | None = None,
                        seed_folders: Sequence[Path] = ()) -> Path:
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
    seed_folders : sequence of Path
        Output folders of the same command with other ``--seed`` values: each headline
        becomes the median over all the runs, with their smallest and largest value as
        its spread, and a table lists every seed's figures.

    Returns
    -------
    Path
        The record written.
    """
    runs = [_collect(folder), *(_collect(f) for f in seed_folders)]
    rec = _with_seed_spread(runs) if seed_folders else runs[0]
    return write_record(name, application=rec["application"], title=title or rec["title"],
                        headlines=rec["headlines"], tables=rec["tables"], anchors=rec["anchors"], notes=rec["notes"],
                        path=path, run=rec["run"] or None)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``record_experiment.py FOLDER --name NAME``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="output folder of a wavephase command (or its metrics.json)")
    parser.add_argument("--name", required=True, help="record file stem, e.g. qm9")
    parser.add_argument("--record", help="write here instead of benchmarks/results/NAME.json")
    parser.add_argument("--title", help="heading on the results page (default: the application's headline)")
    parser.add_argument("--seed-runs", nargs="+", type=Path, default=[], metavar="FOLDER",
                        help="output folders of the same command with other --seed values: headlines become "
                             "medians over all runs, with their spread")
    args = parser.parse_args(argv)
    record_from_metrics(args.folder, args.name, args.record, args.title, args.seed_runs)


if __name__ == "__main__":
    main()

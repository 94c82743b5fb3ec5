"""Generate the results page of the docs and the README's results table from the benchmark records.

Reads every ``benchmarks/results/*.json`` written by :func:`record.write_record` and
writes ``docs/results.rst`` and the block of ``README.md`` between
``<!-- results:begin -->`` and ``<!-- results:end -->``. Nothing else is a source of
figures: the test ``tests/test_results_page.py`` fails when either file differs from
what this script generates.

    python benchmarks/make_results_page.py          # write both files
    python benchmarks/make_results_page.py --check  # exit 1 if either is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "results.rst"
README = ROOT / "README.md"
# The README keeps a record's first figures; the results page has them all.
# Longer commands are cut in the README's table; docs/results.rst shows them whole.
README_COMMAND_CHARS = 160
README_HEADLINES = 3
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
SECTIONS = {
    "scattering": "Scattering transforms",
    "synthesis": "Phase harmonics and maximum-entropy syntheses",
    "classification": "Classification",
    "qm9": "Quantum molecular energies (QM9)",
    "generation": "Generation",
}


def load_records(folder: Path = RESULTS) -> list[dict[str, Any]]:
    """Every record, in the order of the results page (section, then file name)."""
    records = [json.loads(p.read_text()) | {"file": p.name} for p in sorted(folder.glob("*.json"))]
    order = list(SECTIONS)
    unknown = [r["file"] for r in records if r["application"] not in SECTIONS]
    if unknown:
        raise ValueError(f"records with an unknown application (one of {order}): {unknown}")
    return sorted(records, key=lambda r: (order.index(r["application"]), r["file"]))


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)


def _figure(h: dict[str, Any]) -> str:
    text = f"{_number(h['value'])}{(' ' + h['unit']) if h['unit'] and h['unit'] != 'x' else h['unit']}"
    if h.get("spread"):
        lo, hi = h["spread"]
        text += f" ({_number(lo)}–{_number(hi)})"
    return text


def _machine(run: dict[str, Any]) -> str:
    m = run["machine"]
    where = f"{m['cpu_count']} CPU cores ({m['processor']}), {m['torch_threads']} torch threads"
    return where + (f", GPU {m['gpu']}" if m.get("gpu") else "")


def _rst(text: str) -> str:
    # Figures' names hold |s - t| and products: plain text, not reST substitutions or emphasis.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("`", "\\`")


def _rst_table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [columns, *rows]:
        cells = [_rst(_number(c)) for c in row]
        lines.append(f"   * - {cells[0]}")
        lines.extend(f"     - {c}" for c in cells[1:])
    return lines + [""]


def render_page(records: list[dict[str, Any]]) -> str:
    """The text of ``docs/results.rst``."""
    out = ["Results", "=======", "",
           "Every figure on this page was measured by a script of ``benchmarks/`` and read from the record",
           "it wrote (``benchmarks/results/*.json``); ``python benchmarks/make_results_page.py`` regenerates",
           "the page. A spread is the smallest and largest value over the repeats or seeds of that run;",
           "where a command was run with several seeds (``benchmarks/seed_spread.py``), its headline is the",
           "median over the seeds and a table lists each seed's figures.",
           "Published figures are marked *not measured here*.", ""]
    for key, heading in SECTIONS.items():
        mine = [r for r in records if r["application"] == key]
        if not mine:
            continue
        out += [heading, "-" * len(heading), ""]
        for r in mine:
            title = _rst(r["title"])
            # A label per record, so that the user guide can point at its figures instead of copying them.
            out += [f".. _result-{Path(r['file']).stem}:", "", title, "~" * len(title), ""]
            rows = [[h["metric"], _figure(h),
                     f"{h['baseline']['label']}: {_number(h['baseline']['value'])}" if h.get("baseline") else "—",
                     h.get("note") or ""] for h in r["headline"]]
            out += _rst_table(["metric", "value (spread)", "compared with, same run", "note"], rows)
            if r["anchors"]:
                out += _rst_table(["published figure", "value", "source"],
                                  [[a["label"], f"{_number(a['value'])} {a.get('unit', '')}".strip(),
                                    f"{a['source']} (not measured here)"] for a in r["anchors"]])
            for table in r["tables"]:
                out += [f"*{_rst(table['title'])}*", ""] + _rst_table(table["columns"], table["rows"])
            out += [f"- {_rst(note)}" for note in r["notes"]] + ([""] if r["notes"] else [])
            run = r["run"]
            out += [f"Measured with ``{run['command']}`` at commit ``{run['commit']}`` on {run['date'][:10]}, "
                    f"{_machine(run)}.", ""]
    out += _SAME_SEEDS
    return "\n".join(out).rstrip() + "\n"


# Not a figure: where the outputs of the same seeds differ from the code before the redesign
# (commit 6949ff9), as tests/test_redesign_reference.py checks them.
_SAME_SEEDS = [
    "Same seeds, same outputs", "------------------------", "",
    "``tests/test_redesign_reference.py`` recomputes 43 outputs of every application on small seeded inputs and",
    "compares them with those of commit 6949ff9 (the code before the redesign), on one thread. 40 agree to",
    "1e-5 of their scale. The differences:", "",
    "- ``classifier_sparse_proba``, ``generative_decoded``, ``generative_samples``: models trained in float32 by",
    "  SGD amplify the round-off of the new 2D cascade (its sums run in another order) to about 1e-4 of",
    "  their outputs; they are compared at 2e-3.",
    "- ``generative_*``: the whitening's principal axes now have a fixed sign (each axis's largest entry is",
    "  positive). Before, round-off as small as a change of batch size flipped them, and the decoder trained",
    "  on the flipped codes was another model. The stored entries were rewritten once by the old code with",
    "  that convention patched in (``tests/reference/make_redesign_reference.py`` says how).", "",
]


def _short_command(command: str, limit: int = README_COMMAND_CHARS) -> str:
    """The command as the README shows it: cut before its notes, or at ``limit`` characters (whole in the docs)."""
    command = command.split(" --note ")[0]
    return command if len(command) <= limit else command[: limit - 1].rstrip() + "…"


def render_readme_block(records: list[dict[str, Any]]) -> str:
    """The README's results table (between the markers, markers included)."""
    lines = [BEGIN, "| application | result | compared with (same run) | command |", "|---|---|---|---|"]
    for r in records:
        shown = r["headline"][:README_HEADLINES]
        result = "; ".join(f"{h['metric']}: **{_figure(h)}**" for h in shown)
        if len(r["headline"]) > len(shown):
            result += f"; {len(r['headline']) - len(shown)} more in docs/results.rst"
        base = "; ".join(f"{h['baseline']['label']} {_number(h['baseline']['value'])}"
                         for h in shown if h.get("baseline")) or "—"
        lines.append(f"| {r['title']} | {result} | {base} | `{_short_command(r['run']['command'])}` |")
    lines.append(END)
    return "\n".join(lines)


def _readme_with(block: str, text: str) -> str:
    if BEGIN not in text or END not in text:
        raise ValueError(f"README.md has no {BEGIN} ... {END} block to fill.")
    head, rest = text.split(BEGIN, 1)
    return head + block + rest.split(END, 1)[1]


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) the results page and the README block."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date; write nothing")
    args = parser.parse_args(argv)
    records = load_records()
    page = render_page(records)
    readme = _readme_with(render_readme_block(records), README.read_text())
    stale = [p.name for p, text in ((PAGE, page), (README, readme)) if not p.exists() or p.read_text() != text]
    if args.check:
        if stale:
            print(f"out of date: {stale}; run python benchmarks/make_results_page.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page)
    README.write_text(readme)
    print(f"wrote {PAGE} and the results table of {README} from {len(records)} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The report's HTML page: the summary table, then one section per application (no external resources).

Numbers carry their raw values in ``data-*`` attributes beside the text a person
reads, so a test (and a curious reader) can check every verdict against them.
"""

from __future__ import annotations

import html
import json
from typing import Any

from wavephase.report.verdict import format_number, headline_verdict, outcome, section_verdict, summary_groups

__all__ = ["render_html"]

_STYLE = """
body{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}
section{border-top:2px solid #ccc;margin-top:2.5em;padding-top:.5em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:.5em;vertical-align:top;max-width:540px}img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.9em;color:#555}.beats{color:#060}.behind{color:#a00}.ties{color:#850}
.failed{color:#a00}pre{background:#f6f6f6;padding:.5em;overflow:auto}.verdict{background:#f7f7f0;
padding:.4em .8em;border-left:4px solid #bb9}.provenance,.anchor{font-size:.9em;color:#555}
details{margin:.6em 0}summary{cursor:pointer;color:#335}
"""
# Comparison tables longer than this are folded away.
_FOLD_ROWS = 10


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    return "" if value is None else _e(repr(float(value)))


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return "<td>curve (see figures)</td>"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"<td class='num'>{_e(format_number(value))}</td>"
    return f"<td>{_e(format_number(value))}</td>"


def _summary(results: list[dict[str, Any]]) -> list[str]:
    parts = ["<h2 id='summary'>Summary</h2>",
             "<table class='summary'><tr><th>application</th><th>headline metric</th><th>this run</th>"
             "<th>baseline, same run</th><th>published / anchor figure</th><th>verdict</th></tr>"]
    for res in results:
        if res["status"] != "ok":
            parts.append(f"<tr class='headline' data-section='{_e(res['key'])}' data-outcome='failed'>"
                         f"<td><a href='#{_e(res['key'])}'>{_e(res['title'])}</a></td>"
                         f"<td colspan='4'>—</td><td class='failed'>failed: see its section</td></tr>")
            continue
        groups = summary_groups(res)
        origin = "<br><small>included run</small>" if res.get("origin") == "included" else ""
        for h in res["headlines"]:
            result = outcome(h["ours"], h["baseline"], h["better"])
            unit = f" {h['unit']}" if h["unit"] else ""
            anchor = h["anchor"] or {}
            parts.append(
                f"<tr class='headline' data-section='{_e(res['key'])}' data-ours='{_num(h['ours'])}' "
                f"data-baseline='{_num(h['baseline'])}' data-better='{_e(h['better'])}' data-outcome='{result}'>"
                f"<td><a href='#{_e(res['key'])}'>{_e(h['application'])}</a>{origin}</td><td>{_e(h['metric'])}</td>"
                f"<td class='num'>{_e(format_number(h['ours']))}{_e(unit)}<br><small>{_e(h['ours_label'])}</small></td>"
                f"<td class='num'>{_e(format_number(h['baseline']))}{_e(unit if h['baseline'] is not None else '')}"
                f"<br><small>{_e(h['baseline_label'] if h['baseline'] is not None else 'none in this run')}</small>"
                "</td>"
                f"<td>{_e(anchor.get('value', '—'))}<br><small class='anchor'>{_e(anchor.get('source', ''))}</small>"
                f"</td><td class='{result.replace(' ', '-')}'>"
                f"{_e(headline_verdict(h, groups, numbers=False))}</td></tr>")
    parts.append("</table>")
    return parts


def _comparison(table: dict[str, Any]) -> list[str]:
    rows = table["rows"]
    truth = table["truth_label"] is not None
    scored = any(r["scored_on"] for r in rows)
    head = ["metric"] + ([table["truth_label"]] if truth else []) + [table["ours_label"], table["baseline_label"]]
    if scored:
        head += [f"error of {table['ours_label']}", f"error of {table['baseline_label']}"]
    parts = [f"<table class='comparison' data-baseline-label='{_e(table['baseline_label'])}'>"
             f"<caption>{_e(table['title'])}</caption><tr>"
             + "".join(f"<th>{_e(h)}</th>" for h in head) + "<th>verdict</th></tr>"]
    for r in rows:
        result = outcome(r["score_ours"], r["score_baseline"], r["better"])
        cells = [f"<td>{_e(r['metric'])}</td>"] + ([_cell(r["truth"])] if truth else [])
        cells += [_cell(r["ours"]), _cell(r["baseline"])]
        if scored:
            cells += [_cell(r["score_ours"]), _cell(r["score_baseline"])]
        parts.append(f"<tr class='metric' data-score-ours='{_num(r['score_ours'])}' "
                     f"data-score-baseline='{_num(r['score_baseline'])}' data-better='{_e(r['better'])}' "
                     f"data-outcome='{result}'>" + "".join(cells)
                     + f"<td class='{result.replace(' ', '-')}'>{_e(result)}</td></tr>")
    parts.append("</table>")
    if len(rows) > _FOLD_ROWS:
        return [f"<details><summary>{_e(table['title'])} ({len(rows)} rows)</summary>", *parts, "</details>"]
    return parts


def _provenance(res: dict[str, Any], mode: str) -> str:
    run = res.get("run") or {}
    machine = run.get("machine") or {}
    if isinstance(machine, dict):
        machine = ", ".join(f"{k} {v}" for k, v in machine.items() if v is not None)
    where = (f"command <code>{_e(run.get('command', '?'))}</code>, commit {_e(run.get('commit') or 'unknown')}, "
             f"{_e(run.get('date', 'date unknown'))}, machine: {_e(machine or 'unknown')}")
    if res.get("origin") == "included":
        return f"<p class='provenance'>Included from an earlier run ({_e(res['source'])}): {where}.</p>"
    expected = res.get("expected_seconds")
    expect = f" (expected about {expected:.0f} s on 2 CPU cores)" if isinstance(expected, (int, float)) and \
        expected == expected else ""
    if res.get("origin") == "reused":
        return (f"<p class='provenance'>Reused from an earlier {mode} report with the same settings "
                f"(its wall time {res['seconds']:.1f} s{expect}): {where}.</p>")
    return f"<p class='provenance'>Computed in this run, wall time {res['seconds']:.1f} s{expect}.</p>"


def _section(res: dict[str, Any], mode: str) -> list[str]:
    parts = [f"<section id='{_e(res['key'])}' data-status='{_e(res['status'])}'>", f"<h2>{_e(res['title'])}</h2>"]
    if res["status"] != "ok":
        parts.append(f"<p>Status: <b class='failed'>failed</b> after {res['seconds']:.1f} s.</p>"
                     f"<pre class='failed'>{_e(res['error'])}</pre></section>")
        return parts
    parts.append(_provenance(res, mode))
    sentences = section_verdict(res)
    if sentences:
        parts.append("<div class='verdict'><b>Verdict.</b> " + " ".join(f"<span>{_e(s)}</span>" for s in sentences)
                     + "</div>")
    for note in res.get("notes", []):
        parts.append(f"<p class='note'>{_e(note)}</p>")
    for caption, src in res["figures"].items():
        parts.append(f"<figure><img src='{_e(src)}' alt='{_e(caption)}'><figcaption>{_e(caption)}</figcaption>"
                     "</figure>")
    for table in res.get("comparisons", []):
        parts.extend(_comparison(table))
    folded = dict(res.get("details", {}))
    if res.get("settings"):
        folded = {"Settings": {k: v if isinstance(v, (int, float, str)) or v is None else json.dumps(v)
                               for k, v in res["settings"].items()}, **folded}
    for title, table in folded.items():
        parts.append(f"<details><summary>{_e(title)}</summary><table class='details'>"
                     + "".join(f"<tr><td>{_e(k)}</td>{_cell(v)}</tr>" for k, v in table.items()) + "</table></details>")
    parts.append("</section>")
    return parts


def render_html(results: list[dict[str, Any]], mode: str, total_seconds: float,
                run: dict[str, Any] | None = None) -> str:
    """Render section results as one HTML page (no external resources).

    Parameters
    ----------
    results : list of dict
        One dict per section: ``key``, ``title``, ``status`` ("ok"/"failed"),
        ``seconds``, ``origin`` ("run", "reused" or "included"), and either the
        section's numbers (see :mod:`wavephase.report.section`) with ``figures`` as
        paths relative to the page, or ``error``.
    mode : str
        "quick" or "full".
    total_seconds : float
        Wall time of the whole run.
    run : dict, optional
        Where and how the page was made (:func:`wavephase.experiments.outputs.run_info`).

    Returns
    -------
    str
        The page.
    """
    run = run or {}
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>wavephase report</title><style>{_STYLE}</style></head><body>",
             "<h1>wavephase: multiscale wavelet models on real data</h1>",
             f"<p>Mode: <b>{_e(mode)}</b>. Total wall time: {total_seconds:.1f} s. Commit "
             f"{_e(run.get('commit') or 'unknown')}, {_e(run.get('date', ''))}. Every number was computed in this "
             "run, except in sections marked as reused or included, and the published figures, which are quoted "
             "with their sources. Verdicts are computed from the numbers beside them.</p>"]
    expected = [r["expected_seconds"] for r in results if isinstance(r.get("expected_seconds"), (int, float))]
    if expected and all(e == e for e in expected):
        parts.append(f"<p>Expected wall time of these sections on 2 CPU cores, nothing cached: about "
                     f"{sum(expected) / 60:.0f} min (each section's below, beside the time it took).</p>")
    if mode == "quick":
        parts.append("<p>Quick sizes: small training sets and fields, minutes on 2 CPU cores; the published figures "
                     "are at the papers' (far larger) sizes. <code>wavephase report --full</code> runs paper sizes."
                     "</p>")
    parts.extend(_summary(results))
    for res in results:
        parts.extend(_section(res, mode))
    # Marks the page once loaded: the test (and a reader) can see whether every figure rendered.
    parts.append("<script>window.addEventListener('load', function () {"
                 "var imgs = Array.prototype.slice.call(document.images);"
                 "var ok = imgs.every(function (i) { return i.complete && i.naturalWidth > 0; });"
                 "document.body.setAttribute('data-images-loaded', ok ? 'all' : 'missing');"
                 "document.body.setAttribute('data-image-count', String(imgs.length)); });</script>")
    parts.append("</body></html>")
    return "\n".join(parts)

"""``wavephase report``: run every application and write a self-contained HTML page.

Each section is a function ``(section_dir, quick) -> dict`` returning its numbers
(``"table"``: label -> value), its figures (``"figures"``: caption -> PNG path
relative to the page) and its settings. A section that raises is shown with its
error; the others are kept.
"""

from __future__ import annotations

import html
import json
import time
import traceback
from pathlib import Path
from typing import Any

from wavephase.report.section import Section
from wavephase.report.sections import SECTIONS

__all__ = ["build_report", "render_html"]


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def render_html(results: list[dict[str, Any]], mode: str, total_seconds: float) -> str:
    """Render section results as one HTML page (no external resources).

    Parameters
    ----------
    results : list of dict
        One dict per section: ``key``, ``title``, ``status`` ("ok"/"failed"),
        ``seconds``, and either ``table``/``figures``/``settings`` or ``error``.
    mode : str
        "quick" or "full".
    total_seconds : float
        Wall time of the whole run.

    Returns
    -------
    str
        The page.
    """
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>wavephase report</title><style>",
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}",
        "section{border-top:2px solid #ccc;margin-top:2em;padding-top:.5em}",
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}",
        "figure{display:inline-block;margin:.5em}img{max-width:100%;border:1px solid #ddd}",
        ".failed{color:#a00}pre{background:#f6f6f6;padding:.5em;overflow:auto}",
        "</style></head><body>",
        "<h1>wavephase: multiscale wavelet models on real data</h1>",
        f"<p>Mode: <b>{html.escape(mode)}</b>. Total wall time: {total_seconds:.1f} s. "
        "Every number on this page was computed in this run.</p>",
    ]
    for res in results:
        parts.append(f"<section id='{html.escape(res['key'])}' data-status='{res['status']}'>")
        parts.append(f"<h2>{html.escape(res['title'])}</h2>")
        parts.append(f"<p>Status: <b class='{res['status']}'>{res['status']}</b>, "
                     f"wall time {res['seconds']:.1f} s.</p>")
        if res["status"] != "ok":
            parts.append(f"<pre class='failed'>{html.escape(res['error'])}</pre></section>")
            continue
        if res.get("settings"):
            parts.append("<p>Settings: " + ", ".join(f"{html.escape(str(k))}={_format(v)}"
                                                     for k, v in res["settings"].items()) + "</p>")
        parts.append("<table class='numbers'><tr><th>quantity</th><th>value</th></tr>")
        for label, value in res["table"].items():
            parts.append(f"<tr><td>{html.escape(label)}</td><td>{_format(value)}</td></tr>")
        parts.append("</table>")
        for caption, src in res["figures"].items():
            parts.append(f"<figure><img src='{html.escape(src)}' alt='{html.escape(caption)}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        parts.append("</section>")
    # Marks the page once loaded: the test (and a reader) can see whether every figure rendered.
    parts.append("<script>window.addEventListener('load', function () {"
                 "var imgs = Array.prototype.slice.call(document.images);"
                 "var ok = imgs.every(function (i) { return i.complete && i.naturalWidth > 0; });"
                 "document.body.setAttribute('data-images-loaded', ok ? 'all' : 'missing');"
                 "document.body.setAttribute('data-image-count', String(imgs.length)); });</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def build_report(out_dir: str | Path, quick: bool = True, sections: list[Section] | None = None,
                 only: list[str] | None = None) -> Path:
    """Run the sections and write ``out_dir/index.html`` and ``out_dir/report.json``.

    Parameters
    ----------
    out_dir : str or Path
        Output directory.
    quick : bool
        Small default sizes (minutes on 2 cores) instead of paper sizes.
    sections : list of Section, optional
        Sections to run; all of :data:`wavephase.report.sections.SECTIONS` by default.
    only : list of str, optional
        Keys of the sections to keep.

    Returns
    -------
    pathlib.Path
        Path of ``index.html``.
    """
    from tqdm import tqdm

    if sections is None:
        sections = SECTIONS
    if only:
        unknown = set(only) - {s.key for s in sections}
        if unknown:
            raise ValueError(f"unknown report sections {sorted(unknown)}; choose from {[s.key for s in sections]}.")
        sections = [s for s in sections if s.key in only]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start_all = time.perf_counter()
    results = []
    for section in tqdm(sections, desc="report", unit="section"):
        start = time.perf_counter()
        try:
            res = section.run((out / section.key).resolve(), quick)
            # Figures may sit in sub-folders of the section's folder (one per run).
            figures = {cap: (out / section.key / p).resolve().relative_to(out.resolve()).as_posix()
                       for cap, p in res.get("figures", {}).items()}
            entry = {"status": "ok", "table": res.get("table", {}), "figures": figures,
                     "settings": res.get("settings", {})}
        except Exception:  # a failing section is reported on the page, the others go on
            entry = {"status": "failed", "error": traceback.format_exc(limit=6)}
        entry.update(key=section.key, title=section.title, seconds=time.perf_counter() - start)
        results.append(entry)
    total = time.perf_counter() - start_all
    page = out / "index.html"
    page.write_text(render_html(results, "quick" if quick else "full", total), encoding="utf-8")
    (out / "report.json").write_text(json.dumps(results, indent=2, default=str))
    return page

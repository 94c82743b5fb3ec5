"""The HTML report of all applications: summary, verdicts, figures, and earlier runs."""

from wavephase.report.build import build_report
from wavephase.report.page import render_html
from wavephase.report.section import Section, comparison, headline, row

__all__ = ["Section", "build_report", "comparison", "headline", "render_html", "row"]

"""The HTML report of all applications, and the scattering demo."""

from wavephase.report.build import build_report, render_html
from wavephase.report.section import Section

__all__ = ["Section", "build_report", "render_html"]

"""The HTML report of all applications, and the scattering demo."""

from wavephase.report.build import Section, build_report, render_html

__all__ = ["Section", "build_report", "render_html"]

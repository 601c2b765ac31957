"""The report: its data, Plotly figures, and a self-contained HTML page."""

from journeymap.report.data import Headline, ReportData
from journeymap.report.html import render_html, write_html

__all__ = ["Headline", "ReportData", "render_html", "write_html"]

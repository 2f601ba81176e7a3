"""The monitoring-visit report as PDF (fpdf2, as the DSMB report: pure Python, DejaVu Sans from matplotlib), with the same
content as the page: what was verified, and the queries raised, answered, closed, withdrawn and still open."""

from __future__ import annotations

import datetime as dt
import json

from django.utils import timezone
from fpdf import FPDF
from fpdf.fonts import FontFace

from trialdesk.edc.quality.progress import MonitoringActivity

__all__ = ["render_pdf", "tables"]


def _when(at: dt.datetime | None) -> str:
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M %Z") if at else ""


def tables(report: MonitoringActivity) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, columns, rows) of each section of the report, times on the site's clock with its zone."""
    verified = [[m.participant.subject_id, report.what(m), str(json.loads(m.value)) if m.value else "(the whole record)",
                 m.verified_by.get_username(), _when(m.created_at)] for m in report.verified]
    out = [(f"Verified ({len(verified)})", ["Subject", "What", "Value verified", "By", "When"], verified)]
    columns = ["Query", "Subject", "Data point", "Question", "Raised", "Status", "Answer", "Days open"]
    for title, items in (("Queries raised", report.raised), ("Queries answered", report.answered), ("Queries closed", report.closed),
                         ("Queries withdrawn", report.withdrawn), ("Queries still open at the end of the period", report.still_open)):
        rows = [[q.query_id, q.participant.subject_id, q.location(), q.text,
                 f"{_when(q.created_at)}, {q.raised_by.get_username() if q.raised_by else 'edit check'}",
                 q.get_status_display() + (f" {_when(q.closed_at)}" if q.closed_at else "")
                 + (f": {q.withdrawn_reason}" if q.withdrawn_reason else ""), q.answer, str(q.days_open())] for q in items]
        out.append((f"{title} ({len(rows)})", columns, rows))
    return out


def render_pdf(report: MonitoringActivity, *, trial: str) -> bytes:
    from trialdesk.safety.dsmb_pdf import _font_dir

    pdf = FPDF(orientation="landscape", format="A4")
    fonts = _font_dir()
    pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(auto=True, margin=14)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(0, 8, f"Monitoring visit report: {trial}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=9)
    pdf.multi_cell(0, 5, f"{report.start} to {report.end} (site dates, {timezone.get_current_timezone_name()})",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for title, columns, rows in tables(report):
        pdf.set_font("DejaVu", "B", 11)
        pdf.multi_cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", size=7.5)
        if not rows:
            pdf.multi_cell(0, 5, "None.", new_x="LMARGIN", new_y="NEXT")
        else:
            with pdf.table(headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)), line_height=4.2,
                           first_row_as_headings=True, repeat_headings=1) as grid:
                grid.row(columns)
                for row in rows:
                    grid.row(row)
        pdf.ln(3)
    return bytes(pdf.output())

"""The DSMB report as PDF, drawn with fpdf2 (pure Python: no system libraries, works offline).

The content is :class:`~trialdesk.safety.dsmb_report.DsmbReport`, the same the HTML page shows; the
layout is simpler: A4 landscape, one table after another, the swimmer plot as a PNG. Text is set in
DejaVu Sans, the TrueType font matplotlib ships, so "≥", "×" and "—" print without a system font.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from trialdesk.safety.dsmb_report import DsmbReport, ReportTable

__all__ = ["render_pdf"]


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


class _Pdf(FPDF):
    def __init__(self, report: DsmbReport) -> None:
        super().__init__(orientation="landscape", format="A4")
        self.report = report
        fonts = _font_dir()
        self.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
        self.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
        self.set_auto_page_break(auto=True, margin=14)
        # dated at the data cut-off, so the same cut gives the same file
        self.set_creation_date(dt.datetime.combine(dt.date.fromisoformat(report.cutoff), dt.time.min, tzinfo=dt.UTC))

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font("DejaVu", size=7)
        self.cell(0, 5, f"{self.report.nct_id} DSMB safety report · data cut-off {self.report.cutoff} · page {self.page_no()}/{{nb}}",
                  align="R")


def _table(pdf: FPDF, table: ReportTable) -> None:
    pdf.set_font("DejaVu", "B", 11)
    pdf.multi_cell(0, 7, table.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=7.5)
    if not table.rows:
        pdf.multi_cell(0, 5, "None.", new_x="LMARGIN", new_y="NEXT")
    else:
        with pdf.table(headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)), line_height=4.2,
                       first_row_as_headings=True, repeat_headings=1) as grid:
            grid.row([str(c) for c in table.columns])
            for row in table.rows:
                grid.row([str(c) for c in row])
    if table.note:
        pdf.set_font("DejaVu", size=7)
        pdf.multi_cell(0, 4, table.note, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def render_pdf(report: DsmbReport) -> bytes:
    """The report as PDF bytes."""
    pdf = _Pdf(report)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(0, 8, f"DSMB safety report: {report.nct_id}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=9)
    pdf.multi_cell(0, 5, f"{report.title}\nProtocol version {report.protocol_version} · data cut-off {report.cutoff} ·"
                         " de-identified: subject ids and study days (day 0 = first infusion) only", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("DejaVu", "B", 10)
    pdf.multi_cell(0, 6, report.status_sentence, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=9)
    pdf.multi_cell(0, 5, report.bayes_sentence, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for table in report.tables:
        _table(pdf, table)
        if table.key == "participants":
            pdf.set_font("DejaVu", "B", 11)
            pdf.multi_cell(0, 7, "Participants over time", new_x="LMARGIN", new_y="NEXT")
            pdf.image(io.BytesIO(report.swimmer_png), w=pdf.epw)
            pdf.ln(3)
    return bytes(pdf.output())

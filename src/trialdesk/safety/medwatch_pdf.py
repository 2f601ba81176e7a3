"""The MedWatch 3500A-style summary as PDF, drawn with fpdf2 in the DSMB report's style
(:mod:`trialdesk.safety.dsmb_pdf`): A4 portrait, DejaVu Sans, one two-column table per section;
a missing required block prints in red as ``missing: …``."""

from __future__ import annotations

import datetime as dt

from fpdf import FPDF
from fpdf.fonts import FontFace

from trialdesk.safety.dsmb_pdf import _font_dir
from trialdesk.safety.medwatch import MedwatchForm

__all__ = ["render_pdf"]

_RED = (176, 0, 32)


class _Pdf(FPDF):
    def __init__(self, form: MedwatchForm) -> None:
        super().__init__(orientation="portrait", format="A4")
        self.form = form
        fonts = _font_dir()
        self.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
        self.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
        self.set_auto_page_break(auto=True, margin=14)
        # dated on the report date, so the same data gives the same file
        self.set_creation_date(dt.datetime.combine(form.report_date, dt.time.min, tzinfo=dt.UTC))

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font("DejaVu", size=7)
        self.cell(0, 5, f"{self.form.nct_id} · 3500A summary of {self.form.ae_id} · subject {self.form.subject_id} ·"
                        f" page {self.page_no()}/{{nb}}", align="R")


def render_pdf(form: MedwatchForm) -> bytes:
    pdf = _Pdf(form)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 14)
    pdf.multi_cell(0, 7, f"MedWatch Form FDA 3500A — summary of {form.ae_id}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=8.5)
    pdf.multi_cell(0, 4.5, f"{form.nct_id} · subject {form.subject_id} · prepared {form.report_date} · a summary in the blocks of"
                           " Form FDA 3500A for the sponsor-investigator; not the FDA form itself.", new_x="LMARGIN", new_y="NEXT")
    for line in [*form.notes, *(["Complete before sending — missing: " + "; ".join(form.missing)] if form.missing else [])]:
        pdf.set_text_color(*_RED)
        pdf.set_font("DejaVu", "B", 9)
        pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    for section in form.sections:
        pdf.ln(2)
        pdf.set_font("DejaVu", "B", 10.5)
        pdf.multi_cell(0, 6, f"{section.key}. {section.title}", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", size=8)
        if section.note:
            pdf.multi_cell(0, 4.5, section.note, new_x="LMARGIN", new_y="NEXT")
        if section.blocks:
            with pdf.table(col_widths=(32, 68), first_row_as_headings=False, line_height=4.2) as grid:
                for b in section.blocks:
                    row = grid.row()
                    row.cell(f"{b.code}. {b.label}", style=FontFace(emphasis="BOLD"))
                    row.cell(b.shown, style=FontFace(color=_RED, emphasis="BOLD") if b.missing else None)
    return bytes(pdf.output())

"""The flat export by form: one table per case report form (and per record kind kept on its own page: visits,
infusions, adverse events, concomitant medications, medical history), one row per entry, as CSV files in a ZIP or
as an Excel workbook with one sheet per form, each with a codebook (every column: its table, label, type, unit and
the codes of a coded answer).

De-identified unless asked otherwise: a date becomes the participant's study day (day 0 is the first infusion) in a
column named ``<name>_study_day``, an instant its study day too; identified, dates are kept as ISO dates and instants
as ISO times with their offset. No personal identifier is ever a column (subject ids only)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trialdesk.protocol.forms import FormCatalogue

#: a column's type, as the codebook names it; "narrative" is free text a person wrote about the participant (a reason,
#: a note), left out of a de-identified export since it may name people or places
TYPES = ("text", "integer", "float", "date", "datetime", "choice", "yesno", "boolean", "narrative")
#: columns every table begins with
KEY_COLUMNS = ("subject_id",)


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    type: str = "text"
    unit: str = ""
    codes: Mapping[str, str] = field(default_factory=dict)  # code -> label, for a coded answer


@dataclass(frozen=True)
class Table:
    name: str  # file and sheet name
    title: str
    columns: Sequence[Column]
    rows: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class FlatExport:
    tables: list[Table]
    codebook: list[dict[str, str]]
    identified: bool

    def csv_zip(self, prefix: str) -> bytes:
        """``<prefix>_<table>.csv`` per table and ``<prefix>_codebook.csv``, UTF-8."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for t in self.tables:
                z.writestr(f"{prefix}_{t.name}.csv", _csv([c.name for c in t.columns], [[r.get(c.name) for c in t.columns]
                                                                                          for r in t.rows]))
            z.writestr(f"{prefix}_codebook.csv", _csv(list(CODEBOOK), [[e[k] for k in CODEBOOK] for e in self.codebook]))
        return buf.getvalue()

    def xlsx(self) -> bytes:
        """A workbook: the codebook first, then one sheet per table (its header row frozen)."""
        from openpyxl import Workbook
        from openpyxl.styles import Font

        wb = Workbook()
        book = wb.active
        book.title = "codebook"
        _sheet(book, list(CODEBOOK), [[e[k] for k in CODEBOOK] for e in self.codebook], Font(bold=True))
        for t in self.tables:
            ws = wb.create_sheet(t.name[:31])
            _sheet(ws, [c.name for c in t.columns], [[r.get(c.name) for c in t.columns] for r in t.rows], Font(bold=True))
        out = io.BytesIO()
        wb.save(out)
        return out.getvalue()


#: the codebook's columns
CODEBOOK = {"table": "table", "column": "column", "label": "label", "type": "type", "unit": "unit", "codes": "codes"}


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def _sheet(ws: Any, header: list[str], rows: list[list[Any]], bold: Any) -> None:
    ws.append(header)
    for cell in ws[1]:
        cell.font = bold
    for row in rows:
        ws.append(row)
    ws.freeze_panes = "A2"


def _study_day(value: Any, day0: dt.date | None) -> int | None:
    if value is None or value == "" or day0 is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
    day = value.date() if isinstance(value, dt.datetime) else value
    return (day - day0).days


def _cell(value: Any, column: Column, day0: dt.date | None, identified: bool) -> Any:
    if column.type in ("date", "datetime"):
        if not identified:
            return _study_day(value, day0)
        return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value
    if column.type in ("yesno", "boolean") and isinstance(value, bool):
        return "yes" if value else "no"
    return value


def deidentified_columns(columns: Sequence[Column], identified: bool) -> list[Column]:
    if identified:
        return list(columns)
    return [Column(f"{c.name}_study_day", f"{c.label} (study day; day 0 is the first infusion)", "integer") if c.type in
            ("date", "datetime") else c for c in columns]


def build(tables: Sequence[Table], *, day0: Mapping[str, dt.date | None], identified: bool) -> FlatExport:
    """Each table with its dates as study days unless ``identified``, and the codebook of every column."""
    out: list[Table] = []
    codebook: list[dict[str, str]] = []
    for t in tables:
        kept = [c for c in t.columns if identified or c.type != "narrative"]
        columns = deidentified_columns(kept, identified)
        rows = [{new.name: _cell(r.get(old.name), old, day0.get(str(r.get("subject_id", ""))), identified)
                 for old, new in zip(kept, columns, strict=True)} for r in t.rows]
        out.append(Table(t.name, t.title, columns, rows))
        for c in columns:
            codebook.append({"table": t.name, "column": c.name, "label": c.label, "type": c.type, "unit": c.unit,
                             "codes": "; ".join(f"{k} = {v}" for k, v in c.codes.items())})
    return FlatExport(out, codebook, identified)


def form_columns(catalogue: FormCatalogue, form_id: str, *, ranged: bool = False) -> list[Column]:
    """The columns of a visit form's table: who and where, then every field of the form as forms.yaml defines it (and,
    ``ranged``, each numeric result's lower and upper limit of normal as the reporting laboratory gave them)."""
    form = catalogue.form(form_id)
    head = [Column("subject_id", "Subject id"), Column("visit", "Visit code"), Column("visit_name", "Visit"),
            Column("unscheduled", "Unscheduled visit", "yesno"), Column("visit_date", "Visit date", "date"),
            Column("status", "Form status", "choice", codes={"complete": "complete", "incomplete": "incomplete",
                                                               "not_done": "not done"}),
            Column("not_done_reason", "Not done, because", "narrative")]
    fields = []
    for f in form.fields:
        codes = {c.code: c.label for c in f.choices} if f.type == "choice" else {"yes": "Yes", "no": "No"} if f.type == "yesno" else {}
        fields.append(Column(f.name, f.label, f.type, f.unit or "", codes))
        if ranged and f.type in ("float", "integer"):
            fields += [Column(f"{f.name}_lln", f"{f.label}: lower limit of normal", "float", f.unit or ""),
                       Column(f"{f.name}_uln", f"{f.label}: upper limit of normal", "float", f.unit or "")]
    return head + fields

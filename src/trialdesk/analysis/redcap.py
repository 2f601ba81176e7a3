"""The REDCap data dictionary of the trial's forms, and its import back into form definitions.

Export writes REDCap's 18 columns in REDCap's order, one row per field, so a site on REDCap can
build the same instruments. Types map as REDCap spells them: text, integer and float are "text"
with validation "integer" or "number", a date "text" with "date_ymd", a datetime "text" with
"datetime_ymd", choice "dropdown" (choices "code, label | ..."), yes/no "yesno". The unit goes in
the field note, the form's title in the section header of its first field (REDCap has no other
place for an instrument's title), required fields have "y".

Import reads such a dictionary back; the types that have no trialdesk field type (checkbox,
calc, file, slider, descriptive, sql, truefalse, and text validations other than integer,
number, date and datetime) are refused with the row and column to change.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from trialdesk.protocol.forms import FieldType, FormCatalogue, FormsError, parse_forms

COLUMNS = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
    "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name", "Matrix Ranking?",
    "Field Annotation",
)
_VALIDATION: dict[FieldType, str] = {"integer": "integer", "float": "number", "date": "date_ymd", "datetime": "datetime_ymd"}
_FROM_VALIDATION: dict[str, FieldType] = {
    "": "text", "integer": "integer", "number": "float", "number_1dp": "float", "number_2dp": "float", "number_3dp": "float",
    "number_4dp": "float", "date_ymd": "date", "date_mdy": "date", "date_dmy": "date", "datetime_ymd": "datetime",
    "datetime_mdy": "datetime", "datetime_dmy": "datetime", "datetime_seconds_ymd": "datetime",
}


class RedcapImportError(ValueError):
    """A data dictionary that does not map to trialdesk forms; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _number(v: float | None, kind: FieldType) -> str:
    if v is None:
        return ""
    return str(int(v)) if kind == "integer" and float(v).is_integer() else f"{v:g}"


def dictionary_rows(forms: FormCatalogue) -> list[dict[str, str]]:
    rows = []
    for form in forms.forms:
        for i, f in enumerate(form.fields):
            row = dict.fromkeys(COLUMNS, "")
            row.update({
                "Variable / Field Name": f.name,
                "Form Name": form.id,
                "Section Header": form.title if i == 0 else "",
                "Field Type": {"choice": "dropdown", "yesno": "yesno"}.get(f.type, "text"),
                "Field Label": f.label,
                "Choices, Calculations, OR Slider Labels": " | ".join(f"{c.code}, {c.label}" for c in f.choices),
                "Field Note": f.unit or "",
                "Text Validation Type OR Show Slider Number": _VALIDATION.get(f.type, ""),
                "Text Validation Min": _number(f.min, f.type),
                "Text Validation Max": _number(f.max, f.type),
                "Required Field?": "y" if f.required else "",
            })
            rows.append(row)
    return rows


def export_dictionary(forms: FormCatalogue) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(dictionary_rows(forms))
    return buf.getvalue()


def _choices(text: str, where: str, problems: list[str]) -> list[dict[str, str]]:
    out = []
    for part in text.split("|"):
        code, sep, label = part.strip().partition(",")
        if not sep or not code.strip() or not label.strip():
            problems.append(f"{where}: choice {part.strip()!r} is not 'code, label'")
            continue
        out.append({"code": code.strip(), "label": label.strip()})
    return out


def _float(text: str, where: str, problems: list[str]) -> float | None:
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        problems.append(f"{where}: {text!r} is not a number (dates and 'today' limits do not map)")
        return None


def import_dictionary(text: str, source: str = "data dictionary") -> FormCatalogue:
    """Form definitions from a REDCap data dictionary (CSV text). Row numbers count the header as row 1."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = tuple(reader.fieldnames or ())
    if header[: len(COLUMNS)] != COLUMNS:
        missing = [c for c in COLUMNS if c not in header]
        raise RedcapImportError([f"{source}: row 1: the header is not REDCap's 18 columns"
                                 + (f" (missing: {', '.join(missing)})" if missing else " in REDCap's order")])
    problems: list[str] = []
    forms: dict[str, dict[str, Any]] = {}
    for row_number, row in enumerate(reader, start=2):
        def where(column: str, n: int = row_number) -> str:
            return f"{source}: row {n}, column {column!r}"

        redcap_type = row["Field Type"].strip()
        validation = row["Text Validation Type OR Show Slider Number"].strip()
        kind: FieldType | None
        if redcap_type == "text":
            kind = _FROM_VALIDATION.get(validation)
            if kind is None:
                problems.append(f"{where('Text Validation Type OR Show Slider Number')}: validation {validation!r} has no trialdesk type;"
                                " use integer, number, date_ymd or datetime_ymd, or none")
                continue
        elif redcap_type == "notes":
            kind = "text"
        elif redcap_type in ("dropdown", "radio"):
            kind = "choice"
        elif redcap_type == "yesno":
            kind = "yesno"
        else:
            problems.append(f"{where('Field Type')}: {redcap_type!r} does not map to a trialdesk field type"
                            " (text, notes, dropdown, radio, yesno do); define this field by hand")
            continue
        field: dict[str, Any] = {"name": row["Variable / Field Name"].strip(), "label": row["Field Label"].strip(), "type": kind,
                                 "required": row["Required Field?"].strip().lower() == "y"}
        if row["Field Note"].strip():
            field["unit"] = row["Field Note"].strip()
        if kind == "choice":
            field["choices"] = _choices(row["Choices, Calculations, OR Slider Labels"], where("Choices, Calculations, OR Slider Labels"),
                                        problems)
        if kind in ("integer", "float"):
            for key, column in (("min", "Text Validation Min"), ("max", "Text Validation Max")):
                value = _float(row[column], where(column), problems)
                if value is not None:
                    field[key] = value
        form_id = row["Form Name"].strip()
        form = forms.setdefault(form_id, {"id": form_id, "title": row["Section Header"].strip() or form_id.replace("_", " ").capitalize(),
                                          "fields": []})
        form["fields"].append(field)
    if problems:
        raise RedcapImportError(problems)
    try:
        return parse_forms({"schema_version": 1, "forms": list(forms.values())}, source)
    except FormsError as exc:
        raise RedcapImportError(str(exc).splitlines()) from None


def read_dictionary(path: Path) -> FormCatalogue:
    return import_dictionary(path.read_text(encoding="utf-8-sig"), str(path))


__all__ = ["COLUMNS", "RedcapImportError", "dictionary_rows", "export_dictionary", "import_dictionary", "read_dictionary"]

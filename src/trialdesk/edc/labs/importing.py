"""Bulk laboratory import: a CSV file in the documented layout (docs/lab-import.md) or a FHIR Bundle of Observations
(read through the project's SQL-on-FHIR observation view). Every row is given its fate before anything is stored —
it will be stored, it is already stored with the same value, or it is rejected, with the reason naming the row and the
column — and the import is then stored whole or not at all (one transaction; any rejected row holds everything back)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from trialdesk.edc.labs.service import LAB_FORM, all_ranges, analytes, laboratory_of
from trialdesk.trial.errors import ConductError
from trialdesk.trial.lab_ranges import flag, in_force

#: the CSV layout's columns (docs/lab-import.md); ``laboratory`` may be left out when the site has one laboratory
CSV_COLUMNS = ("subject_id", "visit", "sample_date", "analyte", "value", "unit")
CSV_OPTIONAL = ("laboratory",)
#: units written otherwise by laboratories and FHIR (UCUM) -> the form's unit
UNIT_ALIASES = {"10*9/L": "10^9/L", "10*3/uL": "10^9/L", "g/dl": "g/dL", "mg/dl": "mg/dL", "U/l": "U/L", "mmol/l": "mmol/L",
                "{INR}": "ratio", "{ratio}": "ratio", "sec": "s", "g/l": "g/L"}
LOINC = "http://loinc.org"


@dataclass
class Row:
    """One result as read: where it is in the file (for the messages), and its values as text."""

    where: str  # "line 3" or "Observation/abc"
    subject_id: str
    visit: str  # a visit code; "" to find the visit whose window holds the sample date (FHIR)
    sample_date: str
    analyte: str
    value: str
    unit: str
    laboratory: str = ""
    columns: dict[str, str] = field(default_factory=dict)  # our name -> the name of the column or element in the file
    #: filled in by the plan
    fate: str = ""  # "store", "unchanged", "rejected"
    reason: str = ""
    flag: str = ""
    visit_code: str = ""
    analyte_name: str = ""
    analyte_label: str = ""
    number: float | None = None

    def col(self, name: str) -> str:
        return self.columns.get(name, name)

    def reject(self, name: str, why: str) -> None:
        self.fate, self.reason = "rejected", f"{self.where}, {self.col(name)}: {why}"


class ImportError_(ConductError):
    """The file itself cannot be read (not CSV, a missing column, not a FHIR Bundle)."""


def read_csv(text: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise ImportError_("file", f"line 1 (the header) has no column {', '.join(missing)}; the layout is"
                                   f" {','.join(CSV_COLUMNS + CSV_OPTIONAL)} (docs/lab-import.md)")
    rows = []
    for n, raw in enumerate(reader, start=2):
        d = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(d.values()):
            continue
        rows.append(Row(f"line {n}", d["subject_id"], d["visit"], d["sample_date"], d["analyte"], d["value"], d["unit"],
                        d.get("laboratory", "")))
    if not rows:
        raise ImportError_("file", "the file has a header but no results")
    return rows


def _view() -> Any:
    from importlib import resources

    return json.loads((resources.files("trialdesk.sources.fhir_views") / "omop" / "observation.json").read_text())


FHIR_COLUMNS = {"subject_id": "Observation.subject", "sample_date": "Observation.effective[x]", "analyte": "Observation.code",
                "value": "Observation.valueQuantity.value", "unit": "Observation.valueQuantity.unit", "visit": "Observation.effective[x]",
                "status": "Observation.status"}


def read_fhir(text: str, laboratory: str = "") -> list[Row]:
    """The Observations of a Bundle (each component a row of its own), read by the SQL-on-FHIR observation view."""
    import duckdb

    from trialdesk.sources.fhir_views import InputError, ViewError, run_view

    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ImportError_("file", f"not JSON (line {e.lineno}, column {e.colno}: {e.msg}); upload a FHIR Bundle") from None
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        raise ImportError_("file", "not a FHIR Bundle (resourceType is not \"Bundle\"); upload a Bundle of Observations")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bundle.json"
        path.write_text(text, encoding="utf-8")
        try:
            found = run_view(_view(), [path], con=duckdb.connect())
        except (InputError, ViewError) as e:
            raise ImportError_("file", str(e).replace(str(path), "the Bundle")) from None
    rows = []
    for r in found:
        where = f"Observation/{r['resource_id']}" + (f" component {r['part']}" if r.get("part") else "")
        subject = str(r.get("subject") or "")
        codes = [c.get("code", "") for c in (r.get("codings") or []) if isinstance(c, dict) and c.get("system") == LOINC]
        quantity = r.get("quantity") or {}
        when = r.get("effective_datetime") or r.get("effective_instant") or r.get("effective_period_start") or r.get("issued") or ""
        row = Row(where, subject.rsplit("/", 1)[-1] if subject.startswith("Patient/") else subject, "", str(when)[:10],
                  codes[0] if codes else (r.get("code_text") or ""), "" if r.get("quantity_value") is None else str(r["quantity_value"]),
                  str(quantity.get("unit") or quantity.get("code") or "") if isinstance(quantity, dict) else "", laboratory,
                  columns=dict(FHIR_COLUMNS))
        if r.get("status") in ("entered-in-error", "cancelled"):
            row.reject("status", f"the Observation's status is {r['status']}; it is not imported")
        elif not subject.startswith("Patient/"):
            row.reject("subject_id", f"the subject {subject[:40]!r} is not a reference to Patient/<subject id>")
        rows.append(row)
    if not rows:
        raise ImportError_("file", "the Bundle holds no Observation with a value")
    return rows


def _loinc() -> dict[str, str]:
    from trialdesk.edc.snapshot import _LABS

    return {code: name for name, (code, _test) in _LABS.items()}


@dataclass
class Plan:
    rows: list[Row]
    #: (subject id, visit code) -> (the visit, the sample date, the laboratory, analyte -> value)
    groups: dict[tuple[str, str], tuple[Any, dt.date, str, dict[str, float]]]

    @property
    def rejected(self) -> list[Row]:
        return [r for r in self.rows if r.fate == "rejected"]

    @property
    def storing(self) -> list[Row]:
        return [r for r in self.rows if r.fate == "store"]

    @property
    def may_store(self) -> bool:
        return not self.rejected and bool(self.storing)


def _visit_for(participant: Any, row: Row, on: dt.date) -> Any:
    visits = list(participant.visits.all())
    if row.visit:
        v = next((v for v in visits if v.code == row.visit), None)
        if v is None:
            row.reject("visit", f"{participant.subject_id} has no visit {row.visit[:20]!r}")
        return v
    holding = [v for v in visits if LAB_FORM in v.forms and v.earliest <= on <= v.latest]
    if not holding:
        row.reject("visit", f"no visit of {participant.subject_id} with a laboratory form has a window holding {on}")
        return None
    return min(holding, key=lambda v: abs((v.target - on).days))


def plan(rows: list[Row]) -> Plan:
    """Each row's fate (see the module); nothing is stored."""
    from trialdesk.edc.participants.models import Participant
    from trialdesk.edc.visits.models import FormEntry
    from trialdesk.edc.web import today

    known, loinc, ranges = analytes(), _loinc(), all_ranges()
    people = {p.subject_id: p for p in Participant.objects.prefetch_related("visits")}
    groups: dict[tuple[str, str], tuple[Any, dt.date, str, dict[str, float]]] = {}
    first: dict[tuple[str, str, str], Row] = {}
    for row in rows:
        if row.fate:
            continue
        p = people.get(row.subject_id)
        if p is None:
            row.reject("subject_id", f"there is no participant {row.subject_id[:40]!r}")
            continue
        try:
            on = dt.date.fromisoformat(row.sample_date)
        except ValueError:
            row.reject("sample_date", f"{row.sample_date[:30]!r} is not a date (write it YYYY-MM-DD)")
            continue
        if on > today():
            row.reject("sample_date", f"{on} is in the future")
            continue
        name = row.analyte if row.analyte in known else loinc.get(row.analyte, "")
        if name not in known:
            row.reject("analyte", f"{row.analyte[:40]!r} is not a result of the laboratory form (a field name such as hgb, or its"
                                  " LOINC code)")
            continue
        row.analyte_name, row.analyte_label = name, known[name].label
        try:
            number = float(row.value)
        except ValueError:
            row.reject("value", f"{row.value[:30]!r} is not a number")
            continue
        if number != number or number < 0 or number in (float("inf"),):
            row.reject("value", f"{row.value[:30]!r} is not a result (a number of 0 or more)")
            continue
        unit = UNIT_ALIASES.get(row.unit, row.unit)
        if unit != (known[name].unit or ""):
            row.reject("unit", f"{known[name].label} is recorded in {known[name].unit}, not {row.unit[:20]!r}; convert it first")
            continue
        v = _visit_for(p, row, on)
        if v is None:
            continue
        row.visit_code = v.code
        if LAB_FORM not in v.forms:
            row.reject("visit", f"the laboratory form is not due at {v.name}")
            continue
        if v.done_on is None:
            row.reject("visit", f"{v.name} of {p.subject_id} has no visit date yet; enter it first")
            continue
        if not v.earliest <= on <= v.latest:
            row.reject("sample_date", f"{on} is outside the window of {v.name} ({v.earliest} to {v.latest}); enter it on the form"
                                      " with the reason it was taken out of window")
            continue
        if p.locked:
            row.reject("subject_id", f"the casebook of {p.subject_id} is locked")
            continue
        key = (p.subject_id, v.code)
        same = first.get((*key, name))
        if same is not None:
            if same.number == number:
                row.fate, row.reason = "unchanged", f"the same result as {same.where}; stored once"
            else:
                row.reject("value", f"{same.where} gives {known[name].label} {same.number:g} for the same visit")
            continue
        existing = FormEntry.objects.filter(visit=v, form=LAB_FORM).first()
        group = groups.get(key)
        held_date = group[1] if group else (dt.date.fromisoformat(existing.data["lb_date"]) if existing and existing.data.get("lb_date")
                                           else on)
        if existing is not None and existing.not_done_reason:
            row.reject("visit", f"the laboratory form at {v.name} was recorded as not done")
            continue
        if held_date != on:
            row.reject("sample_date", f"the laboratory form at {v.name} holds the sample of {held_date}; one form holds one sample")
            continue
        if existing is not None and name in existing.data:
            if existing.data[name] == number:
                row.fate, row.reason, row.number = "unchanged", "already stored with this value", number
            else:
                row.reject("value", f"{known[name].label} at {v.name} is already {existing.data[name]:g}; correct it on the form with"
                                    " the reason")
            continue
        lab = row.laboratory or laboratory_of({}, ranges)
        r = in_force(ranges, lab, name, on) if lab else None
        row.number, row.fate = number, "store"
        row.flag = flag(number, r.lower, r.upper) if r else ""
        row.reason = f"reference {r.text()} ({lab}, in force from {r.effective_from})" if r else "no reference range for it"
        first[(*key, name)] = row
        groups.setdefault(key, (v, on, row.laboratory, {}))[3][name] = number
    return Plan(rows, groups)


def commit(user: Any, rows: list[Row], source: str) -> Plan:
    """Store every result of the plan in one transaction, or nothing (a rejected row refuses the whole import)."""
    from trialdesk.edc.visits.crf import definition
    from trialdesk.edc.visits.models import FormEntry
    from trialdesk.edc.visits.service import save_form

    p = plan(rows)
    if p.rejected:
        raise ConductError("file", f"{len(p.rejected)} row{'s' if len(p.rejected) > 1 else ''} rejected; nothing was stored. Correct"
                                   f" the file and import it again (first: {p.rejected[0].reason})")
    if not p.storing:
        raise ConductError("file", "every result in the file is already stored; nothing to import")
    form = definition(LAB_FORM)
    with transaction.atomic():
        for v, on, lab, results in p.groups.values():
            existing = FormEntry.objects.filter(visit=v, form=LAB_FORM).first()
            cleaned: dict[str, Any] = existing.data_values(form) if existing is not None else {}
            cleaned |= {"lb_date": on, **results}
            if lab and not cleaned.get("lb_lab"):
                cleaned["lb_lab"] = lab
            save_form(user, v, LAB_FORM, cleaned, reason=f"laboratory import ({source})",
                      version=existing.version if existing is not None else None)
    return p


def rows_of(kind: str, text: str, laboratory: str = "") -> list[Row]:
    if kind == "csv":
        rows = read_csv(text)
        if laboratory:
            for r in rows:
                r.laboratory = r.laboratory or laboratory
        return rows
    if kind == "fhir":
        return read_fhir(text, laboratory)
    raise ImportError_("kind", "choose CSV or a FHIR Bundle")


def summary(rows: Iterable[Row]) -> dict[str, int]:
    out = {"store": 0, "unchanged": 0, "rejected": 0}
    for r in rows:
        out[r.fate] = out.get(r.fate, 0) + 1
    return out

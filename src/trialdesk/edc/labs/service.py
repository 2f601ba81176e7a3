"""Reference ranges entered once per laboratory and analyte (a new version from its effective date), the range in force
at a sample's date filled into the laboratory form when its limits were left empty, and H/L flags."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from trialdesk.edc.audit import trail
from trialdesk.edc.labs.models import ReferenceRange
from trialdesk.trial.errors import ConductError
from trialdesk.trial.lab_ranges import ReferenceRange as CoreRange
from trialdesk.trial.lab_ranges import check_range, flag, in_force

LAB_FORM = "laboratory"


def analytes() -> dict[str, Any]:
    """The laboratory form's results (field name -> its definition, with label and unit)."""
    from trialdesk.edc.visits.crf import definition

    return {f.name: f for f in definition(LAB_FORM).fields if f.type in ("float", "integer")}


def add_range(user: Any, *, site: str, laboratory: str, analyte: str, unit: str, lower: float | None, upper: float | None,
              effective_from: dt.date) -> ReferenceRange:
    """A laboratory's range for an analyte from ``effective_from`` on (a new version when one was in force before)."""
    known = analytes()
    if analyte not in known:
        raise ConductError("analyte", f"{analyte[:40]!r} is not a result of the laboratory form; choose one of {', '.join(known)}")
    if unit.strip() != (known[analyte].unit or ""):
        raise ConductError("unit", f"{known[analyte].label} is recorded in {known[analyte].unit}; give the range in that unit"
                                   f" (not {unit.strip()[:20]!r})")
    if not laboratory.strip():
        raise ConductError("laboratory", "name the laboratory")
    check_range(lower, upper)
    if ReferenceRange.objects.filter(laboratory=laboratory.strip(), analyte=analyte, effective_from=effective_from).exists():
        raise ConductError("effective_from", f"a range of {laboratory.strip()} for {known[analyte].label} already takes effect on"
                                             f" {effective_from}; a new version takes effect on a later date")
    return trail.create(ReferenceRange(site=site, laboratory=laboratory.strip(), analyte=analyte, unit=unit.strip(), lower=lower,
                                       upper=upper, effective_from=effective_from, entered_by=user), user)


def all_ranges() -> list[CoreRange]:
    return [r.core() for r in ReferenceRange.objects.all()]


def laboratory_of(data: dict[str, Any], ranges: list[CoreRange]) -> str:
    """The laboratory named on the form, else the one laboratory that has ranges ('' when there are several or none)."""
    named = str(data.get("lb_lab") or "").strip()
    if named:
        return named
    labs = {r.laboratory for r in ranges}
    return labs.pop() if len(labs) == 1 else ""


def _date(data: dict[str, Any]) -> dt.date | None:
    v = data.get("lb_date")
    if isinstance(v, dt.date):
        return v
    try:
        return dt.date.fromisoformat(str(v)) if v else None
    except ValueError:
        return None


def fill_ranges(data: dict[str, Any], ranges: list[CoreRange] | None = None) -> dict[str, Any]:
    """The laboratory form's values with, for each result whose limits were left empty, the range in force at the sample
    date (and the laboratory named). Limits the site entered are kept as entered."""
    ranges = all_ranges() if ranges is None else ranges
    on, lab = _date(data), laboratory_of(data, ranges)
    if on is None or not lab:
        return data
    out = dict(data)
    used = False
    for name in analytes():
        if out.get(name) is None or out.get(f"{name}_lln") is not None or out.get(f"{name}_uln") is not None:
            continue
        r = in_force(ranges, lab, name, on)
        if r is None:
            continue
        if r.lower is not None:
            out[f"{name}_lln"] = r.lower
        if r.upper is not None:
            out[f"{name}_uln"] = r.upper
        used = True
    if used and not out.get("lb_lab"):
        out["lb_lab"] = lab
    return out


@dataclass(frozen=True)
class Flag:
    code: str  # "H", "L" or "" (within the range)
    range: str  # the range read, in words
    label: str  # the analyte as the form labels it


def flags_for(participant: Any, form_id: str, data: dict[str, Any]) -> dict[str, Flag]:
    """Each laboratory result's flag against its range: the limits on the form (entered, or filled from the range in force
    at the sample date when it was saved), else the range in force now for its laboratory and sample date."""
    if form_id != LAB_FORM or not data:
        return {}
    ranges = all_ranges()
    on, lab = _date(data), laboratory_of(data, ranges)
    out = {}
    for name, f in analytes().items():
        value = data.get(name)
        if not isinstance(value, int | float):
            continue
        lo, hi = data.get(f"{name}_lln"), data.get(f"{name}_uln")
        if lo is None and hi is None and on is not None and lab:
            r = in_force(ranges, lab, name, on)
            if r is not None:
                lo, hi = r.lower, r.upper
        if lo is None and hi is None:
            continue
        text = CoreRange(lab, name, f.unit or "", lo, hi, on or dt.date.min).text()
        out[name] = Flag(flag(float(value), lo, hi), f"reference {text}", f.label)
    return out

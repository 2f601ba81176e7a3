"""Laboratory reference ranges (per laboratory and analyte, versioned by the date each takes effect) and the H/L flag
of a result against the range in force at its sample date.

A range is entered once, when the laboratory issues it; a new one supersedes it from its own effective date, so a
sample is read against the range its laboratory applied on the day it was taken. A value exactly at a limit is
within the range (flagged only strictly below the lower limit or strictly above the upper one)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from trialdesk.trial.errors import ConductError


@dataclass(frozen=True)
class ReferenceRange:
    laboratory: str
    analyte: str
    unit: str
    lower: float | None
    upper: float | None
    effective_from: dt.date

    def text(self) -> str:
        lo = "" if self.lower is None else f"{self.lower:g}"
        hi = "" if self.upper is None else f"{self.upper:g}"
        return f"{lo}–{hi} {self.unit}".strip()


def check_range(lower: float | None, upper: float | None) -> None:
    if lower is None and upper is None:
        raise ConductError("lower", "give the lower limit, the upper limit or both")
    if lower is not None and upper is not None and lower > upper:
        raise ConductError("lower", f"the lower limit {lower:g} is above the upper limit {upper:g}")


def in_force(ranges: Iterable[ReferenceRange], laboratory: str, analyte: str, on: dt.date) -> ReferenceRange | None:
    """The range of ``laboratory`` for ``analyte`` that took effect last on or before ``on`` (None: none yet)."""
    best = None
    for r in ranges:
        if (r.laboratory == laboratory and r.analyte == analyte and r.effective_from <= on
                and (best is None or r.effective_from > best.effective_from)):
            best = r
    return best


def flag(value: float, lower: float | None, upper: float | None) -> str:
    """"L" below the lower limit, "H" above the upper one, "" within (a value at a limit is within)."""
    if lower is not None and value < lower:
        return "L"
    if upper is not None and value > upper:
        return "H"
    return ""

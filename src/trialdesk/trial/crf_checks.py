"""The checks a case report form's values pass before they are stored, all at once (each problem names its field,
so a screen shows every one beside its field):

- the date of assessment is on or after the date of consent (ICH E6 4.8.8: no study procedure before consent),
  not in the future, and inside the visit's window — or, outside it, explained with a reason: the entry is then
  kept and logged as a protocol deviation ("visit out of window");
- the form's cross-field checks from ``forms.yaml`` (``less_than``: e.g. diastolic below systolic);
- on the adverse-event form, an outcome of recovered (with or without sequelae) needs the date it resolved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from trialdesk.protocol.forms import Form

#: outcomes that say the event is over, so it has a date of resolution
RESOLVED_OUTCOMES = ("recovered", "recovered_with_sequelae")


def outside_window(form: Form, values: Mapping[str, Any], window: tuple[dt.date, dt.date] | None) -> dt.date | None:
    """The assessment date when it falls outside the visit's window, else None."""
    name = form.assessment_date
    day = values.get(name) if name else None
    if window is None or not isinstance(day, dt.date):
        return None
    return day if not window[0] <= day <= window[1] else None


def entry_problems(form: Form, values: Mapping[str, Any], *, consented_on: dt.date | None, today: dt.date,
                   window: tuple[dt.date, dt.date] | None = None, out_of_window_reason: str = "") -> list[tuple[str, str]]:
    """Every problem of one form's entered values (empty when they may be stored)."""
    problems: list[tuple[str, str]] = []
    name = form.assessment_date
    day = values.get(name) if name else None
    if name and isinstance(day, dt.date):
        if day > today:
            problems.append((name, f"{day} is in the future (today is {today}); enter the date the assessment was made"))
        elif consented_on is not None and day < consented_on:
            problems.append((name, f"{day} is before consent was signed ({consented_on}); no study procedure may precede consent —"
                                   " correct the date"))
        elif window is not None and outside_window(form, values, window) and not out_of_window_reason.strip():
            problems.append((name, f"{day} is outside the visit's window ({window[0]} to {window[1]}); correct the date, or give the"
                                   " reason it was done out of window (it is then logged as a protocol deviation)"))
    for check in form.less_than:
        low, high = values.get(check.field), values.get(check.than)
        if isinstance(low, int | float) and isinstance(high, int | float) and low >= high:
            problems.append((check.field, f"{form.field(check.field).label} ({low:g}) must be below {form.field(check.than).label}"
                                          f" ({high:g}): {check.reason}"))
    return problems


def ae_outcome_problems(outcome: str | None, resolved: dt.date | None) -> list[tuple[str, str]]:
    """An event recovered from has ended: it needs the date it resolved."""
    if outcome in RESOLVED_OUTCOMES and resolved is None:
        return [("resolved", "an outcome of recovered needs the date the event resolved; enter it, or choose recovering")]
    return []

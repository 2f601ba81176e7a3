"""Turning a criterion's window into dates.

Windows are relative to a named reference date and inclusive at both ends. Months are
calendar months: the same day number in the earlier month, clamped to that month's
last day (2 months before 2024-04-30 is 2024-02-29).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from trialdesk.criteria.language import Anchor, Window


@dataclass(frozen=True)
class Anchors:
    as_of: dt.date
    planned_first_infusion: dt.date

    def date(self, anchor: Anchor) -> dt.date:
        return self.as_of if anchor == "as_of" else self.planned_first_infusion


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def shift(day: dt.date, amount: int, unit: str) -> dt.date:
    return add_months(day, amount) if unit == "months" else day + dt.timedelta(days=amount)


def resolve(window: Window, anchors: Anchors) -> tuple[dt.date | None, dt.date | None]:
    """(first day, last day) of the window; None for an open end."""
    ref = anchors.date(window.anchor)
    start = shift(ref, window.start, window.unit) if window.start is not None else None
    end = shift(ref, window.end, window.unit) if window.end is not None else None
    return start, end

"""Each participant's visits, from the protocol's schedule and their first infusion.

Day 0 is the first infusion. A visit is *in window* from ``day - window_before`` to
``day + window_after``; one done outside it is flagged *out of window* (kept, not
refused: the visit happened); one not done by the end of its window is *missed*.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from trialdesk.protocol.model import Protocol
from trialdesk.trial.errors import ConductError

VisitFlag = Literal["done", "out_of_window", "missed", "due", "upcoming"]


@dataclass(frozen=True)
class ScheduledVisit:
    code: str
    name: str
    day: int
    target: dt.date
    earliest: dt.date
    latest: dt.date
    forms: tuple[str, ...]
    infusion: int | None = None

    def in_window(self, day: dt.date) -> bool:
        return self.earliest <= day <= self.latest


def visit_schedule(protocol: Protocol, first_infusion: dt.date) -> list[ScheduledVisit]:
    out = []
    for v in protocol.schedule.visits:
        target = first_infusion + dt.timedelta(days=v.day)
        out.append(ScheduledVisit(code=v.code, name=v.name, day=v.day, target=target,
                                  earliest=target - dt.timedelta(days=v.window_before),
                                  latest=target + dt.timedelta(days=v.window_after),
                                  forms=tuple(v.forms), infusion=v.infusion))
    return out


def visit_flag(visit: ScheduledVisit, done_on: dt.date | None, as_of: dt.date) -> VisitFlag:
    if done_on is not None:
        return "done" if visit.in_window(done_on) else "out_of_window"
    if as_of > visit.latest:
        return "missed"
    if as_of >= visit.earliest:
        return "due"
    return "upcoming"


def check_visit_date(visit: ScheduledVisit, done_on: dt.date, *, consented_on: dt.date, enrolled_on: dt.date,
                     today: dt.date) -> VisitFlag:
    """Refuse an impossible visit date; otherwise say whether it is in window."""
    if done_on > today:
        raise ConductError("date", f"a visit cannot be dated in the future ({done_on}); record it when it has happened")
    if done_on < consented_on:
        raise ConductError("date", f"the visit ({done_on}) is before consent ({consented_on}); no study procedure may precede consent")
    if visit.day >= 0 and done_on < enrolled_on:
        raise ConductError("date", f"visit {visit.code} ({done_on}) is before enrolment ({enrolled_on}); correct the date")
    return visit_flag(visit, done_on, today)

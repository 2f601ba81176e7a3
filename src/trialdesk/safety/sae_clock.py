"""Deadlines for reporting serious adverse events, from the protocol's ``sae_reporting`` rules.

The clock starts at ``learned_at``, when the site learned of the event; it must be timezone-aware
(a naive instant is refused with :class:`~trialdesk.safety.site_time.NaiveDatetimeError`).

- **Hours** (``due_hours``, the 24-hour notice to sponsor and IRB) are exact elapsed time: the due
  instant is ``learned_at`` plus that many hours of real time, computed in UTC, so a daylight-saving
  change moves the wall-clock hour (learned 10:00 EST the day before spring-forward, due 11:00 EDT).
- **Calendar days** (``due_calendar_days``, 7 and 15 days under 21 CFR 312.32(c)) count the site's
  calendar: day 0 is the date at the site on which it learned of the event, and the report is due
  by the end of day N (23:59:59.999999 at the site). Weekends and holidays do not extend them.
- Dates at the site are in ``tz``: pass ``site_zone(protocol)`` (the protocol file's
  ``locations[].time_zone``); the default is America/New_York (Jacksonville, Florida).

Which rules apply to a serious AE (``serious`` is true):

- ``all_serious``: every one.
- ``unexpected_fatal_or_life_threatening_suspected``: unexpected, suspected (relatedness possibly or
  stronger: a "reasonable possibility", 21 CFR 312.32(a)), and fatal (criterion ``death`` or outcome
  ``fatal``) or life-threatening.
- ``unexpected_serious_suspected``: unexpected and suspected, and not the fatal/life-threatening case
  (that one has the shorter clock and its report covers it).
- ``follow_up``: for each piece of follow-up information received after a first report was submitted;
  its clock starts when the information was received.

A report is *submitted* when a :class:`SubmittedReport` for the same AE and rule exists (for
follow-ups: submitted at or after the information was received, matched in order), *overdue* when
``now`` is past the due instant, and *due* otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from trialdesk.protocol.model import Protocol, ReportingRule
from trialdesk.safety.site_time import SITE_TZ, require_aware
from trialdesk.trial.records import AdverseEvent, TrialData, is_related

__all__ = [
    "DueReport",
    "FollowUpReceived",
    "SaeClockError",
    "SubmittedReport",
    "applicable_rules",
    "due_at",
    "due_reports",
]

ReportStatus = Literal["due", "overdue", "submitted"]


class SaeClockError(ValueError):
    """A serious AE whose clock cannot start."""


@dataclass(frozen=True)
class SubmittedReport:
    ae_id: str
    rule_id: str
    submitted_at: dt.datetime


@dataclass(frozen=True)
class FollowUpReceived:
    """New information about an SAE reached the site (starts a follow-up clock)."""

    ae_id: str
    received_at: dt.datetime


@dataclass(frozen=True)
class DueReport:
    ae_id: str
    rule_id: str
    recipient: str
    clock_start: dt.datetime
    due_at: dt.datetime  # in the site's time zone
    status: ReportStatus
    submitted_at: dt.datetime | None = None

    @property
    def late(self) -> bool:
        return self.submitted_at is not None and self.submitted_at > self.due_at


def due_at(clock_start: dt.datetime, rule: ReportingRule, tz: ZoneInfo = SITE_TZ) -> dt.datetime:
    """The instant (in ``tz``) a report under ``rule`` is due, for a clock started at ``clock_start``."""
    start = require_aware(clock_start, "learned_at")
    if rule.due_hours is not None:
        return (start.astimezone(dt.UTC) + dt.timedelta(hours=rule.due_hours)).astimezone(tz)
    assert rule.due_calendar_days is not None  # ReportingRule holds exactly one of the two
    last_day = start.astimezone(tz).date() + dt.timedelta(days=rule.due_calendar_days)
    return dt.datetime.combine(last_day, dt.time.max, tzinfo=tz)


def _fatal_or_life_threatening(ae: AdverseEvent) -> bool:
    return "death" in ae.seriousness or "life_threatening" in ae.seriousness or ae.outcome == "fatal"


def applicable_rules(ae: AdverseEvent, protocol: Protocol) -> list[ReportingRule]:
    """The initial-report rules that apply to ``ae`` (none when it is not serious)."""
    if not ae.serious:
        return []
    suspected_unexpected = is_related(ae.relatedness) and not ae.expected
    seven_day = suspected_unexpected and _fatal_or_life_threatening(ae)
    applies = {
        "all_serious": True,
        "unexpected_fatal_or_life_threatening_suspected": seven_day,
        "unexpected_serious_suspected": suspected_unexpected and not seven_day,
        "follow_up": False,
    }
    return [r for r in protocol.safety.sae_reporting if applies[r.applies_to]]


def _status(due: dt.datetime, submitted: SubmittedReport | None, now: dt.datetime) -> ReportStatus:
    if submitted is not None:
        return "submitted"
    return "overdue" if now > due else "due"


def due_reports(
    data: TrialData,
    protocol: Protocol,
    now: dt.datetime,
    submitted: Sequence[SubmittedReport] = (),
    follow_ups: Iterable[FollowUpReceived] = (),
    tz: ZoneInfo = SITE_TZ,
) -> list[DueReport]:
    """Every report the serious AEs of ``data`` call for, with its due instant and status, soonest first."""
    now = require_aware(now, "now")
    for s in submitted:
        require_aware(s.submitted_at, "submitted_at")
    out: list[DueReport] = []
    serious = {ae.id: ae for ae in data.adverse_events if ae.serious}
    for ae in serious.values():
        if ae.learned_at is None:
            raise SaeClockError(f"AE {ae.id}: serious, but learned_at is empty; record when the site learned of it")
        start = require_aware(ae.learned_at, f"AE {ae.id} learned_at")
        for rule in applicable_rules(ae, protocol):
            done = min((s for s in submitted if s.ae_id == ae.id and s.rule_id == rule.id), key=lambda s: s.submitted_at, default=None)
            due = due_at(start, rule, tz)
            out.append(DueReport(ae.id, rule.id, rule.recipient, start, due, _status(due, done, now),
                                 done.submitted_at if done else None))
    follow_rules = [r for r in protocol.safety.sae_reporting if r.applies_to == "follow_up"]
    for rule in follow_rules:
        used: set[int] = set()
        for info in sorted(follow_ups, key=lambda f: require_aware(f.received_at, "received_at")):
            owner = serious.get(info.ae_id)
            first_report = min((s.submitted_at for s in submitted if s.ae_id == info.ae_id and s.rule_id != rule.id), default=None)
            if owner is None or first_report is None or first_report > info.received_at:
                continue  # information before any report goes into the initial report
            match = next((i for i, s in enumerate(submitted) if i not in used and s.ae_id == info.ae_id
                          and s.rule_id == rule.id and s.submitted_at >= info.received_at), None)
            done = submitted[match] if match is not None else None
            if match is not None:
                used.add(match)
            due = due_at(info.received_at, rule, tz)
            out.append(DueReport(owner.id, rule.id, rule.recipient, info.received_at, due, _status(due, done, now),
                                 done.submitted_at if done else None))
    return sorted(out, key=lambda r: (r.due_at, r.ae_id, r.rule_id))

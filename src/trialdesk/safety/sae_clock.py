"""Deadlines for reporting serious adverse events, from the protocol's ``sae_reporting`` rules.

The clock starts at ``learned_at``, when the site learned of the event; it must be timezone-aware
(a naive instant is refused with :class:`~trialdesk.safety.site_time.NaiveDatetimeError`).

- **Hours** (``due_hours``, the 24-hour notice to sponsor and IRB) are exact elapsed time: the due
  instant is ``learned_at`` plus that many hours of real time, computed in UTC, so a daylight-saving
  change moves the wall-clock hour (learned 10:00 EST the day before spring-forward, due 11:00 EDT).
- **Calendar days** (``due_calendar_days``, 7 and 15 days under 21 CFR 312.32(c)) count the site's
  calendar: day 0 is the date at the site on which it learned of the event, and the report is due
  by the end of day N (23:59:59.999999 at the site). Weekends and holidays do not extend them.
- Dates at the site are in ``tz``: ``site_zone(protocol)`` (the protocol file's ``locations[].time_zone``);
  a protocol that names no zone is refused rather than read on an assumed clock.

Which rules apply to a serious AE (``serious`` is true):

- ``all_serious``: every one.
- ``unexpected_serious_suspected`` (21 CFR 312.32(c)(1)(i), the 15-day IND safety report to FDA and
  all participating investigators): unexpected and suspected (relatedness possibly or stronger: a
  "reasonable possibility", 312.32(a)), **including** the fatal and life-threatening ones.
- ``unexpected_fatal_or_life_threatening_suspected`` (312.32(c)(2), 7 days): unexpected, suspected,
  and fatal (criterion ``death`` or outcome ``fatal``) or life-threatening. The regulation says the
  sponsor must "also" notify FDA within 7 days: this notice comes in addition to the 15-day report,
  never instead of it.
- ``follow_up`` (312.32(d)(3) for IND safety reports: "as soon as the information is available", at
  the latest within the rule's days): for each piece of follow-up information received after a first
  report under one of the rule's ``follows`` rules (any rule when empty) was submitted; its clock
  starts when the information was received.

*Unexpected* is the sponsor-investigator's recorded assessment (``AdverseEvent.expected``). While a
serious suspected event is not yet assessed (``expected`` is None) its IND reports are listed with
``pending_assessment``: due, by the same clock, if the assessment finds it unexpected. Nothing is
dropped because a judgement has not been made yet.

Aggregate reports (312.32(c)(1)(iv), :mod:`trialdesk.safety.aggregate`): when an aggregate rule fires,
each of its ``reports`` rules is due from the instant it fired; the row's AE id is the event that made
it fire, its rule id ``<aggregate id>/<rule id>`` (e.g. ``AGG1/R3``).

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
from trialdesk.safety.aggregate import evaluate_aggregate
from trialdesk.safety.site_time import require_aware, site_zone
from trialdesk.trial.records import AdverseEvent, TrialData, is_related

__all__ = [
    "DueReport",
    "FollowUpReceived",
    "SaeClockError",
    "SubmittedReport",
    "applicable_rules",
    "due_at",
    "due_reports",
    "report_history",
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
    #: the IND report is due only if the sponsor-investigator assesses the event unexpected (not yet assessed)
    pending_assessment: bool = False
    #: why the report is due, for a person: the rule's reason, and for an aggregate report what fired it
    basis: str = ""

    @property
    def late(self) -> bool:
        return self.submitted_at is not None and self.submitted_at > self.due_at

    def as_dict(self) -> dict[str, object]:
        """The row as JSON-ready values (instants in ISO 8601 with their offset, the zone named)."""
        zone = getattr(self.due_at.tzinfo, "key", None) or str(self.due_at.tzinfo)
        return {"ae_id": self.ae_id, "rule_id": self.rule_id, "recipient": self.recipient,
                "clock_start": self.clock_start.isoformat(), "due_at": self.due_at.isoformat(), "time_zone": zone,
                "status": self.status, "submitted_at": self.submitted_at.isoformat() if self.submitted_at else None,
                "late": self.late, "pending_assessment": self.pending_assessment, "basis": self.basis}


def due_at(clock_start: dt.datetime, rule: ReportingRule, tz: ZoneInfo) -> dt.datetime:
    """The instant (in ``tz``) a report under ``rule`` is due, for a clock started at ``clock_start``."""
    start = require_aware(clock_start, "learned_at")
    if rule.due_hours is not None:
        return (start.astimezone(dt.UTC) + dt.timedelta(hours=rule.due_hours)).astimezone(tz)
    assert rule.due_calendar_days is not None  # ReportingRule holds exactly one of the two
    last_day = start.astimezone(tz).date() + dt.timedelta(days=rule.due_calendar_days)
    return dt.datetime.combine(last_day, dt.time.max, tzinfo=tz)


def _fatal_or_life_threatening(ae: AdverseEvent) -> bool:
    return "death" in ae.seriousness or "life_threatening" in ae.seriousness or ae.outcome == "fatal"


def applicable_rules(ae: AdverseEvent, protocol: Protocol, *, if_unexpected: bool = False) -> list[ReportingRule]:
    """The initial-report rules that apply to ``ae`` (none when it is not serious).

    An event not yet assessed for expectedness (``expected`` None) gets the IND rules only with
    ``if_unexpected`` (what would apply should it be assessed unexpected)."""
    if not ae.serious:
        return []
    unexpected = ae.expected is False or (ae.expected is None and if_unexpected)
    suspected_unexpected = is_related(ae.relatedness) and unexpected
    applies = {
        "all_serious": True,
        "unexpected_fatal_or_life_threatening_suspected": suspected_unexpected and _fatal_or_life_threatening(ae),
        "unexpected_serious_suspected": suspected_unexpected,  # 312.32(c)(2) "also": the 7-day notice does not replace it
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
    submitted: Sequence[SubmittedReport] | None = None,
    follow_ups: Iterable[FollowUpReceived] | None = None,
    tz: ZoneInfo | None = None,
) -> list[DueReport]:
    """Every report the serious AEs of ``data`` call for, with its due instant and status, soonest first.

    ``submitted`` and ``follow_ups`` default to what the data cut carries (``safety_reports``,
    ``follow_up_information``); ``tz`` to the protocol's site zone."""
    tz = tz or site_zone(protocol)
    now = require_aware(now, "now")
    if submitted is None:
        submitted = [SubmittedReport(r.ae_id, r.rule_id, r.submitted_at) for r in data.safety_reports]
    if follow_ups is None:
        follow_ups = [FollowUpReceived(f.ae_id, f.received_at) for f in data.follow_up_information]
    for s in submitted:
        require_aware(s.submitted_at, "submitted_at")
    out: list[DueReport] = []
    serious = {ae.id: ae for ae in data.adverse_events if ae.serious}
    rules = {r.id: r for r in protocol.safety.sae_reporting}

    def first_submitted(ae_id: str, rule_id: str) -> SubmittedReport | None:
        return min((s for s in submitted if s.ae_id == ae_id and s.rule_id == rule_id), key=lambda s: s.submitted_at, default=None)

    for ae in serious.values():
        if ae.learned_at is None:
            raise SaeClockError(f"AE {ae.id}: serious, but learned_at is empty; record when the site learned of it")
        start = require_aware(ae.learned_at, f"AE {ae.id} learned_at")
        firm = {r.id for r in applicable_rules(ae, protocol)}
        for rule in applicable_rules(ae, protocol, if_unexpected=True):
            done = first_submitted(ae.id, rule.id)
            due = due_at(start, rule, tz)
            out.append(DueReport(ae.id, rule.id, rule.recipient, start, due, _status(due, done, now),
                                 done.submitted_at if done else None, pending_assessment=rule.id not in firm, basis=rule.reason))
    for agg in evaluate_aggregate(data, protocol, tz):
        if agg.fired_at is None or agg.trigger_ae is None:
            continue
        for rid in next(a for a in protocol.safety.aggregate_reports if a.id == agg.rule_id).reports:
            rule = rules[rid]
            row_id = f"{agg.rule_id}/{rid}"
            done = first_submitted(agg.trigger_ae, row_id)
            due = due_at(agg.fired_at, rule, tz)
            out.append(DueReport(agg.trigger_ae, row_id, rule.recipient, agg.fired_at, due, _status(due, done, now),
                                 done.submitted_at if done else None, basis=agg.sentence()))
    follow_rules = [r for r in protocol.safety.sae_reporting if r.applies_to == "follow_up"]
    for rule in follow_rules:
        used: set[int] = set()
        followed = set(rule.follows) or {r.id for r in protocol.safety.sae_reporting if r.applies_to != "follow_up"}
        for info in sorted(follow_ups, key=lambda f: require_aware(f.received_at, "received_at")):
            owner = serious.get(info.ae_id)
            first_report = min((s.submitted_at for s in submitted if s.ae_id == info.ae_id and s.rule_id in followed), default=None)
            if owner is None or first_report is None or first_report > info.received_at:
                continue  # information before any report goes into the initial report
            match = next((i for i, s in enumerate(submitted) if i not in used and s.ae_id == info.ae_id
                          and s.rule_id == rule.id and s.submitted_at >= info.received_at), None)
            done = submitted[match] if match is not None else None
            if match is not None:
                used.add(match)
            due = due_at(info.received_at, rule, tz)
            out.append(DueReport(owner.id, rule.id, rule.recipient, info.received_at, due, _status(due, done, now),
                                 done.submitted_at if done else None, basis=rule.reason))
    return sorted(out, key=lambda r: (r.due_at, r.ae_id, r.rule_id))


def report_history(ae_id: str, reports: Sequence[DueReport]) -> list[DueReport]:
    """One AE's reports in the order their clocks started (initial reports, then follow-ups): its report history."""
    return sorted((r for r in reports if r.ae_id == ae_id), key=lambda r: (r.clock_start, r.due_at, r.rule_id))

"""Cohorts and dose escalation in conduct: which participants had a dose-limiting toxicity, when a
cohort's DLT window closes, what the protocol's escalation rule decides then, and the DSMB's
signed decision that alone opens the next cohort.

Readings (each a rule a DSMB would state):
- a cohort is reviewed only when all its participants are dosed and the DLT window of the last
  one has closed (the day after infusion date + ``window_days``);
- the escalation rule is applied to every participant of every reviewed cohort, per dose level;
- the first cohort is open from the start; any later cohort opens only with the DSMB's signed
  decision after the review of the cohort before it, and that decision may be the rule's or more
  cautious (stay rather than escalate, de-escalate, stop) but never bolder than the rule;
- a dose from a cohort that is not open is refused, naming the cohort and what it waits for;
- the sentinel participant(s) of a cohort are dosed first; the others wait ``sentinel_gap_days``
  after the last sentinel, and ``within_cohort_gap_days`` after the participant before them.
The judgement whether an event is a DLT rests on the grade and relatedness the investigator
recorded; nothing here grades or attributes an event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trialdesk.protocol.model import Cohort, DltDefinition, DoseFinding, Protocol
from trialdesk.trial.dose import CheckedDose
from trialdesk.trial.dose import check as check_dose_as_stated
from trialdesk.trial.errors import ConductError
from trialdesk.trial.escalation import Decision, Outcome, decide
from trialdesk.trial.records import AdverseEvent, TrialData, at_least

#: how bold a decision is; a DSMB may choose the rule's decision or a more cautious one
_BOLDNESS: dict[Decision, int] = {"escalate": 3, "stay": 2, "de-escalate": 1, "stop": 0}


def is_dlt(event: AdverseEvent, infusion_date: dt.date, dlt: DltDefinition) -> bool:
    """Whether an event meets the protocol's DLT definition, as the investigator graded and attributed it."""
    if not (infusion_date <= event.onset <= infusion_date + dt.timedelta(days=dlt.window_days)):
        return False
    if event.grade < dlt.min_grade or not at_least(event.relatedness, dlt.min_relatedness):
        return False
    if dlt.serious_only and not event.serious:
        return False
    return not dlt.terms or event.term.casefold() in {t.casefold() for t in dlt.terms}


def dlts_of(data: TrialData, subject_id: str, dlt: DltDefinition) -> list[AdverseEvent]:
    infusions = data.infusions_of(subject_id)
    if not infusions:
        return []
    first = infusions[0].date
    return [e for e in data.adverse_events if e.subject_id == subject_id and is_dlt(e, first, dlt)]


def members(cohort_id: str, assignments: Mapping[str, str]) -> list[str]:
    return sorted(s for s, c in assignments.items() if c == cohort_id)


@dataclass(frozen=True)
class CohortReview:
    """A cohort whose DLT window has closed: who had a DLT, and the escalation rule's decision."""

    cohort_id: str
    window_closed_on: dt.date
    participants: tuple[str, ...]
    with_dlt: tuple[str, ...]
    outcome: Outcome
    next_cohort: str | None
    note: str


def window_closes_on(data: TrialData, cohort: Cohort, assignments: Mapping[str, str], dlt: DltDefinition) -> dt.date:
    """The first day the cohort's DLT window is closed: the day after the last member's infusion + window."""
    dosed = [data.infusions_of(s)[0].date for s in members(cohort.id, assignments) if data.infusions_of(s)]
    if len(dosed) < cohort.size:
        raise ConductError("cohort", f"cohort {cohort.id} has {len(dosed)} of {cohort.size} participants dosed;"
                                     " its DLT window closes only after the last one is dosed")
    return max(dosed) + dt.timedelta(days=dlt.window_days + 1)


def review(protocol: Protocol, data: TrialData, assignments: Mapping[str, str], cohort_id: str, today: dt.date) -> CohortReview:
    """Apply the escalation rule once ``cohort_id``'s DLT window has closed; refuse before."""
    df = _dose_finding(protocol)
    cohort = _cohort(df, cohort_id)
    closes = window_closes_on(data, cohort, assignments, df.dlt)
    if today < closes:
        raise ConductError("cohort", f"cohort {cohort.id}'s DLT window ({df.dlt.window_days} days after the last infusion)"
                                     f" is open until {closes - dt.timedelta(days=1)}; review it from {closes}")
    spec = protocol.study_intervention.dose_spec
    assert spec is not None  # the protocol model requires dose levels when there is a dose_finding section
    levels = [lv.id for lv in spec.levels]
    upto = df.cohorts.index(cohort)
    n, y = [0] * len(levels), [0] * len(levels)
    for c in df.cohorts[: upto + 1]:
        for s in members(c.id, assignments):
            if data.infusions_of(s):
                n[levels.index(c.dose_level)] += 1
                y[levels.index(c.dose_level)] += bool(dlts_of(data, s, df.dlt))
    current = levels.index(cohort.dose_level)
    outcome = decide(df.escalation, n, y, current)
    nxt, note = _next_cohort(df, upto, outcome, levels)
    people = members(cohort.id, assignments)
    return CohortReview(cohort.id, closes, tuple(people), tuple(s for s in people if dlts_of(data, s, df.dlt)), outcome, nxt, note)


def _next_cohort(df: DoseFinding, upto: int, outcome: Outcome, levels: list[str]) -> tuple[str | None, str]:
    if outcome.decision == "stop" or outcome.next_level is None:
        return None, "the rule stops dose finding"
    want = levels[outcome.next_level]
    for c in df.cohorts[upto + 1:]:
        if c.dose_level == want:
            return c.id, f"next: cohort {c.id} at {want}"
    return None, f"the rule calls for a cohort at {want}, which the protocol does not list; a protocol amendment must add it"


@dataclass(frozen=True)
class SignedCohortDecision:
    """The DSMB's signed decision after reviewing a cohort: which cohort it reviewed, its decision,
    the cohort it opens (None when it stops or holds), who signed and when (timezone-aware)."""

    reviewed_cohort: str
    decision: Decision
    opens: str | None
    signed_by: str
    signed_at: dt.datetime
    rationale: str


def open_next(protocol: Protocol, review_: CohortReview, signed: SignedCohortDecision) -> str | None:
    """The cohort the DSMB's signed decision opens; refuse an unsigned, mismatched or bolder-than-the-rule decision."""
    if not signed.signed_by.strip():
        raise ConductError("signed_by", "the next cohort opens only with the DSMB's signed decision; sign it")
    if signed.signed_at.tzinfo is None:
        raise ConductError("signed_at", "the signature time must say its zone")
    if signed.reviewed_cohort != review_.cohort_id:
        raise ConductError("reviewed_cohort", f"this decision reviews cohort {signed.reviewed_cohort}, not {review_.cohort_id}")
    if signed.signed_at.date() < review_.window_closed_on:
        raise ConductError("signed_at", f"signed before cohort {review_.cohort_id}'s DLT window closed ({review_.window_closed_on})")
    if not signed.rationale.strip():
        raise ConductError("rationale", "write the DSMB's rationale")
    if _BOLDNESS[signed.decision] > _BOLDNESS[review_.outcome.decision]:
        raise ConductError("decision", f"the escalation rule decides {review_.outcome.decision!r} ({review_.outcome.why});"
                                       f" the DSMB may choose that or a more cautious decision, not {signed.decision!r}")
    df = _dose_finding(protocol)
    if signed.decision == "stop":
        if signed.opens is not None:
            raise ConductError("opens", "a decision to stop opens no cohort")
        return None
    if signed.opens is None:
        raise ConductError("opens", "name the cohort this decision opens")
    target = _cohort(df, signed.opens)
    order = [c.id for c in df.cohorts]
    if order.index(target.id) <= order.index(review_.cohort_id):
        raise ConductError("opens", f"cohort {target.id} is not after cohort {review_.cohort_id}")
    if signed.decision == "escalate" and signed.opens != review_.next_cohort:
        raise ConductError("opens", f"the rule's next cohort is {review_.next_cohort}; {signed.opens} is not it")
    return target.id


def open_cohorts(protocol: Protocol, decisions: Sequence[SignedCohortDecision]) -> list[str]:
    """The cohorts open for dosing: the first, and each one a signed DSMB decision opened."""
    df = _dose_finding(protocol)
    opened = [df.cohorts[0].id]
    for d in decisions:
        if d.decision == "stop":
            return []
        if d.opens and d.signed_by.strip() and d.opens not in opened:
            opened.append(d.opens)
    return opened


def require_open(protocol: Protocol, cohort_id: str, decisions: Sequence[SignedCohortDecision]) -> Cohort:
    """Refuse a dose from a cohort that is not open yet, saying what it waits for."""
    df = _dose_finding(protocol)
    cohort = _cohort(df, cohort_id)
    if any(d.decision == "stop" for d in decisions):
        raise ConductError("cohort", "the DSMB stopped dose finding; no cohort is open")
    if cohort.id in open_cohorts(protocol, decisions):
        return cohort
    reviewed = {d.reviewed_cohort for d in decisions}
    pending = [c for c in open_cohorts(protocol, decisions) if c not in reviewed]
    if not pending:
        raise ConductError("cohort", f"cohort {cohort.id} ({cohort.dose_level}) is not open: every open cohort has been reviewed"
                                     f" and no signed decision opened it")
    raise ConductError("cohort", f"cohort {cohort.id} ({cohort.dose_level}) is not open: it opens only with the DSMB's signed"
                                 f" decision after cohort {pending[0]}'s DLT window ({df.dlt.window_days} days) has closed")


def check_cohort_dose(protocol: Protocol, cohort_id: str, decisions: Sequence[SignedCohortDecision], total_cells: float,
                      weight_kg: float | None = None, bsa_m2: float | None = None) -> CheckedDose:
    """A dose for a participant of ``cohort_id``: refused unless the cohort is open and the dose is its level."""
    cohort = require_open(protocol, cohort_id, decisions)
    spec = protocol.study_intervention.dose_spec
    assert spec is not None  # the protocol model requires dose levels when there is a dose_finding section
    return check_dose_as_stated(spec, total_cells, weight_kg, bsa_m2, level_id=cohort.dose_level)


def check_gap(cohort: Cohort, earlier_dates: Sequence[dt.date], on: dt.date) -> None:
    """Refuse a first infusion too soon after the cohort's sentinel(s) or the participant before.
    ``earlier_dates`` are the first-infusion dates of the cohort's members already dosed."""
    dates = sorted(earlier_dates)
    k = len(dates)
    if k >= cohort.size:
        raise ConductError("cohort", f"cohort {cohort.id} is full ({cohort.size} dosed)")
    if cohort.sentinel and k >= cohort.sentinel:
        ready = dates[cohort.sentinel - 1] + dt.timedelta(days=cohort.sentinel_gap_days)
        if on < ready:
            raise ConductError("date", f"cohort {cohort.id}: after the sentinel (dosed {dates[cohort.sentinel - 1]}) the next"
                                       f" participant waits {cohort.sentinel_gap_days} days, until {ready}")
    if k and cohort.within_cohort_gap_days:
        ready = dates[-1] + dt.timedelta(days=cohort.within_cohort_gap_days)
        if on < ready:
            raise ConductError("date", f"cohort {cohort.id}: participants are dosed {cohort.within_cohort_gap_days} days apart;"
                                       f" the previous one was dosed {dates[-1]}, so not before {ready}")


def _dose_finding(protocol: Protocol) -> DoseFinding:
    if protocol.dose_finding is None:
        raise ConductError("protocol", f"protocol {protocol.id} has no dose_finding section (cohorts and escalation)")
    return protocol.dose_finding


def _cohort(df: DoseFinding, cohort_id: str) -> Cohort:
    try:
        return df.cohort(cohort_id)
    except KeyError:
        raise ConductError("cohort", f"no cohort {cohort_id!r}; cohorts: {', '.join(c.id for c in df.cohorts)}") from None

"""The cohort gate of the trial desk: who is in which cohort (the coordinator's recorded assignment),
which cohorts take a participant, and whether a first dose may be given, read from what the desk
records (the assignments, the infusions given and the DSMB's signed decisions).

Readings (each stated so a DSMB can check it):
- a participant's cohort is the one the coordinator assigned them to, never inferred from a dose, so
  one dose level may be given in two cohorts (a 3+3 expansion);
- a participant is assigned to a cohort that is open and has a place: an assigned participant holds
  a place unless they left the study before their first infusion; the first infusion's dose must be
  the assigned cohort's dose level;
- a signed DSMB decision to continue (with or without modifications) whose report cut-off is on or
  after the day a cohort's DLT window closed is the DSMB's review of the earliest open cohort not yet
  reviewed (one decision, one cohort): it takes the escalation rule's decision for that cohort and
  opens the cohort the rule names next (none when the rule stops, or calls for a level the protocol
  does not list); a signed decision to stop ends dose finding; a pause opens nothing; an unsigned
  decision counts for nothing;
- the first cohort is open from the start; a full cohort takes no one more, and the sentinel and
  within-cohort gaps hold (:func:`trialdesk.trial.cohorts.check_gap`), counted over the cohort's
  assigned members already dosed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trialdesk.protocol.model import Cohort, DoseFinding, Protocol
from trialdesk.trial.cohorts import (
    SignedCohortDecision,
    check_gap,
    dlts_of,
    members,
    open_cohorts,
    require_open,
    review,
    window_closes_on,
)
from trialdesk.trial.dose import check as check_dose
from trialdesk.trial.dose import dose_text
from trialdesk.trial.dsmb_decision import Decision
from trialdesk.trial.errors import ConductError
from trialdesk.trial.escalation import boin_table
from trialdesk.trial.records import TrialData

#: subject id -> cohort id, as the coordinator assigned them
Assignments = Mapping[str, str]


def _dose_finding(protocol: Protocol) -> DoseFinding:
    if protocol.dose_finding is None:
        raise ConductError("protocol", f"protocol {protocol.id} has no dose_finding section (cohorts and escalation)")
    return protocol.dose_finding


def _cohort(df: DoseFinding, cohort_id: str) -> Cohort:
    try:
        return df.cohort(cohort_id)
    except KeyError:
        raise ConductError("cohort", f"no cohort {cohort_id[:40]!r}; cohorts: {', '.join(c.id for c in df.cohorts)}") from None


def holds_place(data: TrialData, subject_id: str) -> bool:
    """An assigned participant holds their cohort's place once dosed, or while on study awaiting the dose."""
    if data.infusions_of(subject_id):
        return True
    person = next((p for p in data.participants if p.subject_id == subject_id), None)
    return person is not None and person.status in ("enrolled", "on_study")


def places_taken(data: TrialData, cohort_id: str, assigned: Assignments) -> list[str]:
    return [s for s in members(cohort_id, assigned) if holds_place(data, s)]


def signed_cohort_decisions(protocol: Protocol, data: TrialData, assigned: Assignments,
                            decisions: Sequence[Decision]) -> list[SignedCohortDecision]:
    """The DSMB's signed decisions read as cohort reviews (see the module's readings), in the order decided."""
    df = _dose_finding(protocol)
    reviewed: list[str] = []
    out: list[SignedCohortDecision] = []
    for d in sorted(decisions, key=lambda d: d.decided_on):
        if not d.signed_by.strip():
            continue
        signed_at = dt.datetime.combine(d.decided_on, dt.time.min, tzinfo=dt.UTC)  # the day decided; the time is not used
        if d.kind == "stop":
            last = reviewed[-1] if reviewed else df.cohorts[0].id
            out.append(SignedCohortDecision(last, "stop", None, d.signed_by, signed_at, d.rationale))
            break
        if d.kind not in ("continue", "continue_with_modifications"):
            continue
        pending = [c for c in df.cohorts if c.id in open_cohorts(protocol, out) and c.id not in reviewed]
        if not pending:
            continue
        c = pending[0]
        try:
            closes = window_closes_on(data, c, assigned, df.dlt)
        except ConductError:  # not all dosed yet: it cannot have been reviewed
            continue
        if closes > d.report_cutoff:
            continue
        r = review(protocol, data, assigned, c.id, today=max(d.decided_on, closes))
        reviewed.append(c.id)
        out.append(SignedCohortDecision(c.id, r.outcome.decision, r.next_cohort, d.signed_by, signed_at, d.rationale))
        if r.outcome.decision == "stop":
            break
    return out


def check_assignment(protocol: Protocol, data: TrialData, assigned: Assignments, decisions: Sequence[Decision],
                     subject_id: str, cohort_id: str) -> Cohort:
    """Refuse to assign ``subject_id`` to a cohort that is not open (saying which review it waits for), is full,
    or when dose finding has stopped; or a participant already assigned, dosed, or no longer on study."""
    df = _dose_finding(protocol)
    cohort = _cohort(df, cohort_id)
    if subject_id in assigned:
        raise ConductError("cohort", f"{subject_id} is already assigned to cohort {assigned[subject_id]}")
    person = next((p for p in data.participants if p.subject_id == subject_id), None)
    if person is None:
        raise ConductError("cohort", f"{subject_id} is not an enrolled participant")
    if person.status not in ("enrolled", "on_study"):
        raise ConductError("cohort", f"{subject_id} is {person.status.replace('_', ' ')}; only a participant on study is assigned")
    if data.infusions_of(subject_id):
        raise ConductError("cohort", f"{subject_id} is already dosed; a cohort is assigned before the first infusion")
    require_open(protocol, cohort.id, signed_cohort_decisions(protocol, data, assigned, decisions))
    taken = places_taken(data, cohort.id, assigned)
    if len(taken) >= cohort.size:
        raise ConductError("cohort", f"cohort {cohort.id} is full: its {cohort.size} places are assigned ({', '.join(taken)})")
    return cohort


def assignable(protocol: Protocol, data: TrialData, assigned: Assignments, decisions: Sequence[Decision]) -> list[Cohort]:
    """The cohorts a participant may be assigned to now: open, with a place."""
    df = _dose_finding(protocol)
    opened = open_cohorts(protocol, signed_cohort_decisions(protocol, data, assigned, decisions))
    return [c for c in df.cohorts if c.id in opened and len(places_taken(data, c.id, assigned)) < c.size]


def check_first_dose(protocol: Protocol, data: TrialData, assigned: Assignments, decisions: Sequence[Decision], subject_id: str,
                     total_cells: float, weight_kg: float | None, on: dt.date) -> Cohort:
    """Refuse a first dose to a participant without a cohort, from a cohort that is not open, at another cohort's
    dose level, or too soon after the cohort's sentinel or the participant before."""
    df = _dose_finding(protocol)
    if subject_id not in assigned:
        raise ConductError("cohort", f"{subject_id} has no cohort; assign them to an open cohort before the first infusion")
    cohort = _cohort(df, assigned[subject_id])
    require_open(protocol, cohort.id, signed_cohort_decisions(protocol, data, assigned, decisions))
    check_cohort_level(protocol, subject_id, cohort, total_cells, weight_kg)
    check_gap(cohort, [data.infusions_of(s)[0].date for s in members(cohort.id, assigned) if s != subject_id and data.infusions_of(s)], on)
    return cohort


def check_cohort_level(protocol: Protocol, subject_id: str, cohort: Cohort, total_cells: float, weight_kg: float | None) -> None:
    """Refuse a dose that is not the dose level of the participant's cohort, naming both levels in the protocol's unit."""
    spec = protocol.study_intervention.dose_spec
    assert spec is not None  # the protocol model requires dose levels when there is a dose_finding section
    checked = check_dose(spec, total_cells, weight_kg=weight_kg)  # refuses a dose at no level, naming the levels
    assert checked.level is not None  # a protocol with levels always names the level a dose matched
    if checked.level.id != cohort.dose_level:
        want = next(lv for lv in spec.levels if lv.id == cohort.dose_level)
        raise ConductError("total_cells", f"{subject_id} is assigned to cohort {cohort.id} at {want.id} ({dose_text(spec, want.amount)});"
                                          f" this dose, {dose_text(spec, checked.amount)}, is {checked.level.id}"
                                          f" ({dose_text(spec, checked.level.amount)}); give the cohort's dose level")


@dataclass(frozen=True)
class CohortRow:
    """One cohort as the desk shows it: its dose, who is assigned and dosed, DLTs, whether its window closed, and its state."""

    cohort: str
    dose: str
    size: int
    assigned: tuple[str, ...]
    dosed: int
    with_dlt: int
    window_closed: bool
    state: str


def cohort_rows(protocol: Protocol, data: TrialData, assigned: Assignments, decisions: Sequence[Decision],
                today: dt.date) -> list[CohortRow]:
    """Every cohort of the protocol, in order, with its state in words (open, full, waiting, reviewed, stopped)."""
    df = _dose_finding(protocol)
    spec = protocol.study_intervention.dose_spec
    assert spec is not None  # the protocol model requires dose levels when there is a dose_finding section
    levels = {lv.id: lv for lv in spec.levels}
    signed = signed_cohort_decisions(protocol, data, assigned, decisions)
    reviews = {d.reviewed_cohort: d for d in signed if d.decision != "stop"}
    stopped = any(d.decision == "stop" for d in signed)
    opened = open_cohorts(protocol, signed)
    rows = []
    for c in df.cohorts:
        taken = places_taken(data, c.id, assigned)
        dosed = [s for s in taken if data.infusions_of(s)]
        try:
            closed = today >= window_closes_on(data, c, assigned, df.dlt)
        except ConductError:
            closed = False
        if stopped:
            state = "stopped by the DSMB"
        elif c.id in reviews:
            r = reviews[c.id]
            state = f"reviewed by the DSMB: {r.decision}" + (f", opens {r.opens}" if r.opens else ", opens no cohort")
        elif c.id in opened:
            if len(taken) < c.size:
                state = f"open: {c.size - len(taken)} of {c.size} places to assign"
            elif len(dosed) < c.size:
                state = f"full: {len(dosed)} of {c.size} dosed"
            else:
                state = "full; DLT window " + ("closed: awaiting the DSMB's review" if closed else "open")
        else:
            state = waits_for(protocol, signed, c.id)
        lv = levels[c.dose_level]
        rows.append(CohortRow(c.id, f"{lv.id} ({lv.label or dose_text(spec, lv.amount)})", c.size, tuple(taken), len(dosed),
                              sum(1 for s in dosed if dlts_of(data, s, df.dlt)), closed, state))
    return rows


def waits_for(protocol: Protocol, signed: Sequence[SignedCohortDecision], cohort_id: str) -> str:
    """What a cohort not open waits for: the DSMB's signed review of the earliest open cohort not yet reviewed."""
    df = _dose_finding(protocol)
    reviewed = {d.reviewed_cohort for d in signed}
    pending = [c for c in open_cohorts(protocol, signed) if c not in reviewed]
    if pending:
        return f"waits for the DSMB's signed review of cohort {pending[0]}"
    return f"not opened: no review so far called for {_cohort(df, cohort_id).dose_level}"


def rule_table(protocol: Protocol) -> tuple[str, tuple[str, ...], list[tuple[str, ...]]]:
    """The escalation rule as a DSMB reads it: BOIN's decision table by number treated, or the 3+3 rule."""
    df = _dose_finding(protocol)
    rule = df.escalation
    size = df.cohorts[0].size
    if rule.design == "boin":
        assert rule.target_toxicity is not None  # the protocol model requires it for BOIN
        rows: list[tuple[str, ...]] = [(str(r.n), _num(r.escalate_max), _num(r.deescalate_min), _num(r.eliminate_min))
                for r in boin_table(rule, size * max(3, len(df.cohorts))) if r.n % size == 0]
        return (f"BOIN decision table, target DLT rate {rule.target_toxicity:.0%}",
                ("treated at the dose", "escalate if DLTs ≤", "de-escalate if DLTs ≥", "eliminate the dose if DLTs ≥"), rows)
    return ("3+3 rule, once a cohort's DLT window has closed", ("DLTs at the dose", "decision"), [
        ("0 of 3, or 1 of 6", "escalate: the next dose's cohort may open (at the highest dose: stop)"),
        ("1 of 3", "stay: three more at the same dose"),
        ("2 or more of 3 or 6", "de-escalate: three more at the dose below, the MTD once six have had it (at the lowest dose: stop)"),
    ])


def _num(v: int | None) -> str:
    return "-" if v is None else str(v)

"""The cohort gate of the trial desk: a first dose is refused unless its cohort is open, read from
what the desk records (the infusions given and the DSMB's signed decisions).

Readings (each stated so a DSMB can check it):
- a participant's cohort is the one cohort at the dose level their first infusion's dose matches; a
  protocol that gives one level in two cohorts (a 3+3 expansion) needs cohort assignments, which the
  desk does not record yet, so such a dose is refused, saying so;
- a signed DSMB decision to continue (with or without modifications) whose report cut-off is on or
  after the day a cohort's DLT window closed is the DSMB's review of the earliest such cohort not yet
  reviewed (one decision, one cohort): it takes the escalation rule's decision for that cohort and
  opens the cohort the rule names next (none when the rule stops, or calls for a level the protocol
  does not list); a signed decision to stop ends dose finding; a pause opens nothing; an unsigned
  decision counts for nothing;
- the first cohort is open from the start; a full cohort takes no one more, and the sentinel and
  within-cohort gaps hold (:func:`trialdesk.trial.cohorts.check_gap`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
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


def _dose_finding(protocol: Protocol) -> DoseFinding:
    if protocol.dose_finding is None:
        raise ConductError("protocol", f"protocol {protocol.id} has no dose_finding section (cohorts and escalation)")
    return protocol.dose_finding


def cohort_for_dose(protocol: Protocol, total_cells: float, weight_kg: float | None) -> Cohort:
    """The one cohort at the dose level this dose matches; refused when the level has no cohort or several."""
    df = _dose_finding(protocol)
    spec = protocol.study_intervention.dose_spec
    assert spec is not None  # the protocol model requires dose levels when there is a dose_finding section
    level = check_dose(spec, total_cells, weight_kg=weight_kg).level
    assert level is not None  # a protocol with levels always names the level a dose matched
    at_level = [c for c in df.cohorts if c.dose_level == level.id]
    if len(at_level) != 1:
        which = ", ".join(c.id for c in at_level) or "no cohort"
        raise ConductError("total_cells", f"{level.id} ({dose_text(spec, level.amount)}) is given in {which}; the desk cannot tell"
                                          " which cohort this participant is in (cohort assignments are not recorded yet)")
    return at_level[0]


def assignments(protocol: Protocol, data: TrialData) -> dict[str, str]:
    """Each dosed participant's cohort, from their first infusion's dose."""
    out = {}
    for p in data.participants:
        given = data.infusions_of(p.subject_id)
        if given:
            out[p.subject_id] = cohort_for_dose(protocol, given[0].total_cells, given[0].weight_kg).id
    return out


def signed_cohort_decisions(protocol: Protocol, data: TrialData, decisions: Sequence[Decision]) -> list[SignedCohortDecision]:
    """The DSMB's signed decisions read as cohort reviews (see the module's readings), in the order decided."""
    df = _dose_finding(protocol)
    assigned = assignments(protocol, data)
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
        for c in df.cohorts:
            if c.id in reviewed:
                continue
            try:
                closes = window_closes_on(data, c, assigned, df.dlt)
            except ConductError:  # not all dosed yet: neither it nor a later cohort can have been reviewed
                break
            if closes > d.report_cutoff:
                break
            r = review(protocol, data, assigned, c.id, today=max(d.decided_on, closes))
            reviewed.append(c.id)
            out.append(SignedCohortDecision(c.id, r.outcome.decision, r.next_cohort, d.signed_by, signed_at, d.rationale))
            break
    return out


def check_first_dose(protocol: Protocol, data: TrialData, decisions: Sequence[Decision], total_cells: float,
                     weight_kg: float | None, on: dt.date) -> Cohort:
    """Refuse a first dose from a cohort that is not open, full, or too soon after its sentinel or the participant before."""
    cohort = cohort_for_dose(protocol, total_cells, weight_kg)
    require_open(protocol, cohort.id, signed_cohort_decisions(protocol, data, decisions))
    assigned = assignments(protocol, data)
    check_gap(cohort, [data.infusions_of(s)[0].date for s in members(cohort.id, assigned)], on)
    return cohort


@dataclass(frozen=True)
class CohortRow:
    """One cohort as the desk shows it: its dose, who is dosed, DLTs, whether its window closed, and its state."""

    cohort: str
    dose: str
    size: int
    dosed: int
    with_dlt: int
    window_closed: bool
    state: str


def cohort_rows(protocol: Protocol, data: TrialData, decisions: Sequence[Decision], today: dt.date) -> list[CohortRow]:
    """Every cohort of the protocol, in order, with its state in words (open, waiting, reviewed, stopped)."""
    df = _dose_finding(protocol)
    spec = protocol.study_intervention.dose_spec
    assert spec is not None  # the protocol model requires dose levels when there is a dose_finding section
    levels = {lv.id: lv for lv in spec.levels}
    assigned = assignments(protocol, data)
    signed = signed_cohort_decisions(protocol, data, decisions)
    reviews = {d.reviewed_cohort: d for d in signed if d.decision != "stop"}
    stopped = any(d.decision == "stop" for d in signed)
    opened = set(open_cohorts(protocol, signed))
    rows = []
    for i, c in enumerate(df.cohorts):
        people = members(c.id, assigned)
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
            state = "open" if len(people) < c.size else "full; DLT window " + ("closed: awaiting the DSMB's review" if closed else "open")
        else:
            state = f"waits for the DSMB's signed review of cohort {df.cohorts[i - 1].id}"
        lv = levels[c.dose_level]
        rows.append(CohortRow(c.id, f"{lv.id} ({lv.label or dose_text(spec, lv.amount)})", c.size, len(people),
                              sum(1 for s in people if dlts_of(data, s, df.dlt)), closed, state))
    return rows


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

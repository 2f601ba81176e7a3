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

from trialdesk.protocol.model import Cohort, DoseFinding, Protocol
from trialdesk.trial.cohorts import SignedCohortDecision, check_gap, members, require_open, review, window_closes_on
from trialdesk.trial.dose import check as check_dose
from trialdesk.trial.dose import dose_text
from trialdesk.trial.dsmb_decision import Decision
from trialdesk.trial.errors import ConductError
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

"""Outcome measures as the protocol defines them: AETHER's primary outcome counts participants with a
treatment-emergent serious adverse event within 4 weeks of the infusion, by cohort."""

from __future__ import annotations

import pytest

from tests.trial.aether_data import EXPANSION_CELLS, ae, cut, expansion, subjects
from trialdesk.protocol.loader import load
from trialdesk.protocol.model import OutcomeMeasure, Protocol
from trialdesk.safety.outcome_measures import compute
from trialdesk.trial.errors import ConductError


@pytest.fixture(scope="module")
def aether() -> Protocol:
    return load("nct02013700")


EVENTS = [
    ae("A1", "C2-1", 10, serious=True),            # counts
    ae("A2", "C2-1", 20, serious=True),            # the same participant's second: one participant, two events
    ae("A3", "C1-1", 5, serious=False),            # not serious
    ae("A4", "C3-2", 29, serious=True),            # after the 4-week window
    ae("A5", "C3-3", -2, serious=True),            # before the infusion: not treatment-emergent
    ae("A6", "C1-2", 28, serious=True),            # on the window's last day: counts
]


def test_the_primary_outcome_counts_participants_with_a_serious_event_in_four_weeks_by_cohort(aether: Protocol) -> None:
    r = compute(aether, cut(subjects(), EVENTS), assignments=subjects())
    assert r.measure_id == "primary_te_sae" and r.counts == "participants"
    assert [(g.group, g.analysed, g.count) for g in r.groups] == [("C1", 3, 1), ("C2", 3, 1), ("C3", 3, 0)]


def test_counting_events_counts_each_event_and_groups_by_dose_level(aether: Protocol) -> None:
    r = compute(aether, cut(subjects(), EVENTS), "te_sae_events")
    assert [(g.group, g.count, g.event_ids) for g in r.groups] == [("DL1", 1, ("A6",)), ("DL2", 2, ("A1", "A2")), ("DL3", 0, ())]


def test_grouping_by_cohort_needs_each_participants_cohort(aether: Protocol) -> None:
    with pytest.raises(ConductError, match="no cohort assignment"):
        compute(aether, cut(subjects(), EVENTS), assignments={})


def test_a_measure_after_each_infusion_counts_an_event_in_two_windows_once(aether: Protocol) -> None:
    per_infusion = OutcomeMeasure.model_validate({"id": "all_ae", "title": "AEs", "counts": "events", "primary": True,
                                                  "events": {}, "window": {"days": 400, "each_infusion": True}})
    p = aether.model_copy(update={"outcome_measures": [per_infusion]})
    r = compute(p, cut(subjects(), EVENTS))
    assert [(g.group, g.count) for g in r.groups] == [("all", 5)]  # every event on or after its infusion


def test_a_protocol_without_a_primary_measure_says_so() -> None:
    with pytest.raises(ConductError, match="nct03929120 has no primary outcome measure \\(primary: true\\)"):
        compute(load("nct03929120"), cut({}, []))


def test_the_cohorts_recorded_in_the_data_cut_group_an_expansion_cohort_apart(aether: Protocol) -> None:
    """A dose level given in two cohorts (a 3+3 expansion): the cut's recorded cohorts tell them apart; without them
    the measure cannot say which cohort a DL1 participant was in."""
    p = expansion(aether)
    assigned = {**subjects(("C1",)), **subjects(("C2",))}
    events = [ae("A1", "C2-1", 10, serious=True)]
    data = cut(assigned, events, cells=EXPANSION_CELLS)
    with pytest.raises(ConductError, match="C1-1's dose level DL1 is given in cohorts C1, C2"):
        compute(p, data)
    people = [q.model_copy(update={"cohort": assigned[q.subject_id]}) for q in data.participants]
    recorded = data.model_copy(update={"participants": people})
    assert [(g.group, g.analysed, g.count) for g in compute(p, recorded).groups] == [("C1", 3, 0), ("C2", 3, 1), ("C3", 0, 0)]

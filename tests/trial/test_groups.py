"""A participant's reporting group: the cohort the desk recorded for them (dosed or not) where the data cut has it,
else the group of their first dose; SDTM ARM is the planned group and ACTARM the group of the dose given."""

from __future__ import annotations

import pytest

from tests.trial.aether_data import EXPANSION_CELLS, cut, expansion, subjects
from trialdesk.analysis.sdtm import arm_of
from trialdesk.protocol.loader import load
from trialdesk.protocol.model import Protocol
from trialdesk.trial import groups
from trialdesk.trial.errors import ConductError
from trialdesk.trial.records import TrialData


@pytest.fixture(scope="module")
def aether() -> Protocol:
    return load("nct02013700")


def _recorded(data: TrialData, cohorts: dict[str, str]) -> TrialData:
    people = [q.model_copy(update={"cohort": cohorts.get(q.subject_id)}) for q in data.participants]
    return data.model_copy(update={"participants": people})


def test_an_expansion_cohort_at_the_same_dose_is_its_own_arm_once_recorded(aether: Protocol) -> None:
    p = expansion(aether)
    assigned = {**subjects(("C1",)), **subjects(("C2",))}
    data = cut(assigned, [], cells=EXPANSION_CELLS)
    with pytest.raises(ConductError, match="C2-1's dose level DL1 is given in cohorts C1, C2"):
        arm_of(p, data, "C2-1")  # from the dose alone the two DL1 cohorts cannot be told apart
    recorded = _recorded(data, assigned)
    assert arm_of(p, recorded, "C1-1")[0::2] == ("C1", "C1")
    assert arm_of(p, recorded, "C2-1")[0::2] == ("C2", "C2")


def test_an_assigned_participant_not_yet_dosed_is_planned_in_the_cohort_and_not_treated(aether: Protocol) -> None:
    data = _recorded(cut(subjects(("C1",)), [], undosed=("C1-3",)), subjects(("C1",)))
    assert arm_of(aether, data, "C1-3")[0::2] == ("C1", "NOTTRT")
    unrecorded = cut(subjects(("C1",)), [], undosed=("C1-3",))
    assert arm_of(aether, unrecorded, "C1-3")[0::2] == ("NOTASSGN", "NOTTRT")  # neither assigned nor dosed


def test_a_cut_without_recorded_cohorts_reads_the_cohort_from_the_first_dose(aether: Protocol) -> None:
    data = cut(subjects(("C1", "C2")), [])
    assert groups.assigned_group(aether, data, "C2-2") == groups.treated_group(aether, data, "C2-2")
    assert groups.assigned_group(aether, data, "C2-2").code == "C2"  # type: ignore[union-attr]


def test_a_dose_at_another_level_than_the_recorded_cohort_shows_in_the_actual_arm(aether: Protocol) -> None:
    data = _recorded(cut({"C1-1": "C1"}, [], cells={"C1": 100e6}), {"C1-1": "C1"})  # assigned C1 (DL1), given DL2
    assert arm_of(aether, data, "C1-1")[0::2] == ("C1", "C2")


def test_a_recorded_cohort_the_protocol_does_not_define_is_named(aether: Protocol) -> None:
    data = _recorded(cut({"C1-1": "C1"}, []), {"C1-1": "C9"})
    with pytest.raises(ConductError, match="C1-1 is recorded in cohort C9, which the protocol does not define"):
        groups.assigned_group(aether, data, "C1-1")

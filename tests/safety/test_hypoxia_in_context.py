"""Hypoxia graded as CTCAE v5.0 reads it, from the SpO2 form's context (001's first infusion: 2020-01-20).

Grade 2: "decreased oxygen saturation with exercise (e.g., pulse oximeter < 88 %); intermittent
supplemental oxygen". Grade 3: "decreased oxygen saturation at rest (e.g., pulse oximeter < 88 %)"."""

from __future__ import annotations

from tests.safety.fixtures import d, trial_data
from trialdesk.safety.suggestions import Suggestion, suggest_adverse_events
from trialdesk.terminology.lab_grading import grade_lab
from trialdesk.trial.records import VitalSign


def spo2(date: str, value: float, *, at_rest: bool | None, oxygen: float | None = 0.0, subject: str = "001") -> VitalSign:
    return VitalSign(subject_id=subject, visit="V", date=d(date), test="SPO2", value=value, unit="%", at_rest=at_rest, oxygen_l_min=oxygen)


def hypoxia(*rows: VitalSign) -> list[Suggestion]:
    return [s for s in suggest_adverse_events(trial_data(vitals=list(rows))) if s.term == "Hypoxia"]


def test_desaturation_to_86_percent_at_rest_is_grade_3() -> None:
    [s] = hypoxia(spo2("2020-01-27", 86, at_rest=True))
    assert s.grade == 3 and "at rest on room air" in s.source_label


def test_exertional_desaturation_to_86_percent_is_grade_2_not_resting_grade_3() -> None:
    [s] = hypoxia(spo2("2020-01-27", 86, at_rest=False))
    assert s.grade == 2 and "on exertion" in s.source_label


def test_the_form_saying_on_exertion_wins_over_a_timepoint_that_does_not_say() -> None:
    row = spo2("2020-01-27", 86, at_rest=False).model_copy(update={"timepoint": "clinic visit"})
    assert [s.grade for s in hypoxia(row)] == [2]


def test_a_new_need_for_oxygen_is_grade_2_even_when_the_saturation_on_oxygen_is_normal() -> None:
    [s] = hypoxia(spo2("2020-01-10", 95, at_rest=True, oxygen=0), spo2("2020-01-27", 94, at_rest=True, oxygen=2))
    assert s.grade == 2 and "on 2 L/min oxygen" in s.source_label and "new supplemental oxygen" in s.rule


def test_oxygen_the_participant_already_needed_at_baseline_is_not_a_new_need() -> None:
    assert hypoxia(spo2("2020-01-10", 93, at_rest=True, oxygen=2), spo2("2020-01-27", 94, at_rest=True, oxygen=2)) == []


def test_desaturation_at_rest_on_new_oxygen_is_still_grade_3() -> None:
    [s] = hypoxia(spo2("2020-01-27", 86, at_rest=True, oxygen=4))
    assert s.grade == 3


def test_88_percent_on_room_air_at_rest_is_no_hypoxia() -> None:
    assert hypoxia(spo2("2020-01-27", 88, at_rest=True)) == []
    assert hypoxia(spo2("2020-01-27", 87, at_rest=True))[0].grade == 3


def test_the_grading_table_reads_new_oxygen_only_for_spo2_readings() -> None:
    on_oxygen = grade_lab("Hypoxia", 95, "%", context="rest", new_oxygen=True)
    room_air = grade_lab("Hypoxia", 95, "%", context="rest", new_oxygen=False)
    assert on_oxygen is not None and on_oxygen.grade == 2 and room_air is not None and room_air.grade == 0

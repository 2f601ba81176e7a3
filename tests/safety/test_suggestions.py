"""Suggested AEs from laboratory values and vital signs after the first infusion (001's was on 2020-01-20).

Grading at every threshold is tested in tests/terminology; here: what is suggested, against which
baseline, and how often.
"""

from __future__ import annotations

from tests.safety.fixtures import lab, trial_data, vital
from trialdesk.safety.suggestions import Suggestion, suggest_adverse_events
from trialdesk.trial.records import LabResult, VitalSign


def alt(date: str, value: float) -> LabResult:
    return lab("001", date, "ALT", value, "U/L", low=7, high=40, loinc="1742-6")


def suggestions(*rows: LabResult | VitalSign) -> list[Suggestion]:
    labs = [r for r in rows if isinstance(r, LabResult)]
    vitals = [r for r in rows if isinstance(r, VitalSign)]
    return suggest_adverse_events(trial_data(labs=labs, vitals=vitals))


def test_alt_exactly_at_the_upper_limit_suggests_nothing() -> None:
    assert suggestions(alt("2020-01-10", 30), alt("2020-01-27", 40)) == []


def test_alt_at_three_times_the_upper_limit_suggests_grade_1() -> None:
    [s] = suggestions(alt("2020-01-10", 30), alt("2020-01-27", 120))
    assert (s.subject_id, s.term, s.grade, s.date) == ("001", "Alanine aminotransferase increased", 1, alt("2020-01-27", 120).date)
    assert "120 U/L" in s.rule and s.source.value == 120


def test_alt_just_above_three_times_the_upper_limit_suggests_grade_2() -> None:
    [s] = suggestions(alt("2020-01-10", 30), alt("2020-01-27", 121))
    assert s.grade == 2


def test_abnormal_baseline_grades_by_multiples_of_baseline() -> None:
    # baseline 60 U/L is above the ULN of 40: 80 is over the ULN but under 1.5 × baseline (90)
    assert suggestions(alt("2020-01-10", 60), alt("2020-01-27", 80)) == []
    [s] = suggestions(alt("2020-01-10", 60), alt("2020-01-27", 90))
    assert s.grade == 1 and "1.5 × BASE" in s.rule
    [s] = suggestions(alt("2020-01-10", 60), alt("2020-01-27", 181))
    assert s.grade == 2 and "3 × BASE" in s.rule


def test_the_baseline_is_the_last_value_before_the_first_infusion() -> None:
    # an abnormal value long before, then a normal one on the infusion day (drawn before the dose): baseline normal
    [s] = suggestions(alt("2020-01-05", 60), alt("2020-01-20", 30), alt("2020-01-27", 90))
    assert s.grade == 1 and "1 × ULN" in s.rule


def test_values_before_the_first_infusion_suggest_nothing() -> None:
    assert suggestions(alt("2020-01-10", 500)) == []


def test_one_suggestion_per_episode_at_its_worst_grade_from_its_first_day() -> None:
    rows = [alt("2020-01-10", 30), alt("2020-01-21", 50), alt("2020-01-27", 130), alt("2020-02-03", 45), alt("2020-02-17", 35),
            alt("2020-03-16", 60)]
    first, second = suggestions(*rows)
    assert (first.grade, first.date.isoformat(), first.source.value) == (2, "2020-01-21", 130)
    assert first.last_abnormal.isoformat() == "2020-02-03"
    assert (second.grade, second.date.isoformat()) == (1, "2020-03-16")


def test_creatinine_above_one_and_a_half_times_baseline_is_grade_2_within_the_normal_multiple() -> None:
    rows = [lab("001", "2020-01-10", "Creatinine", 1.0, "mg/dL", 0.6, 1.2), lab("001", "2020-01-27", "Creatinine", 1.6, "mg/dL", 0.6, 1.2)]
    [s] = suggestions(*rows)
    assert (s.term, s.grade) == ("Creatinine increased", 2) and "BASE" in s.rule


def test_low_counts_suggest_cytopenias() -> None:
    rows = [lab("001", "2020-01-27", "Platelets", 60, "10*9/L", 150, 400), lab("001", "2020-01-27", "Hemoglobin", 9.5, "g/dL", 12, 16),
            lab("001", "2020-01-27", "Neutrophils", 1.2, "10*9/L", 1.8, 7.7), lab("001", "2020-01-27", "WBC", 3.5, "10*9/L", 4, 11),
            lab("001", "2020-01-27", "Lymphocytes", 0.4, "10*9/L", 1.0, 4.8)]
    found = {s.term: s.grade for s in suggestions(*rows)}
    assert found == {"Platelet count decreased": 2, "Anemia": 2, "Neutrophil count decreased": 2, "White blood cell decreased": 1,
                     "Lymphocyte count decreased": 3}


def test_a_lab_without_grading_rules_suggests_nothing() -> None:
    assert suggestions(lab("001", "2020-01-27", "CRP", 80, "mg/L", 0, 5)) == []


def test_fever_an_hour_after_the_infusion_is_suggested_but_pre_dose_temperature_is_baseline() -> None:
    before, after = vital("001", "2020-01-20", "TEMP", 37.9, "Cel", "pre-dose"), vital("001", "2020-01-20", "TEMP", 38.4, "Cel", "1 h post")
    [s] = suggestions(before, after)
    assert (s.term, s.grade, s.source.value, s.baseline_grade) == ("Fever", 1, 38.4, 0)
    assert suggestions(vital("001", "2020-01-20", "TEMP", 38.4, "Cel", "pre-dose")) == []  # the pre-dose reading is baseline


def test_spo2_below_88_at_rest_is_grade_3_hypoxia_and_with_exercise_grade_2() -> None:
    [rest] = suggestions(vital("001", "2020-01-27", "SPO2", 86, "%"))
    [walk] = suggestions(vital("001", "2020-01-27", "SPO2", 86, "%", "six-minute walk exercise"))
    assert (rest.term, rest.grade, walk.grade) == ("Hypoxia", 3, 2)
    assert suggestions(vital("001", "2020-01-27", "SPO2", 88, "%")) == []


def test_a_suggestion_already_captured_as_an_ae_names_it() -> None:
    [s] = suggest_adverse_events(trial_data(vitals=[vital("002", "2020-03-11", "SPO2", 85, "%")]))
    assert s.recorded_as == "A6"  # 002's grade 3 hypoxia from 2020-03-10, still open


def test_a_participant_not_yet_infused_has_no_suggestions() -> None:
    assert suggest_adverse_events(trial_data(labs=[lab("004", "2020-09-25", "ALT", 300, "U/L", 7, 40)])) == []

"""Every CTCAE v5.0 lab term as data, values that cannot be graded said so, Hy's law flagged, and
suggestions that see the baseline (001's first infusion: 2020-01-20)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SHARED
from tests.safety.fixtures import lab, trial_data
from trialdesk.safety.suggestions import HY_LAW_FLAG, hy_law_cases, suggest_adverse_events, ungradable_values
from trialdesk.terminology.ctcae import catalogue
from trialdesk.terminology.lab_grading import grade_lab, grading_table
from trialdesk.trial.records import LabResult

ADMIRAL = SHARED / "data" / "admiral_ctcae_v5_lab_grading.json"
#: admiral's names for the ionized-calcium rule sets; the CTCAE terms are Hypercalcemia and Hypocalcemia
IONIZED = {"Hypercalcemia (Ionized)": "Hypercalcemia", "Hypocalcemia (Ionized)": "Hypocalcemia"}


def test_every_term_of_admirals_ctcae_v5_specification_has_grading_rules() -> None:
    admiral = json.loads(ADMIRAL.read_text(encoding="utf-8"))
    assert len(admiral) == 40
    terms = {t.term for t in grading_table()}
    missing = [a["TERM"] for a in admiral if IONIZED.get(a["TERM"], a["TERM"]) not in terms]
    assert missing == []
    assert all(catalogue().get(t) is not None for t in terms)
    ionized = [t for t in grading_table() if "calcium_ionized" in t.analytes]
    assert sorted(t.term for t in ionized) == ["Hypercalcemia", "Hypocalcemia"]


@pytest.mark.parametrize(("analyte", "value", "unit", "kw", "term", "grade"), [
    ("bilirubin", 3.1, "mg/dL", {"uln": 1.0}, "Blood bilirubin increased", 3),
    ("bilirubin", 3.0, "mg/dL", {"uln": 1.0}, "Blood bilirubin increased", 2),  # "> 3 x ULN": exactly 3 is grade 2
    ("ALP", 260, "U/L", {"uln": 100}, "Alkaline phosphatase increased", 2),
    ("ALP", 250, "U/L", {"uln": 100}, "Alkaline phosphatase increased", 1),
    ("GGT", 61, "U/L", {"uln": 60}, "GGT increased", 1),
    ("INR", 2.6, "ratio", {}, "INR increased", 3),
    ("INR", 2.5, "ratio", {}, "INR increased", 2),
    ("aPTT", 53, "s", {"uln": 35}, "Activated partial thromboplastin time prolonged", 2),
    ("fibrinogen", 0.4, "g/L", {"lln": 2.0}, "Fibrinogen decreased", 4),
    ("fibrinogen", 1.9, "g/L", {"lln": 2.0, "baseline": 4.0}, "Fibrinogen decreased", 3),  # < LLN and a 52 % fall
    ("fibrinogen", 1.9, "g/L", {"lln": 2.0, "baseline": 2.2}, "Fibrinogen decreased", 1),
    ("CK", 1100, "U/L", {"uln": 200}, "CPK increased", 3),
    ("lipase", 121, "U/L", {"uln": 60}, "Lipase increased", 3),
    ("potassium", 6.1, "mmol/L", {"uln": 5.0}, "Hyperkalemia", 3),
    ("potassium", 3.2, "mmol/L", {"lln": 3.5}, "Hypokalemia", 1),
    ("sodium", 127, "mmol/L", {"lln": 135}, "Hyponatremia", 2),
    ("sodium", 124, "mmol/L", {"lln": 135}, "Hyponatremia", 3),
    ("glucose", 50, "mg/dL", {"lln": 70}, "Hypoglycemia", 2),
    ("albumin", 1.9, "g/dL", {"lln": 3.5}, "Hypoalbuminemia", 3),
    ("triglycerides", 600, "mg/dL", {}, "Hypertriglyceridemia", 3),
    ("WBC", 101, "10^9/L", {}, "Leukocytosis", 3),
    ("lymphocytes", 4.5, "10^9/L", {}, "Lymphocyte count increased", 2),
    ("CD4", 0.15, "10^9/L", {}, "CD4 lymphocytes decreased", 3),
    ("hemoglobin", 21.1, "g/dL", {"uln": 17.0}, "Hemoglobin increased", 3),  # > ULN + 4 g/dL
    ("hemoglobin", 21.0, "g/dL", {"uln": 17.0}, "Hemoglobin increased", 2),
    ("ionized calcium", 1.65, "mmol/L", {"uln": 1.3}, "Hypercalcemia", 3),
    ("pH", 7.25, "pH", {}, "Acidosis", 3),
])
def test_a_value_gets_the_grade_ctcae_v5_gives_it(analyte: str, value: float, unit: str, kw: dict[str, float], term: str,
                                                  grade: int) -> None:
    graded = grade_lab(analyte, value, unit, **kw)  # type: ignore[arg-type]
    assert graded is not None and (graded.term, graded.grade) == (term, grade)


def test_a_value_with_no_upper_limit_of_normal_cannot_be_graded_and_says_so() -> None:
    assert grade_lab("bilirubin", 5.0, "mg/dL") is None
    data = trial_data(labs=[lab("001", "2020-01-27", "Bilirubin", 5.0, "mg/dL", loinc="1975-2")])
    [u] = ungradable_values(data)
    assert u.missing == "normal range" and "cannot be graded with CTCAE v5.0" in u.sentence()
    with_low = trial_data(labs=[lab("001", "2020-01-27", "Bilirubin", 5.0, "mg/dL", low=0.1, loinc="1975-2")])
    assert ungradable_values(with_low)[0].missing == "upper limit of normal"
    graded = trial_data(labs=[lab("001", "2020-01-27", "Bilirubin", 5.0, "mg/dL", low=0.1, high=1.2, loinc="1975-2")])
    assert ungradable_values(graded) == []


def test_a_value_with_no_grading_rules_is_not_called_ungradable() -> None:
    assert ungradable_values(trial_data(labs=[lab("001", "2020-01-27", "CRP", 50, "mg/L")])) == []


# --- Hy's law --------------------------------------------------------------------------------------------

def _liver(date: str, alt_value: float, bili: float, ast_value: float = 30) -> list[LabResult]:
    return [lab("001", date, "ALT", alt_value, "U/L", 7, 40, "1742-6"), lab("001", date, "AST", ast_value, "U/L", 8, 40, "1920-8"),
            lab("001", date, "Bilirubin", bili, "mg/dL", 0.1, 1.2, "1975-2")]


def test_hy_law_case_is_flagged() -> None:
    data = trial_data(labs=_liver("2020-01-27", 130, 2.5))  # ALT 3.25 x ULN, bilirubin 2.08 x ULN
    [case] = hy_law_cases(data)
    assert (case.subject_id, str(case.date)) == ("001", "2020-01-27") and "Hy's law" in case.sentence()
    flagged = {s.term: s.flags for s in suggest_adverse_events(data)}
    assert flagged["Alanine aminotransferase increased"] == (HY_LAW_FLAG,) and flagged["Blood bilirubin increased"] == (HY_LAW_FLAG,)


def test_ast_above_3_times_uln_with_bilirubin_above_2_times_uln_is_hy_law_too() -> None:
    assert len(hy_law_cases(trial_data(labs=_liver("2020-01-27", 30, 2.5, ast_value=125)))) == 1


def test_alt_at_exactly_3_times_uln_is_not_hy_law() -> None:
    assert hy_law_cases(trial_data(labs=_liver("2020-01-27", 120, 2.5))) == []


def test_bilirubin_at_exactly_2_times_uln_is_not_hy_law() -> None:
    data = trial_data(labs=_liver("2020-01-27", 200, 2.4))
    assert hy_law_cases(data) == [] and all(not s.flags for s in suggest_adverse_events(data))


def test_a_hy_law_pattern_before_the_first_infusion_is_baseline_not_a_case() -> None:
    assert hy_law_cases(trial_data(labs=_liver("2020-01-10", 200, 3.0))) == []


def test_high_alt_and_high_bilirubin_on_different_days_are_not_hy_law() -> None:
    labs = [*_liver("2020-01-27", 200, 0.5), *_liver("2020-02-03", 30, 3.0)]
    assert hy_law_cases(trial_data(labs=labs)) == []


# --- baseline-aware suggestions --------------------------------------------------------------------------

def platelets(date: str, value: float) -> LabResult:
    return lab("001", date, "Platelets", value, "10^9/L", 150, 400, "777-3")


def test_thrombocytopenia_present_at_baseline_is_not_suggested_again_at_the_same_grade() -> None:
    assert suggest_adverse_events(trial_data(labs=[platelets("2020-01-10", 120), platelets("2020-01-27", 110)])) == []


def test_thrombocytopenia_present_at_baseline_is_suggested_when_its_grade_worsens() -> None:
    [s] = suggest_adverse_events(trial_data(labs=[platelets("2020-01-10", 120), platelets("2020-01-27", 70)]))
    assert (s.term, s.grade, s.baseline_grade) == ("Platelet count decreased", 2, 1)


def test_a_normal_baseline_lets_a_grade_1_value_be_suggested() -> None:
    [s] = suggest_adverse_events(trial_data(labs=[platelets("2020-01-10", 200), platelets("2020-01-27", 140)]))
    assert (s.grade, s.baseline_grade) == (1, 0)

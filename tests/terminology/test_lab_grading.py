"""Laboratory values and vital signs graded with CTCAE v5.0, at every threshold, as admiral grades them."""

from __future__ import annotations

import pytest

from trialdesk.terminology.lab_grading import LabGrade, LabGradingError, grade_lab, grading_table
from trialdesk.terminology.units import UnitConversionError

ALT = "Alanine aminotransferase increased"
ULN = 40.0  # U/L


def grade(*args: object, **kwargs: object) -> int | None:
    result = grade_lab(*args, **kwargs)  # type: ignore[arg-type]
    return None if result is None else result.grade


# --- ALT (AST follows the same rules) --------------------------------------------------------


def test_alt_exactly_at_uln_is_no_grade() -> None:
    assert grade(ALT, 40.0, "U/L", uln=ULN) == 0


def test_alt_just_above_uln_is_grade_1() -> None:
    assert grade(ALT, 40.1, "U/L", uln=ULN) == 1


def test_alt_exactly_three_times_uln_is_grade_1() -> None:
    assert grade(ALT, 120.0, "U/L", uln=ULN) == 1


def test_alt_just_above_three_times_uln_is_grade_2() -> None:
    assert grade(ALT, 120.1, "U/L", uln=ULN) == 2


def test_alt_exactly_five_times_uln_is_grade_2_and_just_above_is_grade_3() -> None:
    assert grade(ALT, 200.0, "U/L", uln=ULN) == 2
    assert grade(ALT, 200.1, "U/L", uln=ULN) == 3


def test_alt_exactly_twenty_times_uln_is_grade_3_and_just_above_is_grade_4() -> None:
    assert grade(ALT, 800.0, "U/L", uln=ULN) == 3
    assert grade(ALT, 800.1, "U/L", uln=ULN) == 4


def test_alt_three_times_a_uln_that_is_not_a_round_number_is_still_grade_1() -> None:
    # 3 x 0.1-step ULNs are not exact in binary floating point; admiral's signif(x, 15) makes them so.
    assert grade(ALT, 3 * 33.1, "U/L", uln=33.1) == 1
    assert grade(ALT, 99.3, "U/L", uln=33.1) == 1


def test_alt_without_uln_cannot_be_graded() -> None:
    assert grade_lab(ALT, 500.0, "U/L") is None


def test_alt_with_normal_baseline_is_graded_by_multiples_of_uln() -> None:
    assert grade(ALT, 120.0, "U/L", uln=ULN, baseline=30.0) == 1


def test_alt_with_abnormal_baseline_at_one_and_a_half_times_baseline_is_grade_1() -> None:
    assert grade(ALT, 90.0, "U/L", uln=ULN, baseline=60.0) == 1


def test_alt_with_abnormal_baseline_below_one_and_a_half_times_baseline_is_no_grade_though_above_uln() -> None:
    assert grade(ALT, 89.9, "U/L", uln=ULN, baseline=60.0) == 0


def test_alt_with_abnormal_baseline_exactly_three_times_baseline_is_grade_1_and_above_is_grade_2() -> None:
    assert grade(ALT, 180.0, "U/L", uln=ULN, baseline=60.0) == 1
    assert grade(ALT, 180.1, "U/L", uln=ULN, baseline=60.0) == 2


def test_alt_with_abnormal_baseline_above_five_and_twenty_times_baseline() -> None:
    assert grade(ALT, 300.1, "U/L", uln=ULN, baseline=60.0) == 3
    assert grade(ALT, 1200.0, "U/L", uln=ULN, baseline=60.0) == 3
    assert grade(ALT, 1200.1, "U/L", uln=ULN, baseline=60.0) == 4


def test_baseline_is_judged_against_its_own_range_when_given() -> None:
    # baseline 45 with a baseline ULN of 50 was normal: graded against ULN, not baseline
    assert grade(ALT, 60.0, "U/L", uln=ULN, baseline=45.0, baseline_uln=50.0) == 1
    assert grade(ALT, 60.0, "U/L", uln=ULN, baseline=45.0) == 0  # abnormal baseline: 60 < 1.5 x 45


def test_alt_reported_in_international_units_or_microkatal_grades_the_same() -> None:
    assert grade("ALT", 120.1, "IU/L", uln=ULN) == 2
    assert grade("1742-6", 2.0, "ukat/L", uln=ULN / 60) == 1
    assert grade("1742-6", 2.0017, "ukat/L", uln=ULN / 60) == 2


def test_ast_exactly_three_times_uln_is_grade_1() -> None:
    assert grade("Aspartate aminotransferase increased", 105.0, "U/L", uln=35.0) == 1
    assert grade("AST", 105.1, "U/L", uln=35.0) == 2


def test_alt_grade_carries_the_rule_that_fired_as_evidence() -> None:
    result = grade_lab("ALT", 120.1, "U/L", uln=ULN)
    assert isinstance(result, LabGrade)
    assert result.term == ALT and result.meddra_code == "10001551"
    assert result.rule == f"{ALT} grade 2: 120.1 U/L > 3 × ULN = 120 U/L [value > 3 × ULN (baseline normal)]"
    assert result.grade_text is not None and result.grade_text.startswith(">3.0 - 5.0 x ULN")


def test_alt_at_uln_says_no_grade_was_reached() -> None:
    result = grade_lab("ALT", 40.0, "U/L", uln=ULN)
    assert result is not None and result.grade == 0 and result.grade_text is None
    assert "reaches no CTCAE v5.0 grade" in result.rule


# --- creatinine -------------------------------------------------------------------------------


def test_creatinine_exactly_at_uln_is_no_grade_and_just_above_is_grade_1() -> None:
    assert grade("Creatinine increased", 1.0, "mg/dL", uln=1.0) == 0
    assert grade("Creatinine increased", 1.01, "mg/dL", uln=1.0) == 1


def test_creatinine_in_mg_per_dl_exactly_one_and_a_half_times_uln_is_grade_1() -> None:
    assert grade("creatinine", 1.5, "mg/dL", uln=1.0) == 1
    assert grade("creatinine", 1.51, "mg/dL", uln=1.0) == 2


def test_creatinine_in_mg_per_dl_is_reported_in_umol_per_l() -> None:
    result = grade_lab("2160-0", 3.1, "mg/dL", uln=1.0)
    assert result is not None and result.grade == 3
    assert result.unit == "umol/L" and result.value == pytest.approx(274.1, abs=0.1)


def test_creatinine_above_six_times_uln_is_grade_4() -> None:
    assert grade("creatinine", 6.0, "mg/dL", uln=1.0) == 3
    assert grade("creatinine", 6.01, "mg/dL", uln=1.0) == 4


def test_creatinine_above_one_and_a_half_times_baseline_is_grade_2_even_within_the_uln_multiple() -> None:
    assert grade("creatinine", 80.0, "umol/L", uln=100.0, baseline=50.0) == 2
    assert grade("creatinine", 151.0, "umol/L", uln=100.0, baseline=50.0) == 3


def test_creatinine_without_uln_grades_2_from_baseline_but_cannot_grade_1() -> None:
    assert grade("creatinine", 80.0, "umol/L", baseline=50.0) == 2
    assert grade_lab("creatinine", 70.0, "umol/L", baseline=50.0) is None


def test_creatinine_baseline_in_another_unit_is_converted() -> None:
    assert grade("creatinine", 140.0, "umol/L", uln=110.0, baseline=0.6, baseline_unit="mg/dL") == 2


# --- anemia -----------------------------------------------------------------------------------


def test_hemoglobin_in_g_per_dl_is_converted_to_g_per_l() -> None:
    result = grade_lab("Hgb", 9.5, "g/dL", lln=12.0)
    assert result is not None and result.grade == 2 and result.value == 95.0 and result.unit == "g/L"


def test_hemoglobin_exactly_10_g_per_dl_is_grade_1_and_just_below_is_grade_2() -> None:
    assert grade("Anemia", 10.0, "g/dL", lln=12.0) == 1
    assert grade("Anemia", 9.99, "g/dL", lln=12.0) == 2


def test_hemoglobin_exactly_8_g_per_dl_is_grade_2_and_just_below_is_grade_3() -> None:
    assert grade("Anemia", 8.0, "g/dL", lln=12.0) == 2
    assert grade("Anemia", 7.9, "g/dL", lln=12.0) == 3


def test_hemoglobin_exactly_at_lln_is_no_grade() -> None:
    assert grade("Anemia", 120.0, "g/L", lln=120.0) == 0


def test_hemoglobin_in_mmol_per_l_is_converted_as_the_monomer() -> None:
    assert grade("718-7", 4.8, "mmol/L", lln=7.4) == 3


def test_hemoglobin_below_100_g_per_l_grades_2_without_lln_but_above_cannot_be_graded() -> None:
    assert grade("Anemia", 95.0, "g/L") == 2
    assert grade_lab("Anemia", 110.0, "g/L") is None


# --- counts -----------------------------------------------------------------------------------


def test_neutrophils_in_thousands_per_microlitre_at_each_threshold() -> None:
    assert grade("ANC", 1.8, "10*3/uL", lln=1.8) == 0
    assert grade("ANC", 1.5, "10*3/uL", lln=1.8) == 1
    assert grade("ANC", 1.49, "10*3/uL", lln=1.8) == 2
    assert grade("ANC", 1.0, "10*3/uL", lln=1.8) == 2
    assert grade("ANC", 0.99, "10*3/uL", lln=1.8) == 3
    assert grade("ANC", 0.5, "10*3/uL", lln=1.8) == 3
    assert grade("ANC", 0.49, "10*3/uL", lln=1.8) == 4


def test_neutrophils_1500_per_mm3_is_grade_1_not_grade_2() -> None:
    assert grade("Neutrophil count decreased", 1500, "/mm3", lln=1800) == 1


def test_neutrophils_with_k_per_ul_spelling_grade_the_same() -> None:
    assert grade("751-8", 0.9, "K/uL", lln=1.8) == 3


def test_platelets_at_each_threshold() -> None:
    assert grade("platelets", 150, "10*9/L", lln=150) == 0
    assert grade("platelets", 75, "10*9/L", lln=150) == 1
    assert grade("platelets", 74, "10*9/L", lln=150) == 2
    assert grade("platelets", 49.9, "10*9/L", lln=150) == 3
    assert grade("platelets", 25, "10*9/L", lln=150) == 3
    assert grade("platelets", 24, "x10E3/uL", lln=150) == 4


def test_white_blood_cells_at_each_threshold() -> None:
    assert grade("WBC", 3.0, "10*9/L", lln=4.0) == 1
    assert grade("WBC", 2.9, "10*9/L", lln=4.0) == 2
    assert grade("WBC", 1.9, "10*9/L", lln=4.0) == 3
    assert grade("WBC", 0.9, "10*9/L", lln=4.0) == 4


def test_lymphocytes_at_each_threshold() -> None:
    assert grade("lymphocytes", 0.8, "10*9/L", lln=1.0) == 1
    assert grade("lymphocytes", 0.79, "10*9/L", lln=1.0) == 2
    assert grade("lymphocytes", 0.49, "10*9/L", lln=1.0) == 3
    assert grade("lymphocytes", 0.19, "10*9/L", lln=1.0) == 4


def test_count_below_lln_but_above_grade_2_without_lln_cannot_be_graded() -> None:
    assert grade_lab("platelets", 100, "10*9/L") is None
    assert grade("platelets", 60, "10*9/L") == 2


# --- hypoxia ----------------------------------------------------------------------------------


def test_spo2_87_percent_at_rest_is_hypoxia_grade_3() -> None:
    assert grade("Hypoxia", 87, "%") == 3
    assert grade("SpO2", 87, "%", context="rest") == 3


def test_spo2_88_percent_is_no_hypoxia() -> None:
    assert grade("Hypoxia", 88, "%") == 0


def test_spo2_below_88_percent_with_exercise_is_hypoxia_grade_2() -> None:
    assert grade("Hypoxia", 86, "%", context="exercise") == 2


def test_spo2_as_a_fraction_is_converted_to_percent() -> None:
    assert grade("59408-5", 0.87, "1") == 3
    assert grade("59408-5", 0.88, "1") == 0


def test_pao2_55_mm_hg_at_rest_is_hypoxia_grade_3() -> None:
    assert grade("Hypoxia", 55, "mm[Hg]") == 3
    assert grade("Hypoxia", 56, "mmHg") == 0


# --- fever ------------------------------------------------------------------------------------


def test_fever_thresholds_in_celsius() -> None:
    assert grade("Fever", 37.9, "Cel") == 0
    assert grade("Fever", 38.0, "Cel") == 1
    assert grade("Fever", 39.0, "Cel") == 1
    assert grade("Fever", 39.1, "Cel") == 2
    assert grade("Fever", 40.0, "Cel") == 2
    assert grade("Fever", 40.1, "Cel") == 3


def test_fever_above_40_for_more_than_24_hours_is_grade_4() -> None:
    assert grade("Fever", 40.1, "Cel", duration_hours=24) == 3
    assert grade("Fever", 40.1, "Cel", duration_hours=24.5) == 4


def test_fever_in_fahrenheit_is_converted() -> None:
    assert grade("temperature", 100.4, "[degF]") == 1
    assert grade("temperature", 102.3, "°F") == 2


# --- bad input --------------------------------------------------------------------------------


def test_a_unit_that_cannot_be_converted_is_named_in_the_error() -> None:
    with pytest.raises(UnitConversionError, match="'mg/dL'"):
        grade_lab("ALT", 50.0, "mg/dL", uln=40.0)
    with pytest.raises(UnitConversionError, match="'furlongs'"):
        grade_lab("Anemia", 50.0, "furlongs", lln=120.0)


def test_a_term_without_grading_rules_is_refused_naming_the_gradable_terms() -> None:
    with pytest.raises(LabGradingError, match=r"no CTCAE v5\.0 grading rules for 'Nausea'.*'Anemia'"):
        grade_lab("Nausea", 1.0, "1")


def test_a_missing_value_cannot_be_graded() -> None:
    assert grade_lab("ALT", float("nan"), "U/L", uln=40.0) is None


def test_the_grading_table_covers_the_terms_the_trial_watches() -> None:
    terms = {t.term for t in grading_table()}
    assert terms >= {
        ALT,
        "Aspartate aminotransferase increased",
        "Creatinine increased",
        "Anemia",
        "Neutrophil count decreased",
        "Platelet count decreased",
        "White blood cell decreased",
        "Lymphocyte count decreased",
        "Hypoxia",
        "Fever",
    }

"""NCT03929120's criteria, one clinical sentence per test, on small OMOP databases.

Screening date 2024-06-01; the planned first infusion is 14 days later (2024-06-15).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.eligibility.helpers import AS_OF, NORMAL_LABS, person, screened, statuses
from trialdesk.criteria.language import Occurrence
from trialdesk.eligibility.screen import screen
from trialdesk.protocol.loader import load, resolve
from trialdesk.sources.omop import open_omop

D = dt.date


def _one(tmp_path: Path, build, **kw) -> dict[str, str]:  # type: ignore[no-untyped-def]
    def b(builder):  # type: ignore[no-untyped-def]
        person(builder, 1, **kw)
        person(builder, 99)  # someone observed, so the data cover the screening date
        build(builder)
    return statuses(screened(tmp_path, b))[1]


def nothing(b):  # type: ignore[no-untyped-def]
    return None


# --- I1 age ------------------------------------------------------------------------

def test_18th_birthday_on_the_screening_day_is_old_enough(tmp_path: Path) -> None:
    assert _one(tmp_path, nothing, birth=D(2006, 6, 1))["I1"] == "met"


def test_one_day_before_the_18th_birthday_is_too_young(tmp_path: Path) -> None:
    assert _one(tmp_path, nothing, birth=D(2006, 6, 2))["I1"] == "not_met"


def test_79_years_and_364_days_is_less_than_80(tmp_path: Path) -> None:
    assert _one(tmp_path, nothing, birth=D(1944, 6, 2))["I1"] == "met"


def test_80th_birthday_on_the_screening_day_is_not_less_than_80(tmp_path: Path) -> None:
    assert _one(tmp_path, nothing, birth=D(1944, 6, 1))["I1"] == "not_met"


def test_birth_year_and_month_only_in_the_birthday_month_at_the_limit_is_unknown(tmp_path: Path) -> None:
    assert _one(tmp_path, nothing, birth=(2006, 6))["I1"] == "unknown"


def test_birth_year_and_month_only_away_from_the_limits_is_decided(tmp_path: Path) -> None:
    assert _one(tmp_path, nothing, birth=(1970, 6))["I1"] == "met"
    assert _one(tmp_path, nothing, birth=(2006, 7))["I1"] == "not_met"


# --- I2 sex ------------------------------------------------------------------------

def test_women_and_men_both_qualify_and_no_recorded_sex_is_unknown(tmp_path: Path) -> None:
    assert _one(tmp_path, nothing, sex="female")["I2"] == "met"
    assert _one(tmp_path, nothing, sex="male")["I2"] == "met"
    assert _one(tmp_path, nothing, sex=None)["I2"] == "unknown"


# --- I3 diagnosis and E1 ----------------------------------------------------------

def test_new_ild_with_systemic_sclerosis_is_the_diagnosis_sought(tmp_path: Path) -> None:
    s = _one(tmp_path, lambda b: (b.condition(1, D(2024, 3, 1), source_value="J84.10"),
                                  b.condition(1, D(2023, 5, 1), source_value="M34.1")))
    assert s["I3"] == "met"
    assert s["E1"] == "not_met"


def test_new_ild_without_a_rheumatic_disease_needs_the_investigator_to_judge_ipaf(tmp_path: Path) -> None:
    s = _one(tmp_path, lambda b: b.condition(1, D(2024, 3, 1), source_value="J84.9"))
    assert s["I3"] == "needs_review"
    assert s["E1"] == "needs_review"


def test_ild_first_recorded_seven_months_ago_without_therapy_is_neither_new_nor_treated(tmp_path: Path) -> None:
    s = _one(tmp_path, lambda b: (b.condition(1, D(2023, 11, 1), source_value="J84.10"),
                                  b.condition(1, D(2020, 1, 1), source_value="M05.10")))
    assert s["I3"] == "not_met"


def test_established_ra_ild_on_mycophenolate_for_a_year_awaits_the_judgement_of_no_improvement(tmp_path: Path) -> None:
    def build(b):  # type: ignore[no-untyped-def]
        b.condition(1, D(2022, 1, 10), source_value="J84.10")
        b.condition(1, D(2021, 6, 1), source_value="M05.79")
        for month in range(12):
            start = D(2023, 5, 15) + dt.timedelta(days=30 * month)
            b.drug(1, start, start + dt.timedelta(days=29), source_value="68149")
    assert _one(tmp_path, build)["I3"] == "needs_review"


def test_conventional_therapy_for_more_than_24_months_is_not_the_established_route(tmp_path: Path) -> None:
    def build(b):  # type: ignore[no-untyped-def]
        b.condition(1, D(2019, 1, 10), source_value="J84.10")
        b.condition(1, D(2018, 6, 1), source_value="M34.81")
        b.drug(1, D(2021, 1, 1), D(2021, 3, 1), source_value="6851")
        b.drug(1, D(2024, 3, 1), D(2024, 5, 1), source_value="6851")
    assert _one(tmp_path, build)["I3"] == "not_met"


def test_no_ild_at_all_fails_i3_and_e1_does_not_apply(tmp_path: Path) -> None:
    s = _one(tmp_path, nothing)
    assert s["I3"] == "not_met" and s["E1"] == "not_met"


# --- E2 rituximab or cyclophosphamide in the previous 2 months --------------------

def test_rituximab_on_the_first_day_of_the_two_month_window_excludes(tmp_path: Path) -> None:
    assert _one(tmp_path, lambda b: b.drug(1, D(2024, 4, 1), source_value="121191"))["E2"] == "met"


def test_rituximab_the_day_before_the_window_does_not_exclude(tmp_path: Path) -> None:
    assert _one(tmp_path, lambda b: b.drug(1, D(2024, 3, 31), source_value="121191"))["E2"] == "not_met"


def test_cyclophosphamide_course_that_ends_inside_the_window_excludes(tmp_path: Path) -> None:
    assert _one(tmp_path, lambda b: b.drug(1, D(2024, 3, 1), D(2024, 4, 5), source_value="3002"))["E2"] == "met"


def test_two_months_before_the_last_day_of_april_is_the_last_day_of_february(tmp_path: Path) -> None:
    def build(b):  # type: ignore[no-untyped-def]
        person(b, 1)
        b.drug(1, D(2024, 2, 29), source_value="121191")
        person(b, 2)
        b.drug(2, D(2024, 2, 28), source_value="121191")
    result = statuses(screened(tmp_path, build, as_of=D(2024, 4, 30)))
    assert result[1]["E2"] == "met" and result[2]["E2"] == "not_met"


def test_rituximab_evidence_names_the_record_its_date_and_code(tmp_path: Path) -> None:
    def build(b):  # type: ignore[no-untyped-def]
        person(b, 1)
        b.drug(1, D(2024, 5, 1), source_value="121191")
    result = screened(tmp_path, build)
    row = next(r for r in result.person_criteria().to_pylist() if r["criterion_id"] == "E2")
    evidence = row["evidence"]
    assert evidence[0]["table"] == "drug_exposure" and evidence[0]["date"] == "2024-05-01"
    assert evidence[0]["code"] == "121191" and evidence[0]["record_id"] >= 1


def test_a_record_found_by_its_concept_and_by_its_source_code_is_cited_once(tmp_path: Path) -> None:
    """A rituximab exposure is a hit through its RxNorm concept, through its source code, or
    both; each way it counts, and a record found both ways is one record, not two."""
    def build(b):  # type: ignore[no-untyped-def]
        person(b, 1)
        b.drug(1, D(2024, 5, 1), source_value="121191")  # concept and source code both match
        rituximab = b._resolve("drug", None, "121191")[0]
        person(b, 2)
        b.drug(2, D(2024, 5, 1), concept_id=rituximab, source_value="RITUXAN 500MG VIAL")  # the concept only
        person(b, 3)
        b.drug(3, D(2024, 5, 1), concept_id=0, source_value="121191")  # the source code only
    result = screened(tmp_path, build)
    e2 = {r["person_id"]: r for r in result.person_criteria().to_pylist() if r["criterion_id"] == "E2"}
    for pid in (1, 2, 3):
        assert e2[pid]["status"] == "met"
        assert [(e["table"], e["date"]) for e in e2[pid]["evidence"]] == [("drug_exposure", "2024-05-01")]
    # were the record counted twice, "at least 2 exposures" would be met by one infusion
    e2_rule = "computable: {kind: drug, value_set: rituximab_or_cyclophosphamide, window: {start: -2, end: 0, unit: months}"
    text = resolve("nct03929120").read_text()
    assert text.count(e2_rule) == 1
    (tmp_path / "two_exposures.yaml").write_text(text.replace(e2_rule, e2_rule + ", min_count: 2"))
    protocol = load(tmp_path / "two_exposures.yaml")
    rule = protocol.eligibility.criterion("E2").computable
    assert isinstance(rule, Occurrence) and rule.min_count == 2
    twice = screen(open_omop(tmp_path / "cdm.duckdb"), protocol, AS_OF)
    assert {r["person_id"]: r["status"] for r in twice.person_criteria().to_pylist()
            if r["criterion_id"] == "E2"} == {1: "not_met", 2: "not_met", 3: "not_met"}


# --- E3 SpO2 < 88 % at rest -----------------------------------------------------

def test_spo2_87_percent_at_rest_excludes(tmp_path: Path) -> None:
    assert _one(tmp_path, nothing, spo2=87.0)["E3"] == "met"


def test_spo2_88_percent_at_rest_does_not_exclude(tmp_path: Path) -> None:
    assert _one(tmp_path, nothing, spo2=88.0)["E3"] == "not_met"


def test_no_spo2_in_the_last_30_days_is_unknown(tmp_path: Path) -> None:
    assert _one(tmp_path, nothing, spo2=None)["E3"] == "unknown"
    assert _one(tmp_path, nothing, labs_on=AS_OF - dt.timedelta(days=31))["E3"] == "unknown"


def test_the_latest_spo2_decides(tmp_path: Path) -> None:
    s = _one(tmp_path, lambda b: b.measurement(1, AS_OF - dt.timedelta(days=2), source_value="2708-6", value=86.0, unit="%"))
    assert s["E3"] == "met"


def test_spo2_in_a_unit_that_cannot_be_converted_is_unknown_and_says_why(tmp_path: Path) -> None:
    def build(b):  # type: ignore[no-untyped-def]
        person(b, 1, spo2=None)
        b.measurement(1, AS_OF, source_value="59408-5", value=60.0, unit="mm[Hg]")
    result = screened(tmp_path, build)
    row = next(r for r in result.person_criteria().to_pylist() if r["criterion_id"] == "E3")
    assert row["status"] == "unknown"
    assert "cannot be converted" in row["evidence"][0]["note"]


@pytest.mark.parametrize(("value", "status"), [(100.0, "not_met"), (100.5, "unknown"), (186.0, "unknown"),
                                               (0.0, "met"), (-1.0, "unknown")])
def test_an_spo2_outside_0_to_100_percent_is_a_recording_error_that_decides_nothing(tmp_path: Path, value: float,
                                                                                      status: str) -> None:
    def build(b):  # type: ignore[no-untyped-def]
        person(b, 1, spo2=None)
        b.measurement(1, AS_OF - dt.timedelta(days=9), source_value="59408-5", value=84.0, unit="%")  # older, plausible
        b.measurement(1, AS_OF, source_value="59408-5", value=value, unit="%")
    result = screened(tmp_path, build)
    row = next(r for r in result.person_criteria().to_pylist() if r["person_id"] == 1 and r["criterion_id"] == "E3")
    assert row["status"] == status  # the latest reading decides, or says it cannot: an older one does not stand in
    if status == "unknown":
        assert "outside what is possible (0–100 %)" in row["evidence"][0]["note"]


def test_a_plausible_range_must_hold_the_value_compared_with() -> None:
    from pydantic import ValidationError

    from trialdesk.criteria.language import Compare

    assert Compare(op="<", value=88, unit="%", plausible=(0, 100)).plausible == (0, 100)
    with pytest.raises(ValidationError, match="must contain the value compared with"):
        Compare(op="<", value=88, unit="%", plausible=(90, 100))
    with pytest.raises(ValidationError, match="give 'value' and 'unit'"):
        Compare(op=">", ref="ULN", plausible=(0, 100))


# --- E4 active infection or malignancy -------------------------------------------

def test_pneumonia_three_weeks_ago_is_active_infection(tmp_path: Path) -> None:
    assert _one(tmp_path, lambda b: b.condition(1, D(2024, 5, 11), source_value="J18.9"))["E4"] == "met"


def test_pneumonia_six_weeks_ago_is_no_longer_active_so_only_the_clinical_assessment_remains(tmp_path: Path) -> None:
    assert _one(tmp_path, lambda b: b.condition(1, D(2024, 4, 20), source_value="J18.9"))["E4"] == "needs_review"


def test_lymphoma_treated_this_year_is_active_malignancy(tmp_path: Path) -> None:
    assert _one(tmp_path, lambda b: b.condition(1, D(2024, 1, 5), source_value="C83.30"))["E4"] == "met"


# --- E6 myocardial infarction within 6 months of the first infusion -------------

def test_mi_exactly_6_months_before_the_planned_infusion_excludes(tmp_path: Path) -> None:
    assert _one(tmp_path, lambda b: b.condition(1, D(2023, 12, 15), source_value="I21.4"))["E6"] == "met"


def test_mi_6_months_and_a_day_before_leaves_only_the_investigators_opinion(tmp_path: Path) -> None:
    assert _one(tmp_path, lambda b: b.condition(1, D(2023, 12, 14), source_value="I21.4"))["E6"] == "needs_review"


# --- E7, E8, E9 ----------------------------------------------------------------

def test_history_of_hepatitis_c_excludes_whenever_it_was(tmp_path: Path) -> None:
    assert _one(tmp_path, lambda b: b.condition(1, D(2009, 2, 3), source_value="B18.2"))["E7"] == "met"


def test_alt_exactly_at_the_upper_limit_is_normal(tmp_path: Path) -> None:
    labs = dict(NORMAL_LABS, **{"1742-6": (56.0, "U/L", 7.0, 56.0)})
    assert _one(tmp_path, nothing, labs=labs)["E8"] == "not_met"


def test_alt_three_times_the_upper_limit_excludes(tmp_path: Path) -> None:
    labs = dict(NORMAL_LABS, **{"1742-6": (168.0, "U/L", 7.0, 56.0)})
    assert _one(tmp_path, nothing, labs=labs)["E8"] == "met"


def test_creatinine_in_micromoles_above_its_range_excludes(tmp_path: Path) -> None:
    labs = dict(NORMAL_LABS, **{"2160-0": (150.0, "umol/L", 53.0, 106.0)})
    assert _one(tmp_path, nothing, labs=labs)["E8"] == "met"


def test_low_platelets_are_an_abnormal_cbc(tmp_path: Path) -> None:
    labs = dict(NORMAL_LABS, **{"777-3": (90.0, "10*3/uL", 150.0, 400.0)})
    assert _one(tmp_path, nothing, labs=labs)["E8"] == "met"


def test_no_screening_labs_leave_e8_unknown(tmp_path: Path) -> None:
    assert _one(tmp_path, nothing, labs={})["E8"] == "unknown"


def test_a_result_without_its_reference_range_is_unknown(tmp_path: Path) -> None:
    labs = dict(NORMAL_LABS, **{"718-7": (13.0, "g/dL", None, None)})
    assert _one(tmp_path, nothing, labs=labs)["E8"] == "unknown"


def test_positive_pregnancy_test_five_days_ago_excludes(tmp_path: Path) -> None:
    s = _one(tmp_path, lambda b: b.measurement(1, D(2024, 5, 27), source_value="21198-7", value=250.0, unit="[IU]/L"))
    assert s["E9"] == "met"


def test_a_woman_without_a_recent_pregnancy_test_is_unknown_and_a_man_is_not(tmp_path: Path) -> None:
    assert _one(tmp_path, nothing, sex="female")["E9"] == "unknown"
    assert _one(tmp_path, nothing, sex="male")["E9"] == "not_met"


def test_a_negative_pregnancy_test_does_not_exclude(tmp_path: Path) -> None:
    s = _one(tmp_path, lambda b: b.measurement(1, D(2024, 5, 27), source_value="21198-7", value=2.0, unit="[IU]/L"))
    assert s["E9"] == "not_met"


def test_pregnancy_test_in_milli_units_per_millilitre_is_converted(tmp_path: Path) -> None:
    s = _one(tmp_path, lambda b: b.measurement(1, D(2024, 5, 27), source_value="21198-7", value=25.0, unit="m[IU]/mL"))
    assert s["E9"] == "met"


def test_breast_feeding_recorded_last_month_excludes(tmp_path: Path) -> None:
    assert _one(tmp_path, lambda b: b.condition(1, D(2024, 5, 2), source_value="Z39.1"))["E9"] == "met"


# --- absence and observed time ----------------------------------------------------

def test_outside_observed_time_no_record_proves_nothing(tmp_path: Path) -> None:
    s = _one(tmp_path, nothing, observed=False)
    assert s["E2"] == "unknown" and s["E7"] == "unknown" and s["I3"] == "unknown"


def test_a_record_counts_even_outside_observed_time(tmp_path: Path) -> None:
    s = _one(tmp_path, lambda b: b.condition(1, D(2012, 1, 1), source_value="B20"), observed=False)
    assert s["E7"] == "met"


# --- overall --------------------------------------------------------------------

def test_a_clean_ssc_ild_candidate_needs_only_the_investigators_attestations(tmp_path: Path) -> None:
    def build(b):  # type: ignore[no-untyped-def]
        person(b, 1)
        b.measurement(1, D(2024, 5, 28), source_value="21198-7", value=1.0, unit="[IU]/L")
        b.condition(1, D(2024, 3, 1), source_value="J84.10")
        b.condition(1, D(2023, 5, 1), source_value="M34.1")
    result = screened(tmp_path, build)
    s = statuses(result)[1]
    assert {cid for cid, st in s.items() if st != ("met" if cid.startswith("I") else "not_met")} == {
        "I4", "E4", "E5", "E6", "E10", "E11"}
    assert result.for_person(1)["overall"] == "needs_review"
    cands = result.candidates().to_pylist()
    assert cands[0]["person_id"] == 1 and cands[0]["needs_review_criteria"] == "I4 E4 E5 E6 E10 E11"


def test_one_exclusion_met_makes_the_person_not_eligible(tmp_path: Path) -> None:
    def build(b):  # type: ignore[no-untyped-def]
        person(b, 1, spo2=85.0)
        b.condition(1, D(2024, 3, 1), source_value="J84.10")
        b.condition(1, D(2023, 5, 1), source_value="M34.1")
    result = screened(tmp_path, build)
    assert result.for_person(1)["overall"] == "not_eligible"
    assert result.candidates().num_rows == 0

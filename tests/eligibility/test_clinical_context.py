"""The clinical context a rheumatologist and a pulmonologist read into each criterion, on
both paths — a whole OMOP database and one patient's FHIR chart — with the same answer:
SpO2 on oxygen or during exertion, qualitative results, drugs coded as products, conditions
that last, current therapy, serology, and the IPAF features shown beside the attestation."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.eligibility.helpers import AS_OF, person
from trialdesk.criteria.windows import add_months
from trialdesk.eligibility.screen import screen
from trialdesk.eligibility.worksheet import check_fhir
from trialdesk.protocol.loader import load
from trialdesk.sources.omop import open_omop
from trialdesk.sources.omop_builder import OmopBuilder

D = dt.date
FIRST_INFUSION = AS_OF + dt.timedelta(days=14)
LOINC, SNOMED, RXNORM, ICD = ("http://loinc.org", "http://snomed.info/sct", "http://www.nlm.nih.gov/research/umls/rxnorm",
                              "http://hl7.org/fhir/sid/icd-10-cm")


def day(offset: int) -> str:
    return (AS_OF + dt.timedelta(days=offset)).isoformat()


def cc(system: str, code: str, display: str = "") -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def qty(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}


def observation(code: str, when: str, category: str = "laboratory", **value: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": cc(LOINC, code),
            "category": [cc("http://terminology.hl7.org/CodeSystem/observation-category", category)],
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": when, **value}


def spo2(value: float, when: str, **extra: Any) -> dict[str, Any]:
    return observation("59408-5", when, "vital-signs", valueQuantity=qty(value, "%"), **extra)


def condition(code: str, onset: str, *, status: str = "active", abatement: str | None = None) -> dict[str, Any]:
    r = {"resourceType": "Condition", "code": cc(ICD, code), "subject": {"reference": "Patient/p"}, "onsetDateTime": onset,
         "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", status)}
    if abatement:
        r["abatementDateTime"] = abatement
    return r


def administration(code: str, when: str) -> dict[str, Any]:
    return {"resourceType": "MedicationAdministration", "status": "completed", "medicationCodeableConcept": cc(RXNORM, code),
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": when}


@dataclass
class Case:
    """One clinical situation, written once for an OMOP database and once as a FHIR chart."""

    criterion: str
    expected: str
    omop: Callable[[OmopBuilder], None]
    fhir: list[dict[str, Any]]
    sex: str = "female"


CASES: dict[str, Case] = {
    "spo2_91_on_2_l_oxygen_does_not_show_e3_is_not_met": Case(
        "E3", "unknown",
        lambda b: (b.measurement(1, AS_OF - dt.timedelta(days=2), source_value="59408-5", value=91.0, unit="%"),
                   b.measurement(1, AS_OF - dt.timedelta(days=2), source_value="3151-8", value=2.0, unit="L/min")),
        [spo2(91.0, day(-2) + "T10:00:00-05:00", component=[{"code": cc(LOINC, "3151-8"), "valueQuantity": qty(2.0, "L/min")}])]),
    "spo2_85_on_oxygen_excludes": Case(
        "E3", "met",
        lambda b: (b.measurement(1, AS_OF - dt.timedelta(days=2), source_value="59408-5", value=85.0, unit="%"),
                   b.measurement(1, AS_OF - dt.timedelta(days=2), source_value="3151-8", value=2.0, unit="L/min")),
        [spo2(85.0, day(-2) + "T10:00:00-05:00", component=[{"code": cc(LOINC, "3151-8"), "valueQuantity": qty(2.0, "L/min")}])]),
    "spo2_86_on_room_air_flow_0_excludes": Case(
        "E3", "met",
        lambda b: (b.measurement(1, AS_OF - dt.timedelta(days=2), source_value="59408-5", value=86.0, unit="%"),
                   b.measurement(1, AS_OF - dt.timedelta(days=2), source_value="3151-8", value=0.0, unit="L/min")),
        [spo2(86.0, day(-2) + "T10:00:00-05:00", component=[{"code": cc(LOINC, "3151-8"), "valueQuantity": qty(0.0, "L/min")}])]),
    "spo2_86_during_a_walk_test_cannot_exclude": Case(
        "E3", "unknown",
        lambda b: (b.measurement(1, AS_OF - dt.timedelta(days=2), source_value="59408-5", value=86.0, unit="%"),
                   b.measurement(1, AS_OF - dt.timedelta(days=2), source_value="64098-7", value=300.0, unit="m")),
        [spo2(86.0, day(-2) + "T10:00:00-05:00"),
         observation("64098-7", day(-2) + "T10:00:00-05:00", "activity", valueQuantity=qty(300.0, "m"))]),
    "spo2_92_during_a_walk_test_shows_the_resting_value_is_not_below_88": Case(
        "E3", "not_met",
        lambda b: (b.measurement(1, AS_OF - dt.timedelta(days=2), source_value="59408-5", value=92.0, unit="%"),
                   b.measurement(1, AS_OF - dt.timedelta(days=2), source_value="64098-7", value=420.0, unit="m")),
        [spo2(92.0, day(-2) + "T10:00:00-05:00"),
         observation("64098-7", day(-2) + "T10:00:00-05:00", "activity", valueQuantity=qty(420.0, "m"))]),
    "positive_qualitative_urine_hcg_excludes": Case(
        "E9", "met",
        lambda b: b.measurement(1, AS_OF - dt.timedelta(days=3), source_value="2106-3", value_as_concept_id=9191),
        [observation("2106-3", day(-3), valueCodeableConcept=cc(SNOMED, "10828004", "Positive"))]),
    "an_hcg_reported_only_by_its_interpretation_positive_excludes": Case(
        "E9", "met",
        lambda b: b.measurement(1, AS_OF - dt.timedelta(days=3), source_value="2106-3", value_as_concept_id=9191),
        [observation("2106-3", day(-3), interpretation=[cc("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                                           "POS", "Positive")])]),
    "negative_qualitative_urine_hcg_does_not_exclude": Case(
        "E9", "not_met",
        lambda b: b.measurement(1, AS_OF - dt.timedelta(days=3), source_value="2106-3", value_as_concept_id=9189),
        [observation("2106-3", day(-3), valueCodeableConcept=cc(SNOMED, "260385009", "Negative"))]),
    "positive_hcg_excludes_whatever_the_recorded_sex": Case(
        "E9", "met",
        lambda b: b.measurement(1, AS_OF - dt.timedelta(days=3), source_value="21198-7", value=250.0, unit="[IU]/L"),
        [observation("21198-7", day(-3), valueQuantity=qty(250.0, "[IU]/L"))], sex="unknown"),
    "a_man_with_no_pregnancy_test_is_decided_by_the_records": Case(
        "E9", "not_met", lambda b: None, [], sex="male"),
    "a_woman_with_no_pregnancy_test_is_unknown": Case("E9", "unknown", lambda b: None, []),
    "pregnancy_status_pregnant_excludes": Case(
        "E9", "met",
        lambda b: b.observation(1, AS_OF - dt.timedelta(days=10), source_value="82810-3", value_as_string="Pregnant"),
        [observation("82810-3", day(-10), "social-history", valueCodeableConcept=cc(SNOMED, "77386006", "Pregnant"))]),
    "truxima_product_code_counts_as_rituximab": Case(
        "E2", "met",
        lambda b: b.drug(1, AS_OF - dt.timedelta(days=21), source_value="2105831"),
        [administration("2105831", day(-21))]),
    "heart_failure_recorded_a_year_ago_and_not_resolved_counts_within_six_months": Case(
        "E6", "met",
        lambda b: b.condition(1, add_months(AS_OF, -12), source_value="I50.22"),
        [condition("I50.22", add_months(AS_OF, -12).isoformat())]),
    "heart_failure_resolved_before_the_six_months_leaves_only_the_investigators_opinion": Case(
        "E6", "needs_review",
        lambda b: b.condition(1, add_months(AS_OF, -12), source_value="I50.9", end_date=add_months(FIRST_INFUSION, -8)),
        [condition("I50.9", add_months(AS_OF, -12).isoformat(), status="resolved",
                   abatement=add_months(FIRST_INFUSION, -8).isoformat())]),
    "an_old_mi_is_not_an_acute_mi": Case(
        "E6", "needs_review",
        lambda b: b.condition(1, add_months(AS_OF, -1), source_value="I25.2"),
        [condition("I25.2", add_months(AS_OF, -1).isoformat())]),
    "a_positive_hbsag_is_a_history_of_hepatitis_b": Case(
        "E7", "met",
        lambda b: b.measurement(1, D(2020, 5, 1), source_value="5196-1", value_as_concept_id=9191),
        [observation("5196-1", "2020-05-01", valueCodeableConcept=cc(SNOMED, "10828004", "Positive"))]),
    "a_negative_hcv_antibody_is_no_history": Case(
        "E7", "not_met",
        lambda b: b.measurement(1, D(2023, 5, 1), source_value="13955-0", value_as_concept_id=9189),
        [observation("13955-0", "2023-05-01", valueCodeableConcept=cc(SNOMED, "260385009", "Negative"))]),
    "methotrexate_stopped_two_years_ago_is_not_current_therapy": Case(
        "I3", "not_met",
        lambda b: (b.condition(1, D(2015, 1, 1), source_value="M06.9"), b.condition(1, D(2021, 1, 1), source_value="J84.10"),
                   b.drug(1, D(2021, 2, 1), D(2022, 5, 1), source_value="6851")),
        [condition("M06.9", "2015-01-01"), condition("J84.10", "2021-01-01"),
         {"resourceType": "MedicationStatement", "status": "completed", "medicationCodeableConcept": cc(RXNORM, "6851"),
          "subject": {"reference": "Patient/p"}, "effectivePeriod": {"start": "2021-02-01", "end": "2022-05-01"}}]),
}


def _omop_status(case: Case, tmp_path: Path) -> str:
    b = OmopBuilder()
    person(b, 1, sex=None if case.sex == "unknown" else case.sex)
    case.omop(b)
    b.write(tmp_path / "cdm.duckdb")
    result = screen(open_omop(tmp_path / "cdm.duckdb"), load("nct03929120"), AS_OF)
    return str(result.statuses_table()[case.criterion][0].as_py())


def _fhir_status(case: Case, tmp_path: Path) -> str:
    patient = {"resourceType": "Patient", "id": "p", "birthDate": "1965-03-10", "gender": case.sex}
    # a chart seen at the clinic for years, with a normal panel and (unless the case brings its own) a normal SpO2
    visits = [{"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}, "subject": {"reference": "Patient/p"},
               "period": {"start": "2015-01-01", "end": "2015-01-01"}}]
    labs = [observation(code, day(-7), valueQuantity=qty(v, u), referenceRange=[{"low": qty(lo, u), "high": qty(hi, u)}])
            for code, v, u, lo, hi in (("718-7", 13.5, "g/dL", 12.0, 16.0), ("6690-2", 6.5, "10*3/uL", 4.0, 11.0),
                                       ("751-8", 4.0, "10*3/uL", 1.8, 7.7), ("777-3", 250.0, "10*3/uL", 150.0, 400.0),
                                       ("2160-0", 0.9, "mg/dL", 0.6, 1.2), ("1920-8", 25.0, "U/L", 10.0, 40.0),
                                       ("1742-6", 30.0, "U/L", 7.0, 56.0))]
    resources = [patient, *visits, *labs, *case.fhir]
    if not any(r.get("code") == cc(LOINC, "59408-5") for r in case.fhir):
        resources.append(spo2(95.0, day(-7)))
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"fullUrl": f"urn:uuid:{i}", "resource": {**r, "id": r.get("id", f"r{i}")}} for i, r in enumerate(resources)]}
    path = tmp_path / "chart.json"
    path.write_text(json.dumps(bundle))
    (sheet,) = check_fhir(path, load("nct03929120"), AS_OF)
    return str(next(c["status"] for c in sheet.criteria if c["id"] == case.criterion))


@pytest.mark.parametrize("name", list(CASES))
def test_on_an_omop_database(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    assert _omop_status(case, tmp_path) == case.expected


@pytest.mark.parametrize("name", list(CASES))
def test_on_a_fhir_chart(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    assert _fhir_status(case, tmp_path) == case.expected


def test_the_oxygen_reason_is_in_the_evidence(tmp_path: Path) -> None:
    b = OmopBuilder()
    person(b, 1)
    CASES["spo2_91_on_2_l_oxygen_does_not_show_e3_is_not_met"].omop(b)
    b.write(tmp_path / "cdm.duckdb")
    sheet = screen(open_omop(tmp_path / "cdm.duckdb"), load("nct03929120"), AS_OF).for_person(1)
    (e3,) = [c for c in sheet["criteria"] if c["id"] == "E3"]
    (reading,) = [e for e in e3["evidence"] if e["value"] == 91.0]
    assert "taken on supplemental oxygen" in reading["note"] and "cannot show the room-air value" in reading["note"]


def test_a_rituximab_infusion_known_only_by_its_brand_name_is_marked_as_such(tmp_path: Path) -> None:
    b = OmopBuilder()
    person(b, 1)
    b.drug(1, AS_OF - dt.timedelta(days=21), source_value="Truxima 500 mg in 50 mL")
    b.drug(1, AS_OF - dt.timedelta(days=35), source_value="Truxima 500 mg in 50 mL")
    person(b, 2)
    b.drug(2, AS_OF - dt.timedelta(days=21), source_value="121191")  # by its RxNorm code
    b.write(tmp_path / "cdm.duckdb")

    def e2(few: bool, pid: int) -> dict[str, object]:
        result = screen(open_omop(tmp_path / "cdm.duckdb"), load("nct03929120"), AS_OF, few=few)
        (c,) = [c for c in result.for_person(pid)["criteria"] if c["id"] == "E2"]
        return c

    by_name = e2(False, 1)
    assert by_name["status"] == "met"
    note = by_name["evidence"][0]["note"]  # type: ignore[index]
    assert note == "matched by the name 'Truxima' in the record's text only, not by a code; newest of 2 records in the window"
    coded = e2(False, 2)
    assert coded["status"] == "met" and "matched by the name" not in (coded["evidence"][0].get("note") or "")  # type: ignore[index]
    # the screen written for a few persons (a FHIR chart) words the notes the same, with a name matched or not
    assert (e2(True, 1), e2(True, 2)) == (by_name, coded)


def test_a_cancer_recorded_years_ago_with_no_end_asks_whether_it_is_still_active(tmp_path: Path) -> None:
    b = OmopBuilder()
    person(b, 1)
    b.condition(1, D(2021, 3, 1), source_value="C34.90")
    b.write(tmp_path / "cdm.duckdb")
    sheet = screen(open_omop(tmp_path / "cdm.duckdb"), load("nct03929120"), AS_OF).for_person(1)
    (e4,) = [c for c in sheet["criteria"] if c["id"] == "E4"]
    assert e4["status"] == "needs_review"
    assert any("is it still active?" in (e["note"] or "") for e in e4["evidence"])


def test_ipaf_features_in_the_records_are_shown_beside_the_attestation_and_rank_the_candidate_first(tmp_path: Path) -> None:
    b = OmopBuilder()
    for pid in (1, 2):  # two new ILDs with no CTD code; only the second has IPAF features
        person(b, pid)
        b.condition(pid, add_months(AS_OF, -3), source_value="J84.112")
    b.measurement(2, D(2024, 3, 2), source_value="5352-0", value_as_concept_id=9191)  # anti-Ro (SS-A) positive
    b.condition(2, D(2023, 1, 10), source_value="I73.00")  # Raynaud's
    b.write(tmp_path / "cdm.duckdb")
    result = screen(open_omop(tmp_path / "cdm.duckdb"), load("nct03929120"), AS_OF)
    candidates = result.candidates().to_pylist()
    assert [c["person_id"] for c in candidates] == [2, 1]
    assert [c["supporting_features"] for c in candidates] == [2, 0]
    sheet = result.for_person(2)
    (i3,) = [c for c in sheet["criteria"] if c["id"] == "I3"]
    assert i3["status"] == "needs_review"  # the attestation stays the investigator's
    notes = {e["date"]: e["note"] for e in i3["evidence"]}
    assert notes["2024-03-02"].startswith("supporting (serologic domain)") and "reported as positive" in notes["2024-03-02"]
    assert notes["2023-01-10"].startswith("supporting (clinical domain)")

"""A FHIR record with no date (a Condition with only an onsetString, a MedicationRequest with no authoredOn) is kept
with no date and named on the worksheet: it may lie in any window, so a criterion it alone would decide is unknown.
It used to be left out, and an undated HIV infection then read as "no history of HIV". As of 2025-03-01."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.sources.referral import referral
from trialdesk.eligibility.worksheet import check_fhir
from trialdesk.protocol.loader import load
from trialdesk.sources.fhir import map_to_omop, read_fhir

AS_OF = dt.date(2025, 3, 1)
HIV = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "B20"}]}
RITUXIMAB = {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "121191"}]}


@pytest.fixture(scope="module")
def protocol():  # type: ignore[no-untyped-def]
    return load("nct03929120")


def cited(path: Path, protocol: Any, criterion: str) -> list[dict[str, Any]]:
    (s,) = check_fhir(path, protocol, AS_OF)
    return [e for c in s.criteria if c["id"] == criterion for e in c["evidence"]]


def sheet(path: Path, protocol: Any) -> tuple[dict[str, str], list[str]]:
    (s,) = check_fhir(path, protocol, AS_OF)
    return {c["id"]: c["status"] for c in s.criteria}, s.problems


@pytest.mark.parametrize("onset", [{}, {"onsetString": "since 2010"},
                                   {"onsetAge": {"value": 30, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}}],
                         ids=["no onset", "onsetString", "onsetAge"])
def test_an_undated_hiv_infection_is_no_proof_of_no_history(tmp_path: Path, protocol: Any, onset: dict[str, Any]) -> None:
    statuses, problems = sheet(referral(tmp_path, {"resourceType": "Condition", "code": HIV, **onset}), protocol)
    assert statuses["E7"] == "unknown"
    assert any("Condition/probe-0: onset[x]: no onset date or recordedDate" in p and "kept with no date" in p for p in problems)


def test_the_undated_record_that_leaves_a_criterion_unknown_is_cited_as_its_evidence(tmp_path: Path, protocol: Any) -> None:
    (evidence,) = cited(referral(tmp_path, {"resourceType": "Condition", "code": HIV}), protocol, "E7")
    assert evidence["code"] == "B20" and evidence.get("date") is None
    assert evidence["note"].startswith("no date recorded: it may lie in the window")
    undated_spo2 = {"resourceType": "Observation", "status": "final", "code": {"coding": [
        {"system": "http://loinc.org", "code": "59408-5"}]}, "valueQuantity": {"value": 85, "unit": "%",
        "system": "http://unitsofmeasure.org", "code": "%"}}
    path = referral(tmp_path, undated_spo2)
    statuses, problems = sheet(path, protocol)
    assert statuses["E3"] == "unknown"  # the undated 85 % may be the latest reading; the dated 94 % may not be
    assert any("Observation/probe-0: effective[x]: no date for the observation: it is kept with no date" in p for p in problems)
    spo2 = [e for e in cited(path, protocol, "E3") if e.get("date") is None]
    assert [e["value"] for e in spo2] == [85.0] and spo2[0]["note"].startswith("no date recorded")


def test_an_undated_record_is_not_cited_where_a_dated_one_decides(tmp_path: Path, protocol: Any) -> None:
    path = referral(tmp_path, {"resourceType": "Condition", "code": HIV},
                    {"resourceType": "Condition", "code": HIV, "onsetDateTime": "2010-05-01"})
    evidence = cited(path, protocol, "E7")
    assert [str(e.get("date")) for e in evidence] == ["2010-05-01"]


def test_a_dated_hiv_infection_still_excludes(tmp_path: Path, protocol: Any) -> None:
    statuses, _ = sheet(referral(tmp_path, {"resourceType": "Condition", "code": HIV, "onsetDateTime": "2010-05-01"}), protocol)
    assert statuses["E7"] == "met"


def test_an_undated_rituximab_order_leaves_e2_unknown_and_a_dated_one_in_the_window_decides(tmp_path: Path,
                                                                                            protocol: Any) -> None:
    undated = {"resourceType": "MedicationRequest", "status": "active", "intent": "order", "medicationCodeableConcept": RITUXIMAB}
    statuses, problems = sheet(referral(tmp_path, undated), protocol)
    assert statuses["E2"] == "unknown"
    assert any("no date for the exposure: the record is kept with no date" in p for p in problems)
    dated = dict(undated, authoredOn="2025-02-10")
    assert sheet(referral(tmp_path, undated, dated), protocol)[0]["E2"] == "met"


def test_undated_records_are_rows_with_no_date(tmp_path: Path) -> None:
    path = referral(tmp_path, {"resourceType": "Condition", "code": HIV},
                 {"resourceType": "Procedure", "status": "completed", "code": {"text": "bronchoscopy"}},
                 {"resourceType": "MedicationStatement", "status": "active", "medicationCodeableConcept": RITUXIMAB})
    con = duckdb.connect()
    map_to_omop(read_fhir(path), con)
    assert con.execute("select count(*) from condition_occurrence where condition_source_value = 'B20' "
                       "and condition_start_date is null").fetchone() == (1,)
    assert con.execute("select count(*) from procedure_occurrence where procedure_date is null").fetchone() == (1,)
    assert con.execute("select count(*) from drug_exposure where drug_source_value = '121191' "
                       "and drug_exposure_start_date is null").fetchone() == (1,)

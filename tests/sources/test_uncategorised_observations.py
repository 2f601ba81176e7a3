"""An Observation whose category says nothing R4 knows (none at all, or only a local code) is placed by its code: a
LOINC-coded result is a test, read by the criteria over measurements (a reactive HIV test, a positive urine hCG),
not filed as a social-history observation where no measurement criterion looks. Charts are checked as of 2025-03-01."""

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
LOINC, SCT = "http://loinc.org", "http://snomed.info/sct"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
REACTIVE = {"coding": [{"system": SCT, "code": "11214006", "display": "Reactive"}]}
NON_REACTIVE = {"coding": [{"system": SCT, "code": "131194007", "display": "Non-Reactive"}]}


def lab(code: str, value: dict[str, Any], *, category: list[dict[str, Any]] | None = None, day: str = "2025-02-17",
         system: str = LOINC) -> dict[str, Any]:
    r: dict[str, Any] = {"resourceType": "Observation", "id": f"probe-{code}", "status": "final",
                         "code": {"coding": [{"system": system, "code": code}]},
                         "subject": {"reference": "Patient/ssc-new-patient"}, "effectiveDateTime": day, **value}
    if category is not None:
        r["category"] = category
    return r


def tables(path: Path, code: str) -> tuple[int, int]:
    """(rows in measurement, rows in observation) with this source code."""
    con = duckdb.connect()
    map_to_omop(read_fhir(path), con)
    m = con.execute("select count(*) from measurement where measurement_source_value = ?", [code]).fetchone()
    o = con.execute("select count(*) from observation where observation_source_value = ?", [code]).fetchone()
    assert m is not None and o is not None
    return m[0], o[0]


@pytest.fixture(scope="module")
def protocol():  # type: ignore[no-untyped-def]
    return load("nct03929120")


def statuses(path: Path, protocol: Any) -> dict[str, str]:
    (sheet,) = check_fhir(path, protocol, AS_OF)
    return {c["id"]: c["status"] for c in sheet.criteria}


@pytest.mark.parametrize("category", [None, [], [{"coding": [{"system": "https://ehr.example.org/obs-kind", "code": "LAB"}]}]],
                         ids=["no category", "empty list", "local category only"])
def test_a_loinc_result_with_no_category_r4_knows_is_a_measurement(tmp_path: Path, category: Any) -> None:
    path = referral(tmp_path, lab("56888-1", {"valueCodeableConcept": REACTIVE}, category=category))
    assert tables(path, "56888-1") == (1, 0)


def test_a_category_r4_knows_still_decides(tmp_path: Path) -> None:
    social = [{"coding": [{"system": CATEGORY, "code": "social-history"}]}]
    # pregnancy status (LOINC 82810-3) filed as social history stays an observation; a SNOMED-coded finding with no
    # category is not a test either
    path = referral(tmp_path, lab("82810-3", {"valueCodeableConcept": {"coding": [{"system": SCT, "code": "77386006"}]}},
                                category=social),
                 lab("161744009", {"valueString": "pregnant twice before"}, system=SCT))
    assert tables(path, "82810-3") == (0, 1)
    assert tables(path, "161744009") == (0, 1)


def test_an_uncategorised_reactive_hiv_test_excludes_and_a_non_reactive_one_does_not(tmp_path: Path, protocol: Any) -> None:
    assert statuses(referral(tmp_path, lab("56888-1", {"valueCodeableConcept": REACTIVE})), protocol)["E7"] == "met"
    assert statuses(referral(tmp_path, lab("56888-1", {"valueCodeableConcept": NON_REACTIVE})), protocol)["E7"] == "not_met"


def test_an_uncategorised_hbsag_written_positive_excludes(tmp_path: Path, protocol: Any) -> None:
    assert statuses(referral(tmp_path, lab("5196-1", {"valueString": "POSITIVE"})), protocol)["E7"] == "met"


def test_an_uncategorised_positive_urine_pregnancy_test_after_a_negative_serum_hcg_excludes(tmp_path: Path,
                                                                                          protocol: Any) -> None:
    # the chart's serum hCG (below detection) is earlier in the 14 days; the urine test four days before screening
    positive = lab("2106-3", {"valueCodeableConcept": {"coding": [{"system": SCT, "code": "10828004"}]}}, day="2025-02-25")
    assert statuses(referral(tmp_path, positive), protocol)["E9"] == "met"
    negative = lab("2106-3", {"valueCodeableConcept": {"coding": [{"system": SCT, "code": "260385009"}]}}, day="2025-02-25")
    assert statuses(referral(tmp_path, negative), protocol)["E9"] == "not_met"

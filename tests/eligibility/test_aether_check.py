"""The patient check and the screen take a protocol folder's own value sets: AETHER's IPF, from
protocols/nct02013700/value_sets/, decides I3 for an 88-year-old with IPF on the problem list; the
first trial's library alone does not know the value set, so without the folder nothing could be checked."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trialdesk.cli import app
from trialdesk.eligibility.worksheet import check_fhir
from trialdesk.protocol.loader import load, load_value_sets, protocol_value_sets

AS_OF = dt.date(2026, 11, 2)


def bundle(tmp_path: Path, birth: str, icd10: str) -> Path:
    def entry(resource: dict[str, Any]) -> dict[str, Any]:
        return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}

    doc = {"resourceType": "Bundle", "type": "collection", "entry": [
        entry({"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": birth}),
        entry({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
               "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
               "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd10}]},
               "onsetDateTime": "2025-01-10", "recordedDate": "2025-01-10"}),
    ]}
    path = tmp_path / f"{birth}-{icd10}.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def statuses(path: Path) -> dict[str, str]:
    (sheet,) = check_fhir(path, load("nct02013700"), AS_OF, value_sets=protocol_value_sets("nct02013700"))
    return {c["id"]: c["status"] for c in sheet.criteria}


def test_an_88_year_old_with_ipf_meets_age_and_diagnosis(tmp_path: Path) -> None:
    got = statuses(bundle(tmp_path, "1938-05-01", "J84.112"))
    assert (got["I2"], got["I3"]) == ("met", "met")


def test_age_90_and_91_sit_either_side_of_the_upper_bound(tmp_path: Path) -> None:
    assert statuses(bundle(tmp_path, "1936-11-02", "J84.112"))["I2"] == "met"       # 90 today
    assert statuses(bundle(tmp_path, "1935-11-02", "J84.112"))["I2"] == "not_met"   # 91 today


def test_another_lung_fibrosis_code_is_not_ipf(tmp_path: Path) -> None:
    assert statuses(bundle(tmp_path, "1950-01-01", "J84.10"))["I3"] != "met"


def test_the_library_alone_does_not_know_aethers_value_sets() -> None:
    assert "ipf" not in load_value_sets() and "ipf" in protocol_value_sets("nct02013700")


def test_the_check_command_uses_the_folders_value_sets(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["patient", "check", str(bundle(tmp_path, "1938-05-01", "J84.112")), "--as-of", AS_OF.isoformat(),
                                      "--protocol", "nct02013700", "--format", "json", "--workers", "1"])
    assert result.exit_code == 0, result.output
    sheet = json.loads(result.output)
    sheet = sheet[0] if isinstance(sheet, list) else sheet
    assert {c["id"]: c["status"] for c in sheet["criteria"]}["I3"] == "met"


def test_a_command_without_a_protocol_uses_the_installations_default_and_says_so(tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIALDESK_PROTOCOL", raising=False)
    result = CliRunner().invoke(app, ["patient", "check", str(bundle(tmp_path, "1938-05-01", "J84.112")), "--as-of", AS_OF.isoformat(),
                                      "--format", "json", "--workers", "1"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    assert "no protocol named; using nct03929120, this installation's default (installed too: nct02013700" in said
    sheet = json.loads(result.stdout)
    sheet = sheet[0] if isinstance(sheet, list) else sheet
    assert [c["id"] for c in sheet["criteria"]][-1] == "E11"  # the first trial's criteria, not AETHER's

"""A chart that is silent about a domain does not say "no" (``sources/fhir_views/chart_domains.py``).

Under the protocol's strict reading (``eligibility.silent_chart: unknown``) the parts that read a silent
domain are unknown; under the default (the design's convention: no record counts as none) they keep their
answer and their evidence says what the chart lacks. Most tests here use the strict reading.

The variants are the SSc-ILD test chart (E2 "rituximab or cyclophosphamide in the previous 2
months" not_met: it holds medication orders, none of them those) with a domain taken out, and
with Lists that do or do not state that domain empty. They are checked in one batch (a folder of
Bundles, each its own chart) as of 2025-03-01.
"""

from __future__ import annotations

import copy
import html
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trialdesk.cli import app
from trialdesk.eligibility.worksheet import Worksheet, check_fhir
from trialdesk.protocol.loader import load
from trialdesk.protocol.model import Protocol

AS_OF = date(2025, 3, 1)
FHIR = Path(__file__).resolve().parents[1] / "fixtures" / "fhir"
BASE = json.loads((FHIR / "bundles" / "ssc_ild_new.json").read_text())
PATIENT = "Patient/ssc-new-patient"
MEDS = ("MedicationStatement", "MedicationRequest", "MedicationAdministration")
NO_MEDS = "the chart holds no medication records (MedicationStatement, MedicationRequest, MedicationAdministration) " \
          "and no List saying there are none"
NO_CONDITIONS = "the chart holds no diagnoses or problems (Condition) and no List saying there are none"
NO_PROCEDURES = "the chart holds no procedures (Procedure) and no List saying there are none"
LOINC = "http://loinc.org"
USE = "http://terminology.hl7.org/CodeSystem/list-example-use-codes"
EMPTY = "http://terminology.hl7.org/CodeSystem/list-empty-reason"


def strict() -> Protocol:
    """The first trial read strictly: a chart silent about a domain leaves its parts unknown."""
    p = load("nct03929120")
    return p.model_copy(update={"eligibility": p.eligibility.model_copy(update={"silent_chart": "unknown"})})


READ_AS_NONE = ": no record is read as none, as for anything the chart does not hold; check the full record"


def chart(drop: tuple[str, ...] = (), *lists: dict[str, Any]) -> dict[str, Any]:
    """The SSc-ILD Bundle without the resources of the types in ``drop``, with ``lists`` added."""
    doc = copy.deepcopy(BASE)
    doc["entry"] = [e for e in doc["entry"] if e["resource"]["resourceType"] not in drop]
    for i, lst in enumerate(lists):
        doc["entry"].append({"fullUrl": f"https://ehr.example.org/fhir/List/list-{i}", "resource": lst})
    return doc


def empty_list(kind: tuple[str, str] = (LOINC, "10160-0"), reason: str = "nilknown", **changes: Any) -> dict[str, Any]:
    """A List of ``kind`` (system, code) about the patient, current, a snapshot, with no entry, stating
    ``reason`` for being empty; ``changes`` replace elements (None leaves one out)."""
    lst: dict[str, Any] = {"resourceType": "List", "id": "list-0", "status": "current", "mode": "snapshot",
                           "code": {"coding": [{"system": kind[0], "code": kind[1]}]}, "subject": {"reference": PATIENT},
                           "emptyReason": {"coding": [{"system": EMPTY, "code": reason}]}}
    lst.update(changes)
    return {k: v for k, v in lst.items() if v is not None}


IPS = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips"


def ips_statement(code: str) -> dict[str, Any]:
    """An IPS-style MedicationStatement that codes the medication section's absence (``code``)."""
    return {"resourceType": "MedicationStatement", "id": "ips-meds", "status": "active", "subject": {"reference": PATIENT},
            "medicationCodeableConcept": {"coding": [{"system": IPS, "code": code}]}, "effectiveDateTime": "2025-02-20"}


def ips_condition(code: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": "ips-problems", "subject": {"reference": PATIENT},
            "code": {"coding": [{"system": IPS, "code": code}]}}


VARIANTS: dict[str, dict[str, Any]] = {
    "meds": chart(),
    "no_meds": chart(MEDS),
    "no_meds_nilknown_loinc": chart(MEDS, empty_list()),
    "no_meds_nilknown_use_code": chart(MEDS, empty_list((USE, "medications"))),
    "no_meds_notasked": chart(MEDS, empty_list(reason="notasked")),
    "no_meds_list_with_an_entry": chart(MEDS, empty_list(entry=[{"item": {"display": "methotrexate"}}])),
    "no_meds_list_retired": chart(MEDS, empty_list(status="retired")),
    "no_meds_list_of_changes": chart(MEDS, empty_list(mode="changes")),
    "no_meds_list_of_another_patient": chart(MEDS, empty_list(subject={"reference": "Patient/someone-else"})),
    "no_meds_list_of_problems": chart(MEDS, empty_list((LOINC, "11450-4"))),
    "no_meds_list_without_code": chart(MEDS, empty_list(code=None)),
    "no_conditions": chart(("Condition",)),
    "no_conditions_nilknown_problems": chart(("Condition",), empty_list((USE, "problems"))),
    "no_procedures": chart(("Procedure",)),
    "no_procedures_nilknown": chart(("Procedure",), empty_list((LOINC, "47519-4"))),
    "no_observations": chart(("Observation",)),
    "no_meds_ips_no_information": chart(MEDS, ips_statement("no-medication-info")),
    "no_meds_ips_none_known": chart(MEDS, ips_statement("no-known-medications")),
    "no_conditions_ips_no_information": chart(("Condition",), ips_condition("no-problem-info")),
    "no_conditions_ips_none_known": chart(("Condition",), ips_condition("no-known-problems")),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("silent")
    for name, doc in VARIANTS.items():
        (out / f"{name}.json").write_text(json.dumps(doc))
    return out


@pytest.fixture(scope="module")
def sheets(folder: Path) -> dict[str, Worksheet]:
    return {Path(s.file).stem: s for s in check_fhir(folder, strict(), AS_OF)}


def crit(sheet: Worksheet, cid: str) -> dict[str, Any]:
    (c,) = [c for c in sheet.criteria if c["id"] == cid]
    return c


def reasons(sheet: Worksheet, cid: str) -> list[str]:
    return [e["note"] for e in crit(sheet, cid)["evidence"] if "record_id" not in e and "resource" not in e]


def test_a_chart_with_medications_but_no_rituximab_is_not_met_and_one_with_none_at_all_is_unknown(
        sheets: dict[str, Worksheet]) -> None:
    assert crit(sheets["meds"], "E2") == {**crit(sheets["meds"], "E2"), "status": "not_met", "evidence": []}
    e2 = crit(sheets["no_meds"], "E2")
    assert e2["status"] == "unknown" and e2["evidence"] == [{"table": "drug_exposure", "note": NO_MEDS}]
    # an exclusion that cannot be ruled out leaves the overall to the investigator
    assert sheets["no_meds"].overall == "needs_review"
    # a silent domain decides nothing another part already decides: I3 is new ILD with a CTD (met) OR
    # established ILD under therapy (reads drugs), still met, and the silence is not cited under it
    assert crit(sheets["meds"], "I3")["status"] == crit(sheets["no_meds"], "I3")["status"] == "met"
    assert NO_MEDS not in reasons(sheets["no_meds"], "I3")


@pytest.mark.parametrize("name", ["no_meds_nilknown_loinc", "no_meds_nilknown_use_code"])
def test_a_current_empty_medication_list_with_nil_known_states_no_medication(sheets: dict[str, Worksheet], name: str) -> None:
    assert crit(sheets[name], "E2")["status"] == "not_met" and crit(sheets[name], "E2")["evidence"] == []
    # the same chart without the List says nothing
    assert crit(sheets["no_meds"], "E2")["status"] == "unknown"


@pytest.mark.parametrize("name", [
    "no_meds_notasked", "no_meds_list_with_an_entry", "no_meds_list_retired", "no_meds_list_of_changes",
    "no_meds_list_of_another_patient", "no_meds_list_of_problems", "no_meds_list_without_code"])
def test_a_list_that_does_not_state_no_medication_leaves_the_chart_silent(sheets: dict[str, Worksheet], name: str) -> None:
    e2 = crit(sheets[name], "E2")
    assert e2["status"] == "unknown" and e2["evidence"] == [{"table": "drug_exposure", "note": NO_MEDS}]
    # the nil-known List it differs from by one element does state it
    assert crit(sheets["no_meds_nilknown_loinc"], "E2")["status"] == "not_met"


def test_no_condition_at_all_is_unknown_and_a_nil_known_problem_list_is_not_met(sheets: dict[str, Worksheet]) -> None:
    # E7: HIV, hepatitis B or C, by diagnosis or serology; the serologies' absence counts (the chart holds Observations)
    assert crit(sheets["meds"], "E7")["status"] == "not_met"
    assert crit(sheets["no_conditions"], "E7")["status"] == "unknown"
    assert reasons(sheets["no_conditions"], "E7") == [NO_CONDITIONS]
    assert crit(sheets["no_conditions_nilknown_problems"], "E7") == {**crit(sheets["meds"], "E7")}


def test_no_procedure_at_all_is_cited_and_a_nil_known_procedure_list_is_not(sheets: dict[str, Worksheet]) -> None:
    # E5 (prior mesenchymal stem cell therapy) is the investigator's question whatever the records say; its
    # records part is unknown without procedures, and the worksheet says why
    assert reasons(sheets["no_procedures"], "E5") == [NO_PROCEDURES]
    assert reasons(sheets["no_procedures_nilknown"], "E5") == [] == reasons(sheets["meds"], "E5")


def test_the_domains_are_read_per_patient_within_one_export(tmp_path: Path) -> None:
    """Patient A with medication orders and patient B with none, in one Bulk export (one scope):
    only B's drug part is unknown."""
    export = tmp_path / "export"
    export.mkdir()
    by_type: dict[str, list[str]] = {}
    for prefix, drop in (("", ()), ("b-", MEDS)):
        for e in chart(drop)["entry"]:
            text = json.dumps(e["resource"]).replace("ssc-new-", f"{prefix}ssc-new-")
            by_type.setdefault(e["resource"]["resourceType"], []).append(text)
    for rtype, lines in by_type.items():
        (export / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    got = {s.patient: s for s in check_fhir(export, strict(), AS_OF)}
    assert set(got) == {"ssc-new-patient", "b-ssc-new-patient"}
    assert crit(got["ssc-new-patient"], "E2") == {**crit(got["ssc-new-patient"], "E2"), "status": "not_met", "evidence": []}
    b = crit(got["b-ssc-new-patient"], "E2")
    assert b["status"] == "unknown" and b["evidence"] == [{"table": "drug_exposure", "note": NO_MEDS}]
    # everything else B's chart holds reads as A's
    for cid in ("I1", "I3", "E1", "E3", "E7", "E8"):
        assert crit(got["b-ssc-new-patient"], cid)["status"] == crit(got["ssc-new-patient"], cid)["status"], cid


@pytest.mark.parametrize("fmt", ["table", "html"])
def test_the_worksheet_shows_what_the_chart_lacks(folder: Path, fmt: str, tmp_path: Path) -> None:
    args = ["patient", "check", str(folder / "no_meds.json"), "--as-of", AS_OF.isoformat(), "--format", fmt]
    if fmt == "html":
        args += ["--out", str(tmp_path / "w.html")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    text = (tmp_path / "w.html").read_text(encoding="utf-8") if fmt == "html" else result.output
    assert NO_MEDS in " ".join(html.unescape(text).split())


def test_a_test_whose_absence_the_protocol_reads_as_not_met_keeps_that_reading_in_a_chart_without_results(
        sheets: dict[str, Worksheet]) -> None:
    """E7's serologies say ``absent: not_met`` (no HIV, HBV or HCV test: read like a missing diagnosis) and its
    diagnoses are in the chart: a chart with no Observation at all leaves E7 not_met, as the protocol reads it;
    E8's screening labs, whose absence the protocol leaves unknown, are unknown."""
    assert crit(sheets["no_observations"], "E7")["status"] == "not_met"
    assert crit(sheets["no_observations"], "E8")["status"] == "unknown"


def test_an_ips_record_of_no_information_says_nothing_and_one_of_none_known_states_the_domain_empty(
        sheets: dict[str, Worksheet]) -> None:
    """IPS codes a section it has nothing for: "no information about medications" leaves the chart silent
    (E2 unknown, as with no record at all); "no known medications" says there are none (E2 not_met)."""
    e2 = crit(sheets["no_meds_ips_no_information"], "E2")
    assert e2["status"] == "unknown" and e2["evidence"] == [{"table": "drug_exposure", "note": NO_MEDS}]
    assert crit(sheets["no_meds_ips_none_known"], "E2")["status"] == "not_met"
    assert crit(sheets["no_conditions_ips_no_information"], "E7")["status"] == "unknown"
    assert reasons(sheets["no_conditions_ips_no_information"], "E7") == [NO_CONDITIONS]
    assert crit(sheets["no_conditions_ips_none_known"], "E7")["status"] == "not_met"


def test_by_the_default_convention_a_silent_chart_keeps_its_answer_and_says_what_it_lacks(folder: Path) -> None:
    """The design's convention (within observed time no record of a drug counts as its absence) is the default:
    E2 is not_met for the chart with no medication record at all, as for the chart with medications but no
    rituximab; the investigator reads on the worksheet that the chart held none."""
    assert load("nct03929120").eligibility.silent_chart == "absent"
    (no_meds,) = check_fhir(folder / "no_meds.json", load("nct03929120"), AS_OF)
    (meds,) = check_fhir(folder / "meds.json", load("nct03929120"), AS_OF)
    assert crit(no_meds, "E2")["status"] == "not_met" == crit(meds, "E2")["status"]
    assert crit(no_meds, "E2")["evidence"] == [{"table": "drug_exposure", "note": NO_MEDS + READ_AS_NONE}]
    assert crit(meds, "E2")["evidence"] == []
    assert no_meds.overall == meds.overall

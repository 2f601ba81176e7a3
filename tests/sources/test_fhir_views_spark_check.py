"""``trialdesk patient check --engine spark``: local Spark runs the OMOP views, DuckDB reads, maps and
screens, and the worksheets are the DuckDB engine's, byte for byte.

The input is one folder holding a small Bulk export (benchmarks/patient_check.py's: every test
chart once, ids renamed; its Observations gzipped) with resources that bear problems added (an
impossible date, a status code R4 does not have, a record of a Patient not in the export, one with
no subject, a duplicate id, an unknown unit), and two Bundles beside it (the SSc-ILD referral with
an undated and an uncategorised record, and the fixture whose Patient is missing).

One check on Spark in all (a warm session runs the ten views in ~30 s on this guest, and CI is near
its time budget): through ``check_fhir`` in chunks of 8 patients (the views once over the whole
input, each chunk taking its rows: the intricate path), its worksheets rendered in every format
against DuckDB's in one pass. The command's wiring of ``--engine spark`` (in one pass and in chunks)
is checked by its failures, which stop before any view runs.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.sources.referral import PATIENT, referral
from trialdesk.cli import app
from trialdesk.console import out
from trialdesk.eligibility.patient_commands import _print_summary, _print_table, batch_json, render_html
from trialdesk.eligibility.worksheet import Batch, check_fhir

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "fixtures" / "fhir" / "bad"
AS_OF = "2025-03-01"
runner = CliRunner()

#: NDJSON lines added to the export, each a problem the worksheets (or the batch) must name
PROBLEM_LINES: dict[str, list[dict[str, Any]]] = {
    "Observation": [
        {"resourceType": "Observation", "id": "bad-date", "status": "final", "subject": {"reference": "Patient/p0-anca-ild-patient"},
         "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]}, "effectiveDateTime": "2024-02-30",
         "valueQuantity": {"value": 30, "unit": "U/L", "system": "http://unitsofmeasure.org", "code": "U/L"}},
        {"resourceType": "Observation", "id": "odd-unit", "status": "final", "subject": {"reference": "Patient/p5-alt-uln-patient"},
         "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
         "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]}, "effectiveDateTime": "2025-01-10",
         "valueQuantity": {"value": 1.50, "unit": "furlongs"}},
        {"resourceType": "Observation", "id": "no-subject", "status": "final",
         "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]}, "effectiveDateTime": "2025-01-10",
         "valueQuantity": {"value": 12, "unit": "U/L"}},
    ],
    "MedicationRequest": [
        {"resourceType": "MedicationRequest", "id": "odd-status", "status": "paused", "intent": "order",
         "subject": {"reference": "Patient/p18-ssc-new-patient"}, "authoredOn": "2025-01-02",
         "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "121191"}]}},
    ],
    "Condition": [
        {"resourceType": "Condition", "id": "nobody", "subject": {"reference": "Patient/not-in-the-export"},
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "40979000"}]}, "onsetDateTime": "2020-01-01"},
    ],
}  # fmt: skip


def _export(folder: Path) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from patient_check import write_export
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    write_export(folder, 19)  # every test chart once
    for rtype, lines in PROBLEM_LINES.items():
        with (folder / f"{rtype}.ndjson").open("a") as f:
            f.writelines(json.dumps(r) + "\n" for r in lines)
    with (folder / "Patient.ndjson").open("a") as f:  # a duplicate id: the first one is used
        f.write(json.dumps({"resourceType": "Patient", "id": "p3-age-79-patient", "gender": "male", "birthDate": "1950-01-01"}) + "\n")
    text = (folder / "Observation.ndjson").read_bytes()
    (folder / "Observation.ndjson.gz").write_bytes(gzip.compress(text))
    (folder / "Observation.ndjson").unlink()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("spark_check") / "input"
    folder.mkdir()
    _export(folder)
    chart = referral(tmp_path_factory.mktemp("referral"),
                     {"resourceType": "Condition", "code": {"coding": [{"system": "http://snomed.info/sct", "code": "773953006"}]}},
                     {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org",
                      "code": "2160-0"}]}, "effectiveDateTime": "2025-02-01", "valueQuantity": {"value": 0.9, "unit": "mg/dL"},
                      "subject": PATIENT})  # fmt: skip
    shutil.copy(chart, folder / "referral.json")
    shutil.copy(BAD / "missing_patient.json", folder / "missing_patient.json")
    return folder


@pytest.fixture(scope="module")
def batches(inputs: Path, protocol: Any) -> dict[str, Batch]:
    import datetime as dt

    as_of = dt.date.fromisoformat(AS_OF)
    return {"duckdb": check_fhir(inputs, protocol, as_of), "spark": check_fhir(inputs, protocol, as_of, engine="spark", chunk=8)}


def _table(batch: Batch) -> str:
    with out.capture() as captured:
        for sheet in batch:
            _print_table(sheet)
        _print_summary(batch)
    return captured.get()


def test_the_input_has_varied_charts_and_problems(batches: dict[str, Batch]) -> None:
    """What the comparison below is made on: many patients, both outcomes, and the problems planted."""
    duck = batches["duckdb"]
    assert len(duck) == 21  # 19 exported charts, the referral, the Bundle whose Patient is missing
    assert {s.overall for s in duck} == {"needs_review", "not_eligible"}  # as of 2025-03-01 no test chart is eligible outright
    said = "\n".join([*duck.problems, *(p for s in duck for p in s.problems)])
    for planted in ("bad-date", "'paused' is not a code FHIR R4 allows", "refers to Patient/not-in-the-export",
                    "no reference to the Patient", "duplicate resource Patient/p3-age-79-patient", "'furlongs'"):  # fmt: skip
        assert planted in said, planted


def test_spark_gives_the_duckdb_worksheets_in_every_format(batches: dict[str, Batch]) -> None:
    duck, spark = batches["duckdb"], batches["spark"]
    assert spark.problems == duck.problems
    assert [s.problems for s in spark] == [s.problems for s in duck]
    assert json.dumps(batch_json(spark), indent=2) == json.dumps(batch_json(duck), indent=2)
    assert render_html(spark) == render_html(duck)
    assert _table(spark) == _table(duck)


def test_an_unknown_engine_is_refused_by_name(inputs: Path) -> None:
    r = runner.invoke(app, ["patient", "check", str(inputs), "--as-of", AS_OF, "--engine", "postgres"])
    assert r.exit_code == 2
    said = " ".join(r.output.replace("│", " ").split())  # typer's usage error, its message in a box
    assert "Invalid value for '--engine'" in said and "'postgres' is not one of 'duckdb', 'spark'." in said


def test_spark_failing_to_start_is_one_line(inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trialdesk.sources.omop as omop

    def no_java() -> None:
        raise RuntimeError("[JAVA_GATEWAY_EXITED] Java gateway process exited before sending its port number.")

    monkeypatch.setattr(omop, "spark_session", no_java)
    r = runner.invoke(app, ["patient", "check", str(inputs), "--as-of", AS_OF, "--engine", "spark"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == ["error: Spark cannot start: Java gateway process exited before sending its port number."]


def test_a_view_spark_refuses_is_one_line_naming_it(inputs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In chunks: the views run on Spark in the first pass, before the export is split."""
    from trialdesk.sources.fhir_views import ViewError, spark

    def refused(session: Any, compiled: Any, source: str, *, keep_ord: bool = False) -> None:
        raise ViewError(f"view {compiled.name}: Spark cannot run it: no such function")

    monkeypatch.setattr(spark, "view_frame", refused)
    r = runner.invoke(app, ["patient", "check", str(inputs), "--as-of", AS_OF, "--engine", "spark", "--chunk", "8", "--format", "json"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == ["error: view omop_person: Spark cannot run it: no such function"]

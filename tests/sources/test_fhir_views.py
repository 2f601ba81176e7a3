"""The view runner's command and refusals, and the OMOP views' readings that are new with them
(interpretation-only results, components linked to their Observation, duplicates)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from trialdesk.cli import app
from trialdesk.sources.fhir import map_to_omop, read_fhir
from trialdesk.sources.fhir_views import ViewError, compile_view, run_view
from trialdesk.sources.fhir_views.reader import load_resources

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fhir"
VIEWS = Path(__file__).resolve().parents[2] / "src" / "trialdesk" / "sources" / "fhir_views" / "omop"
runner = CliRunner()

PATIENT = {"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01", "gender": "female"}
SUBJECT = {"reference": "Patient/p"}


def _bundle(tmp_path: Path, *resources: dict[str, Any], name: str = "chart.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                "entry": [{"resource": r} for r in (PATIENT, *resources)]}))  # fmt: skip
    return path


def _mapped(path: Path) -> tuple[duckdb.DuckDBPyConnection, Any]:
    con = duckdb.connect()
    return con, map_to_omop(read_fhir(path), con)


# --------------------------------------------------------------------------- trialdesk fhir view


def test_fhir_view_prints_the_rows_of_a_view_as_csv() -> None:
    r = runner.invoke(app, ["fhir", "view", str(VIEWS / "person.json"), str(FIXTURES / "bundles" / "ipaf.json")])
    assert r.exit_code == 0, r.output
    assert list(csv.reader(io.StringIO(r.output))) == [["resource_id", "birth_date", "gender", "deceased_boolean", "deceased_datetime"],
                                                       ["ipaf-patient", "1966-11-02", "female", "", ""]]  # fmt: skip


def test_fhir_view_json_lines_keep_collections_as_json(tmp_path: Path) -> None:
    r = runner.invoke(app, ["fhir", "view", str(VIEWS / "condition_occurrence.json"), str(FIXTURES / "export_ssc_ild_new"),
                            "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert len(rows) == 4 and all(isinstance(row["codings"], list) for row in rows)
    assert {c["code"] for row in rows for c in row["codings"]} >= {"M34.81", "233703007"}


def test_fhir_view_writes_parquet_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "obs.parquet"
    r = runner.invoke(app, ["fhir", "view", str(VIEWS / "observation.json"), str(FIXTURES / "bundles" / "ssc_ild_new.json"),
                            "--format", "parquet", "--out", str(target)])  # fmt: skip
    assert r.exit_code == 0, r.output
    n = duckdb.sql(f"select count(*) from '{target}'").fetchone()
    assert n is not None and n[0] > 20 and "rows of view omop_observation" in r.output
    assert [p.name for p in tmp_path.iterdir()] == ["obs.parquet"]


@pytest.mark.parametrize("where", ["missing/rows.csv", "."])
def test_fhir_view_refuses_an_out_under_a_missing_folder_or_a_folder_before_any_work(tmp_path: Path, where: str) -> None:
    target = tmp_path / where
    r = runner.invoke(app, ["fhir", "view", str(VIEWS / "person.json"), str(FIXTURES / "bundles"), "--out", str(target)])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    assert "does not exist" in r.output or "is a folder" in r.output
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- what the runner refuses


def test_an_unsupported_function_is_refused_naming_view_column_and_expression() -> None:
    view = {"name": "names", "resource": "Patient", "select": [{"column": [{"name": "n", "path": "name.descendants()"}]}]}
    with pytest.raises(ViewError) as e:
        compile_view(view)
    assert "view names" in str(e.value) and "column n" in str(e.value) and "name.descendants()" in str(e.value)


def test_repeat_is_refused_naming_the_view() -> None:
    view = {"name": "items", "resource": "Questionnaire", "select": [{"repeat": ["item"], "column": [{"name": "l", "path": "linkId"}]}]}
    with pytest.raises(ViewError, match="view items: 'repeat' is not supported"):
        compile_view(view)


def test_a_path_giving_two_values_in_a_single_column_is_an_error_naming_it(tmp_path: Path) -> None:
    view = {"name": "given", "resource": "Patient", "select": [{"column": [{"name": "g", "path": "name.given"}]}]}
    path = tmp_path / "p.ndjson"
    path.write_text(json.dumps({"resourceType": "Patient", "id": "x", "name": [{"given": ["A", "B"]}]}) + "\n")
    with pytest.raises(ViewError, match="column g: the path gives more than one value"):
        run_view(view, [path])


def test_a_path_reads_through_objects_and_into_each_item_of_a_list_whatever_the_shape(tmp_path: Path) -> None:
    # code.coding.code is read by one extraction of each resource when code is an object; where code (or coding)
    # is a list, FHIRPath steps into each item: both readings, a null and an absent element give what FHIRPath says
    view = {"name": "paths", "resource": "Observation", "select": [
        {"column": [{"name": "id", "path": "getResourceKey()"},
                    {"name": "codes", "path": "code.coding.code", "collection": True, "type": "code"},
                    {"name": "text", "path": "code.text", "type": "string"},
                    {"name": "unit", "path": "value.ofType(Quantity).unit", "type": "string"}]},
        {"forEachOrNull": "component",
         "column": [{"name": "part", "path": "code.coding.code", "collection": True, "type": "code"},
                    {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"}]}]}  # fmt: skip
    coding = {"system": "http://loinc.org", "code": "8480-6"}
    resources = [
        {"resourceType": "Observation", "id": "object", "code": {"coding": [coding, {"code": "271649006"}], "text": "SBP"},
         "valueQuantity": {"value": 120, "unit": "mm[Hg]"},
         "component": [{"code": {"coding": [coding]}, "valueQuantity": {"value": 80}}, {"code": {"text": "no coding"}}]},
        {"resourceType": "Observation", "id": "list", "code": [{"coding": [coding], "text": "a"}, {"coding": {"code": "x1"}}]},
        {"resourceType": "Observation", "id": "null", "code": None, "valueQuantity": None, "component": []},
        {"resourceType": "Observation", "id": "absent"},
    ]  # fmt: skip
    path = tmp_path / "Observation.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    rows = [(r["id"], r["codes"], r["text"], r["unit"], r["part"], r["value"]) for r in run_view(view, [path])]
    assert rows == [
        ("object", ["8480-6", "271649006"], "SBP", "mm[Hg]", ["8480-6"], 80.0),
        ("object", ["8480-6", "271649006"], "SBP", "mm[Hg]", [], None),
        ("list", ["8480-6", "x1"], "a", None, [], None),
        ("null", [], None, None, [], None),
        ("absent", [], None, None, [], None),
    ]
    # a wrong value deep in a path is still named with its element, by the same single reading
    bad = {"resourceType": "Observation", "id": "bad", "code": {"coding": [{"code": "8480-6 "}]}}
    path.write_text(json.dumps(bad) + "\n")
    con = duckdb.connect()
    load_resources(con, [path])
    checked = con.execute(f"SELECT _errors FROM ({compile_view(view, validate=True).sql('fhir_resources')})").fetchall()
    assert checked == [([{"element": "code.coding.code", "problem": '"8480-6 " is not a valid FHIR code'}],)]


# --------------------------------------------------------------------------- readings new with the views


def _obs(oid: str, **more: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final", "subject": SUBJECT,
            "effectiveDateTime": "2025-02-20T08:15:00-05:00", **more}  # fmt: skip


def test_a_result_given_only_as_an_interpretation_is_a_row_with_the_interpretation_as_its_value(tmp_path: Path) -> None:
    """A qualitative SARS-CoV-2 PCR reported as POS (v3-ObservationInterpretation) with no value[x]."""
    pos = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "POS"}]}
    path = _bundle(tmp_path, _obs("pcr", category=[{"coding": [{"code": "laboratory"}]}],
                                  code={"coding": [{"system": "http://loinc.org", "code": "94500-6"}]}, interpretation=[pos]))  # fmt: skip
    con, _ = _mapped(path)
    got = con.execute("""select m.value_source_value, c.vocabulary_id, c.concept_code from measurement m
                         join concept c on c.concept_id = m.value_as_concept_id""").fetchall()
    assert got == [("POS", "LOCAL", "POS")]


def test_a_panel_with_no_value_and_no_interpretation_still_makes_no_row(tmp_path: Path) -> None:
    path = _bundle(tmp_path, _obs("panel", category=[{"coding": [{"code": "laboratory"}]}],
                                  code={"coding": [{"system": "http://loinc.org", "code": "58410-2"}]}))  # fmt: skip
    con, _ = _mapped(path)
    assert con.execute("select count(*) from measurement").fetchone() == (0,)


def test_pulse_oximetry_components_share_the_readings_time_and_point_at_its_row(tmp_path: Path) -> None:
    """US Core pulse oximetry: SpO2 with its inhaled-oxygen flow (3151-8) and concentration (3150-0) components."""

    def q(v: float, unit: str) -> dict[str, Any]:
        return {"value": v, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}

    spo2 = _obs("ox", category=[{"coding": [{"code": "vital-signs"}]}],
                code={"coding": [{"system": "http://loinc.org", "code": "59408-5"}]}, valueQuantity=q(91, "%"),
                component=[{"code": {"coding": [{"system": "http://loinc.org", "code": "3151-8"}]}, "valueQuantity": q(2, "L/min")},
                           {"code": {"coding": [{"system": "http://loinc.org", "code": "3150-0"}]},
                            "valueQuantity": q(28, "%")}])  # fmt: skip
    con, _ = _mapped(_bundle(tmp_path, spo2))
    rows = con.execute("""select measurement_id, measurement_source_value, value_as_number, measurement_datetime,
                          measurement_event_id from measurement order by measurement_id""").fetchall()
    (main_id, _, _, when, main_event), *components = rows
    assert rows[0][1:3] == ("59408-5", 91.0) and main_event is None
    assert [(c[1], c[2]) for c in components] == [("3151-8", 2.0), ("3150-0", 28.0)]
    assert all(c[3] == when and c[4] == main_id for c in components)
    assert str(when) == "2025-02-20 08:15:00"


def test_blood_pressure_components_of_a_panel_without_its_own_value_point_at_nothing(tmp_path: Path) -> None:
    def bp(code: str, v: float) -> dict[str, Any]:
        return {"code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "valueQuantity": {"value": v, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}  # fmt: skip

    panel = _obs("bp", category=[{"coding": [{"code": "vital-signs"}]}],
                 code={"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
                 component=[bp("8480-6", 124), bp("8462-4", 78)])  # fmt: skip
    con, _ = _mapped(_bundle(tmp_path, panel))
    assert con.execute("select measurement_source_value, measurement_event_id from measurement order by 1").fetchall() == [
        ("8462-4", None),
        ("8480-6", None),
    ]


@pytest.mark.parametrize(("abatement", "end"), [
    ({"abatementDateTime": "2021-03-04"}, "2021-03-04"),
    ({"abatementPeriod": {"start": "2021-01-01", "end": "2021-02-01"}}, "2021-02-01"),
    ({"abatementPeriod": {"start": "2021-01-01"}}, "2021-01-01"),
    ({}, None),
])  # fmt: skip
def test_condition_end_date_comes_from_abatement(tmp_path: Path, abatement: dict[str, Any], end: str | None) -> None:
    cond = {"resourceType": "Condition", "id": "c", "subject": SUBJECT, "onsetDateTime": "2020-05-01",
            "clinicalStatus": {"coding": [{"code": "resolved"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "233703007"}]}, **abatement}  # fmt: skip
    con, _ = _mapped(_bundle(tmp_path, cond))
    got = con.execute("select cast(condition_end_date as varchar), condition_status_source_value from condition_occurrence").fetchall()
    assert got == [(end, "resolved")]


def test_a_duplicate_resource_id_is_left_out_as_its_message_says(tmp_path: Path) -> None:
    """Two Conditions with the same id in one Bundle: the first is used, the second is named and not used."""

    def cond(code: str) -> dict[str, Any]:
        return {"resourceType": "Condition", "id": "dup", "subject": SUBJECT, "onsetDateTime": "2020-05-01",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]}}  # fmt: skip

    con, report = _mapped(_bundle(tmp_path, cond("233703007"), cond("89155008")))
    assert con.execute("select condition_source_value from condition_occurrence").fetchall() == [("233703007",)]
    (p,) = report.problems
    assert p.resource_id == "dup" and "duplicate resource Condition/dup; the first one is used, this one is left out" in str(p)


def test_a_resource_whose_id_and_full_url_are_both_taken_is_named_once(tmp_path: Path) -> None:
    from datetime import date

    from tests.sources.referral import referral
    from trialdesk.eligibility.worksheet import check_fhir
    from trialdesk.protocol.loader import load

    first = {"resourceType": "Condition", "id": "twice", "onsetDateTime": "2020-05-01",
             "code": {"coding": [{"system": "http://snomed.info/sct", "code": "233703007"}]}}
    (sheet,) = check_fhir(referral(tmp_path, first, {**first, "onsetDateTime": "2021-05-01"}), load("nct03929120"),
                          date(2025, 3, 1))
    assert [p.split(": ", 2)[-1] for p in sheet.problems if "duplicate" in p] == [
        "duplicate resource Condition/twice, also as https://ehr.example.org/fhir/Condition/twice; the first one is used,"
        " this one is left out"]


@pytest.mark.parametrize("birth", ["1971-02-29", 1971])
def test_an_impossible_birth_date_keeps_the_patient_with_an_unknown_age_and_names_the_element(tmp_path: Path, birth: object) -> None:
    from trialdesk.eligibility.worksheet import check_fhir
    from trialdesk.protocol.loader import load

    path = tmp_path / "chart.json"
    patient = {**PATIENT, "birthDate": birth}
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient}]}))
    (sheet,) = check_fhir(path, load("nct03929120"), __import__("datetime").date(2025, 3, 1))
    assert sheet.patient == "p" and sheet.birth_date is None
    assert [c["status"] for c in sheet.criteria if c["id"] == "I1"] == ["unknown"]
    (problem,) = [p for p in sheet.problems if "birthDate" in p]
    assert "Patient/p: birthDate: fails FHIR R4 validation" in problem and "kept with an unknown age" in problem


def test_a_chart_with_only_a_patient_says_so_and_proves_no_absence(tmp_path: Path) -> None:
    """An empty chart is not evidence that the patient never had rituximab, a myocardial
    infarction or hepatitis: E2, E4 and E7 are unknown, not not_met, and the worksheet says why."""
    from datetime import date

    from trialdesk.eligibility.worksheet import NO_RECORDS, check_fhir
    from trialdesk.protocol.loader import load

    path = tmp_path / "patient_only.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": PATIENT}]}))
    (sheet,) = check_fhir(path, load("nct03929120"), date(2025, 3, 1))
    status = {c["id"]: c["status"] for c in sheet.criteria}
    # E4 also carries the investigator's clinical assessment, so it asks a person rather than being unknown
    assert (status["E2"], status["E4"], status["E7"]) == ("unknown", "needs_review", "unknown")
    assert sheet.overall == "needs_review" and NO_RECORDS in sheet.problems


def test_patient_check_refuses_an_out_under_a_missing_folder_before_reading(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "sheet.json"
    r = runner.invoke(app, ["patient", "check", str(FIXTURES / "bundles" / "ipaf.json"), "--as-of", "2025-03-01",
                            "--format", "json", "--out", str(target)])  # fmt: skip
    assert r.exit_code == 1 and "does not exist" in r.output and len(r.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    r = runner.invoke(app, ["patient", "check", str(FIXTURES / "bundles" / "ipaf.json"), "--as-of", "2025-03-01",
                            "--format", "json", "--out", str(tmp_path)])  # fmt: skip
    assert r.exit_code == 1 and "is a folder" in r.output and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("first", "second", "e8"), [(135, 21, "met"), (21, 135, "not_met")])
def test_a_duplicate_id_in_an_export_the_first_line_decides_as_the_message_says(
        tmp_path: Path, first: int, second: int, e8: str) -> None:
    """Two lines of a Bulk export with the same Observation id: the first line's ALT decides E8
    (ALT > 3 x ULN) whichever value it holds, and the worksheet names the second as left out."""
    from datetime import date

    from trialdesk.eligibility.worksheet import check_fhir
    from trialdesk.protocol.loader import load

    doc = json.loads((FIXTURES / "bundles" / "excl_alt_3x_uln.json").read_text())
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in doc["entry"]:
        r = entry["resource"]
        if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "1742-6":
            continue  # the chart's own ALTs are replaced by the two below
        by_type.setdefault(r["resourceType"], []).append(r)
    alt = next(e["resource"] for e in doc["entry"] if e["resource"].get("id") == "alt-3x-observation-52")
    by_type["Observation"] += [{**alt, "id": "alt-dup", "valueQuantity": {**alt["valueQuantity"], "value": v}}
                               for v in (first, second)]
    for rtype, rows in by_type.items():
        (tmp_path / f"{rtype}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (sheet,) = check_fhir(tmp_path, load("nct03929120"), date(2025, 3, 1))
    (criterion,) = [c for c in sheet.criteria if c["id"] == "E8"]
    assert criterion["status"] == e8
    cited = [e["value"] for e in criterion["evidence"] if e.get("resource") == "Observation/alt-dup"]
    assert cited == [first] if e8 == "met" else second not in cited
    line = len(by_type["Observation"])  # the duplicate is the file's last line
    (problem,) = [p for p in sheet.problems if "duplicate" in p]
    assert problem == (f"{tmp_path / 'Observation.ndjson'}:{line}: Observation/alt-dup: duplicate resource "
                       "Observation/alt-dup; the first one is used, this one is left out")


# --------------------------------------------------------------------------- the structure check in slices


def test_the_structure_check_in_slices_of_resources_names_what_one_statement_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A Bulk export whose malformed Observations are spread among good ones (a misspelt value, a
    missing code, two types of one value, a misspelling and a missing code on one line): the
    structure check run one resource at a time, or two, or three, names the same resources and
    elements, in the same order, and keeps the same records, as one statement over the export."""
    from trialdesk.sources.fhir_views import load as fhir_load

    good = {"resourceType": "Observation", "status": "final", "subject": SUBJECT,
            "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]}, "effectiveDateTime": "2024-11-02",
            "valueQuantity": {"value": 30, "unit": "U/L", "system": "http://unitsofmeasure.org", "code": "U/L"}}  # fmt: skip
    no_code = {k: v for k, v in good.items() if k != "code"}
    lines = [PATIENT, {**good, "id": "ok-1"}, {**good, "id": "misspelt", "valueQuantty": good["valueQuantity"]},
             {**good, "id": "ok-2"}, {**no_code, "id": "no-code"}, {**good, "id": "ok-3"}, {**good, "id": "ok-4"},
             {**good, "id": "two-values", "valueString": "30 U/L"},
             {**no_code, "id": "misspelt-no-code", "statuss": "final"}, {**good, "id": "ok-5"}]  # fmt: skip
    (tmp_path / "Patient.ndjson").write_text(json.dumps(lines[0]) + "\n")
    path = tmp_path / "Observation.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines[1:]))

    def checked(size: int) -> tuple[list[tuple[Any, ...]], list[str]]:
        monkeypatch.setattr(fhir_load, "STRUCTURE_SLICE", size)
        con = duckdb.connect()
        reading = fhir_load.load_fhir(con, [tmp_path])
        kept = [r[0] for r in con.execute("SELECT resource ->> 'id' FROM fhir_resources ORDER BY ord").fetchall()]
        return [(p.file, p.line, p.resource_id, p.field, p.message) for p in reading.problems], kept

    whole = checked(1_000_000)
    assert [(line, rid, field) for _, line, rid, field, _ in whole[0]] == [
        (2, "misspelt", "valueQuantty"), (4, "no-code", "code"), (7, "two-values", "value[x]"),
        (8, "misspelt-no-code", "code"), (8, "misspelt-no-code", "statuss")]  # fmt: skip
    assert "only one type of value[x] may be given, not valueQuantity and valueString" in whole[0][2][4]
    assert whole[1] == ["ok-1", "ok-2", "ok-3", "ok-4", "ok-5", "p"]  # the files in name order
    for size in (1, 2, 3):
        assert checked(size) == whole, size

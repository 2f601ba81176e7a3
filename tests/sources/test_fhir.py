"""FHIR R4 charts read and mapped into OMOP-shaped tables (fixtures: tests/fixtures/fhir, as_of 2025-03-01)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from trialdesk.sources.fhir import FhirError, FhirReading, map_to_omop, read_fhir
from trialdesk.sources.fhir_omop import LOCAL_CONCEPT_BASE, OMOP_SCHEMA, MappingReport

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fhir"
BUNDLES = FIXTURES / "bundles"
BAD = FIXTURES / "bad"


def mapped(path: Path) -> tuple[duckdb.DuckDBPyConnection, MappingReport, FhirReading]:
    reading = read_fhir(path)
    con = duckdb.connect()
    return con, map_to_omop(reading, con), reading


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    return con.execute(sql).fetchall()


def measurements(con: duckdb.DuckDBPyConnection, loinc: str) -> list[tuple[object, ...]]:
    return rows(
        con,
        f"""select measurement_date, value_as_number, unit_source_value, range_low, range_high
                         from measurement where measurement_source_value = '{loinc}' order by measurement_date""",
    )


def drugs(con: duckdb.DuckDBPyConnection, rxnorm: str) -> list[tuple[object, ...]]:
    return rows(
        con,
        f"""select drug_exposure_start_date, drug_exposure_end_date, drug_type_concept_id from drug_exposure
                         where drug_source_value = '{rxnorm}' order by 1, 3""",
    )


# --------------------------------------------------------------------------- fixtures are current


def test_fixtures_are_what_make_bundles_writes(tmp_path: Path) -> None:
    copy = tmp_path / "fhir"
    shutil.copytree(FIXTURES, copy)
    subprocess.run([sys.executable, str(copy / "make_bundles.py")], check=True, capture_output=True)
    for f in sorted(FIXTURES.rglob("*.json")) + sorted(FIXTURES.rglob("*.ndjson")):
        assert (copy / f.relative_to(FIXTURES)).read_bytes() == f.read_bytes(), f"{f} is stale: run make_bundles.py"


@pytest.mark.parametrize("bundle", sorted(BUNDLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_chart_reads_without_problems_and_holds_20_to_200_resources(bundle: Path) -> None:
    _, report, reading = mapped(bundle)
    assert reading.problems == [] and report.problems == []
    assert 20 <= len(json.loads(bundle.read_text())["entry"]) <= 200
    assert len(report.persons) == 1


# --------------------------------------------------------------------------- the SSc chart, row by row


def test_ssc_lung_involvement_is_a_condition_row_with_its_icd10cm_code_and_onset() -> None:
    con, _, _ = mapped(BUNDLES / "ssc_ild_new.json")
    got = rows(
        con,
        """select condition_start_date, c.vocabulary_id, c.concept_code, condition_status_source_value
                       from condition_occurrence co join concept c on c.concept_id = co.condition_concept_id
                       where condition_source_value = 'M34.81'""",
    )
    assert got == [(dt.date(2025, 1, 20), "SNOMED", "233703007", "active")]


def test_condition_in_snomed_and_icd10cm_is_found_by_either() -> None:
    con, _, _ = mapped(BUNDLES / "ssc_ild_new.json")
    (cid, source_cid), *_ = rows(
        con,
        """select condition_concept_id, condition_source_concept_id from condition_occurrence
                                      where condition_source_value = 'M34.81'""",
    )
    concepts = dict(rows(con, f"select vocabulary_id, concept_code from concept where concept_id in ({cid}, {source_cid})"))
    assert concepts == {"SNOMED": "233703007", "ICD10CM": "M34.81"}
    codings = rows(
        con,
        """select vocabulary_id, concept_code from fhir_coding f join condition_occurrence c
                           on f.table_name = 'condition_occurrence' and f.record_id = c.condition_occurrence_id
                           where condition_source_value = 'M34.81' order by 1""",
    )
    assert codings == [("ICD10CM", "M34.81"), ("SNOMED", "233703007")]


def test_creatinine_reference_range_sent_in_umol_per_l_is_written_in_the_values_mg_per_dl() -> None:
    con, _, _ = mapped(BUNDLES / "ssc_ild_new.json")
    screening = measurements(con, "2160-0")[-1]
    assert screening == (dt.date(2025, 2, 17), 0.8, "mg/dL", pytest.approx(0.59943), pytest.approx(1.04052))


def test_lab_unit_spelled_10_caret_3_per_ul_is_written_as_ucum() -> None:
    con, _, _ = mapped(BUNDLES / "ra_ild_established.json")
    assert measurements(con, "777-3")[-1] == (dt.date(2025, 2, 14), 212.0, "10*3/uL", 135.0, 317.0)


def test_cbc_creatinine_ast_alt_at_screening_carry_their_reference_ranges() -> None:
    con, _, _ = mapped(BUNDLES / "ssc_ild_new.json")
    latest = rows(
        con,
        """select measurement_source_value, value_as_number, range_low, range_high from measurement
                          where measurement_date = date '2025-02-17' and measurement_source_value
                          in ('718-7', '6690-2', '751-8', '777-3', '1920-8', '1742-6') order by 1""",
    )
    assert latest == [("1742-6", 21.0, 7.0, 45.0), ("1920-8", 24.0, 8.0, 43.0), ("6690-2", 6.2, 3.4, 9.6),
                      ("718-7", 12.9, 11.6, 15.0), ("751-8", 3.9, 1.56, 6.45), ("777-3", 248.0, 157.0, 371.0)]  # fmt: skip


def test_spo2_86_at_rest_is_a_measurement_in_percent() -> None:
    con, _, _ = mapped(BUNDLES / "excl_spo2_86.json")
    assert measurements(con, "2708-6")[-1] == (dt.date(2025, 2, 18), 86.0, "%", None, None)
    both = rows(
        con,
        """select distinct concept_code from fhir_coding f join measurement m on f.table_name = 'measurement'
                        and f.record_id = m.measurement_id where m.value_as_number = 86 order by 1""",
    )
    assert both == [("2708-6",), ("59408-5",)]


def test_pfts_are_percent_predicted_measurements() -> None:
    con, _, _ = mapped(BUNDLES / "ssc_ild_new.json")
    assert measurements(con, "19872-1") == [(dt.date(2025, 1, 21), 71.0, "%", None, None)]
    assert measurements(con, "98130-8") == [(dt.date(2025, 1, 21), 52.0, "%", None, None)]


def test_blood_pressure_components_are_rows_of_their_own() -> None:
    con, _, _ = mapped(BUNDLES / "ssc_ild_new.json")
    assert measurements(con, "8480-6")[0][1:3] == (124.0, "mm[Hg]")
    assert measurements(con, "85354-9") == []


def test_hcg_below_detection_keeps_its_comparator() -> None:
    con, _, _ = mapped(BUNDLES / "ssc_ild_new.json")
    assert rows(con, "select value_as_number, operator_concept_id, unit_source_value from measurement "
                     "where measurement_source_value = '21198-7'") == [(2.0, 4171756, "m[IU]/mL")]  # fmt: skip


def test_positive_pregnancy_test_and_pregnancy_status() -> None:
    con, _, _ = mapped(BUNDLES / "excl_pregnancy_positive.json")
    assert measurements(con, "21198-7") == [(dt.date(2025, 2, 24), 1850.0, "m[IU]/mL", None, 5.0)]
    urine = rows(
        con,
        """select c.concept_code, m.value_source_value from measurement m join concept c
                         on c.concept_id = m.value_as_concept_id where measurement_source_value = '2106-3'""",
    )
    assert urine == [("10828004", "10828004")]
    status = rows(
        con,
        """select observation_date, observation_source_value, c.vocabulary_id, c.concept_code from observation o
                          join concept c on c.concept_id = o.value_as_concept_id""",
    )
    assert status == [(dt.date(2025, 2, 24), "82810-3", "SNOMED", "77386006")]


# --------------------------------------------------------------------------- drugs


def test_rituximab_30_days_before_as_of_starts_on_its_infusion_day() -> None:
    con, _, _ = mapped(BUNDLES / "excl_rituximab_30_days.json")
    assert drugs(con, "121191") == [
        (dt.date(2025, 1, 16), dt.date(2025, 1, 16), 32818),  # first infusion (administration)
        (dt.date(2025, 1, 16), dt.date(2025, 1, 30), 32838),  # the order, days 1 and 15
        (dt.date(2025, 1, 30), dt.date(2025, 1, 30), 32818),  # second infusion, 30 days before 2025-03-01
    ]


@pytest.mark.parametrize(("bundle", "last"), [("boundary_rituximab_window_first_day", dt.date(2025, 1, 1)),
                                              ("boundary_rituximab_day_before_window", dt.date(2024, 12, 31))])  # fmt: skip
def test_rituximab_boundary_charts_end_exposure_on_the_intended_day(bundle: str, last: dt.date) -> None:
    con, _, _ = mapped(BUNDLES / f"{bundle}.json")
    assert max(end for _, end, _ in drugs(con, "121191")) == last  # type: ignore[type-var]


def test_mycophenolate_for_a_year_spans_from_first_order_to_last_supply() -> None:
    con, _, _ = mapped(BUNDLES / "ra_ild_established.json")
    exposures = drugs(con, "68149")
    assert len(exposures) == 5
    assert exposures[0][0] == dt.date(2024, 2, 26) and exposures[-1] == (dt.date(2025, 2, 15), dt.date(2025, 5, 15), 32838)


def test_active_medication_statement_runs_to_the_date_asserted() -> None:
    con, _, _ = mapped(BUNDLES / "ra_ild_established.json")
    assert (dt.date(2016, 9, 1), dt.date(2025, 2, 19), 32865) in drugs(con, "5521")


# --------------------------------------------------------------------------- person and observed time


@pytest.mark.parametrize(("bundle", "birth", "gender"), [("boundary_age_18_today", (2007, 3, 1), 8532),
                                                         ("boundary_age_80_today", (1945, 3, 1), 8507)])  # fmt: skip
def test_person_birth_date_and_gender(bundle: str, birth: tuple[int, int, int], gender: int) -> None:
    con, report, _ = mapped(BUNDLES / f"{bundle}.json")
    got = rows(con, "select year_of_birth, month_of_birth, day_of_birth, birth_datetime, gender_concept_id, person_source_value "
                    "from person")  # fmt: skip
    assert got == [(*birth, dt.datetime(*birth), gender, report.persons[0].patient_id)]


def test_observation_period_spans_first_to_last_dated_record() -> None:
    con, _, _ = mapped(BUNDLES / "ssc_ild_new.json")
    first = rows(con, "select min(d) from (select condition_start_date d from condition_occurrence union all "
                      "select drug_exposure_start_date from drug_exposure union all select measurement_date from measurement)")  # fmt: skip
    period = rows(con, "select observation_period_start_date, observation_period_end_date from observation_period")
    assert period == [(first[0][0], dt.date(2025, 8, 31))]  # the last nifedipine supply runs to the end of August


def test_tables_have_the_omop_v54_columns_and_types() -> None:
    con, _, _ = mapped(BUNDLES / "ssc_ild_new.json")
    duck = {"int32": "INTEGER", "int64": "BIGINT", "date32[day]": "DATE", "timestamp[us]": "TIMESTAMP", "string": "VARCHAR",
            "double": "DOUBLE"}  # fmt: skip
    for table, columns in OMOP_SCHEMA.items():
        described = [(r[0], r[1]) for r in rows(con, f"describe {table}")]
        assert described == [(name, duck[str(typ)]) for name, typ in columns], table
    assert rows(con, "select count(*) from concept_ancestor") == [(0,)]
    assert rows(con, f"select count(*) from concept where concept_id < {LOCAL_CONCEPT_BASE}") == [(0,)]


def test_every_row_links_back_to_its_fhir_resource() -> None:
    con, _, _ = mapped(BUNDLES / "excl_spo2_86.json")
    (rid, file, line, code, display), *_ = rows(
        con,
        """select resource_id, file, line, code, display from fhir_record f
        join measurement m on f.table_name = 'measurement' and f.record_id = m.measurement_id
        where m.value_as_number = 86 and m.measurement_source_value = '2708-6'""",
    )
    assert file.endswith("excl_spo2_86.json") and line is None and code == "2708-6"
    assert display == "Oxygen saturation in Arterial blood" and rid.startswith("spo2-86-observation-")
    counts = rows(con, "select table_name, count(*) from fhir_record group by 1 order by 1")
    for table, n in counts:
        assert rows(con, f"select count(*) from {table}") == [(n,)]


def test_concept_ids_are_the_same_in_every_run() -> None:
    a, _, _ = mapped(BUNDLES / "ssc_ild_new.json")
    b, _, _ = mapped(BUNDLES)
    sql = "select concept_id from concept where vocabulary_id = 'LOINC' and concept_code = '1742-6'"
    assert rows(a, sql) == rows(b, sql)


def test_urn_uuid_references_resolve() -> None:
    con, report, _ = mapped(BUNDLES / "anca_gpa_ild.json")
    assert report.problems == []
    assert rows(con, "select count(*) from condition_occurrence where condition_source_value = 'M31.31'") == [(1,)]


# --------------------------------------------------------------------------- Bulk export and batches


def test_bulk_export_with_manifest_maps_like_the_bundle() -> None:
    from_export, report, reading = mapped(FIXTURES / "export_ssc_ild_new")
    from_bundle, _, _ = mapped(BUNDLES / "ssc_ild_new.json")
    assert report.problems == [] and len(reading.files) == 7
    for table in ("condition_occurrence", "drug_exposure", "measurement", "procedure_occurrence", "observation_period"):
        cols = ", ".join(name for name, _ in OMOP_SCHEMA[table][1:])
        sql = f"select {cols} from {table} order by all"
        assert rows(from_export, sql) == rows(from_bundle, sql)
    lines = rows(from_export, "select file, line from fhir_record where resource_type = 'Patient'")
    assert lines[0][0].endswith("Patient.ndjson") and lines[0][1] == 1


def test_bulk_export_without_manifest_reads_every_ndjson_file() -> None:
    _, report, reading = mapped(FIXTURES / "export_ra_ild_no_manifest")
    assert report.problems == [] and len(report.persons) == 1 and len(reading.files) == 7


def test_ndjson_problems_name_the_file_and_line() -> None:
    con, report, _ = mapped(FIXTURES / "export_bad_lines")
    found = {(Path(p.file).name, p.line, p.field) for p in report.problems}
    assert ("Observation.ndjson", 3, None) in found
    assert ("Observation.ndjson", 5, "valueQuantity.value") in found
    assert len(report.problems) == 2 and "not JSON" in str(report.problems[0])
    assert report.problems_for(1) == report.problems
    assert rows(con, "select count(*) from person") == [(1,)]


def test_folder_of_bundles_is_one_batch_of_patients() -> None:
    _, report, _ = mapped(BUNDLES)
    assert len(report.persons) == len(list(BUNDLES.glob("*.json")))
    assert [p.person_id for p in report.persons] == list(range(1, len(report.persons) + 1))


def test_two_hundred_copies_of_a_bundle_are_two_hundred_patients(tmp_path: Path) -> None:
    text = (BUNDLES / "ssc_ild_new.json").read_text()
    for i in range(200):
        (tmp_path / f"referral_{i:03d}.json").write_text(text)
    con, report, _ = mapped(tmp_path)
    assert len(report.persons) == 200 and report.problems == []
    assert rows(con, "select count(distinct person_id), count(*) from condition_occurrence") == [(200, 200 * 4)]
    assert rows(con, "select count(*) from fhir_record where table_name = 'person'") == [(200,)]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("name", "says"), [
    ("not_json.json", "not JSON (line 1, column 1"),
    ("not_fhir.json", "JSON but not FHIR"),
    ("stu3_condition.json", "looks like FHIR STU3"),
    ("dstu2_medication_order.json", "MedicationOrder is a FHIR DSTU2 resource type"),
    ("stu3_capability_statement.json", "declares fhirVersion 3.0.2"),
])  # fmt: skip
def test_unreadable_input_raises_one_line_error_naming_the_file(name: str, says: str) -> None:
    with pytest.raises(FhirError) as e:
        read_fhir(BAD / name)
    message = str(e.value)
    assert message.startswith(str(BAD / name)) and says in message and "\n" not in message


def test_missing_input_and_empty_folder_are_errors(tmp_path: Path) -> None:
    with pytest.raises(FhirError, match="no such file"):
        read_fhir(tmp_path / "nothing.json")
    with pytest.raises(FhirError, match="no FHIR files"):
        read_fhir(tmp_path)


def test_unreadable_file_in_a_folder_can_be_skipped_and_named(tmp_path: Path) -> None:
    shutil.copy(BUNDLES / "ipaf.json", tmp_path / "a.json")
    shutil.copy(BAD / "not_json.json", tmp_path / "b.json")
    with pytest.raises(FhirError):
        read_fhir(tmp_path)
    reading = read_fhir(tmp_path, skip_unreadable=True)
    assert len(reading.problems) == 1 and reading.problems[0].file == str(tmp_path / "b.json")
    assert sum(r.resource_type == "Patient" for r in reading.records) == 1


def test_resource_failing_validation_is_dropped_and_named() -> None:
    con, report, _ = mapped(BAD / "invalid_resource.json")
    (p,) = report.problems
    assert (p.resource_type, p.resource_id, p.field) == ("Observation", "bad-alt-invalid", "valueQuantity.value")
    assert "fails FHIR R4 validation" in p.message and p.subject == "Patient/bad-1"
    assert rows(con, "select count(*) from measurement") == [(1,)]
    assert report.problems_for(1) == [p]


def test_unconvertible_units_drop_the_range_or_the_value_and_are_named() -> None:
    con, report, _ = mapped(BAD / "unconvertible_unit.json")
    named = {(p.resource_id, p.field) for p in report.problems}
    assert named == {("bad-creat-range", "referenceRange[0].low"), ("bad-ast-unit", "valueQuantity.unit")}
    assert measurements(con, "2160-0") == [(dt.date(2025, 2, 26), 0.9, "mg/dL", None, None)]
    assert measurements(con, "1920-8") == []
    assert "mmol/mol cannot be converted to the value's unit mg/dL" in str(report.problems[0])


def test_reference_to_a_missing_patient_drops_the_record_and_names_it() -> None:
    con, report, _ = mapped(BAD / "missing_patient.json")
    (p,) = report.problems
    assert (p.resource_type, p.resource_id, p.field) == ("Condition", "bad-orphan", "subject")
    assert "Patient/not-in-this-bundle" in p.message
    assert rows(con, "select count(*) from condition_occurrence") == [(0,)]


def test_resource_types_trialdesk_does_not_use_are_passed_over(tmp_path: Path) -> None:
    doc = json.loads((BUNDLES / "ipaf.json").read_text())
    doc["entry"].append({"resource": {"resourceType": "Immunization", "id": "flu", "status": "completed",
                                      "vaccineCode": {"text": "influenza"}, "patient": {"reference": "Patient/ipaf-patient"},
                                      "occurrenceDateTime": "2024-10-01"}})  # fmt: skip
    doc["entry"].append({"resource": {"resourceType": "DiagnosticReport", "id": "x", "status": "final", "code": {"text": "CBC"}}})
    (tmp_path / "b.json").write_text(json.dumps(doc))
    reading = read_fhir(tmp_path / "b.json")
    assert reading.problems == [] and reading.skipped_types == {"Immunization": 1, "DiagnosticReport": 1}


def test_entered_in_error_records_are_left_out_and_counted(tmp_path: Path) -> None:
    doc = json.loads((BUNDLES / "ipaf.json").read_text())
    for e in doc["entry"]:
        if e["resource"]["resourceType"] == "Procedure":
            e["resource"]["status"] = "entered-in-error"
    (tmp_path / "b.json").write_text(json.dumps(doc))
    con, report, _ = mapped(tmp_path / "b.json")
    assert rows(con, "select count(*) from procedure_occurrence") == [(0,)]
    assert report.excluded == {"Procedure status entered-in-error": 2}


def test_a_status_fhir_r4_does_not_allow_leaves_the_record_out_and_names_it(tmp_path: Path) -> None:
    # "not-done" is a MedicationAdministration status, not a MedicationRequest one: what the prescriber meant
    # is not known, so the order is not read as a prescription (nor silently as none); a valid status is read
    doc = json.loads((BUNDLES / "ra_ild_established.json").read_text())
    orders = [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "MedicationRequest"
              and any(c.get("code") == "68149" for c in e["resource"].get("medicationCodeableConcept", {}).get("coding", []))]
    assert len(orders) == 5 and all(o["status"] in ("active", "completed") for o in orders)
    orders[0]["status"] = "not-done"
    orders[1]["status"] = "on-hold"  # allowed: still read
    (tmp_path / "b.json").write_text(json.dumps(doc))
    con, report, _ = mapped(tmp_path / "b.json")
    assert len(drugs(con, "68149")) == 4
    named = [p for p in report.problems if p.resource_id == orders[0]["id"]]
    assert len(named) == 1 and named[0].field == "status"
    assert "'not-done' is not a code FHIR R4 allows in MedicationRequest.status; the record is not used" in named[0].message
    assert "use one of: active, cancelled, completed, draft, entered-in-error, on-hold, stopped, unknown" in named[0].message
    assert not [p for p in report.problems if p.resource_id == orders[1]["id"]]
    assert report.excluded == {"MedicationRequest status not-done (not an R4 code)": 1}


def test_an_observation_status_fhir_r4_does_not_allow_is_named_and_not_read(tmp_path: Path) -> None:
    def read(con: duckdb.DuckDBPyConnection) -> int:
        return int(rows(con, "select (select count(*) from measurement) + (select count(*) from observation)")[0][0])

    doc = json.loads((BUNDLES / "ipaf.json").read_text())
    observations = [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Observation"]
    as_given = read(mapped(BUNDLES / "ipaf.json")[0])
    observations[0]["status"] = "done"  # not an Observation status (final, amended, corrected, preliminary… are)
    (tmp_path / "b.json").write_text(json.dumps(doc))
    con, report, _ = mapped(tmp_path / "b.json")
    assert [p.field for p in report.problems if p.resource_id == observations[0]["id"]] == ["status"]
    assert read(con) < as_given


def test_a_large_record_keeps_every_valid_record_and_names_the_bad_ones(tmp_path: Path) -> None:
    entries = [{"resource": {"resourceType": "Patient", "id": "big", "gender": "female", "birthDate": "1970-01-01"}}]
    for i in range(5050):
        value: object = "thirty" if i in (7, 301) else 90 + i % 10  # two SpO2 values that are not numbers
        entries.append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": f"spo2-{i}",
                    "status": "final",
                    "subject": {"reference": "Patient/big"},
                    "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
                    "effectiveDateTime": (dt.date(2024, 1, 1) + dt.timedelta(days=i % 300)).isoformat(),
                    "valueQuantity": {"value": value, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
                }
            }
        )
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    reading = read_fhir(path)
    assert len(reading.records) == len(entries) - 2
    assert [(p.resource_id, p.field) for p in reading.problems] == [("spo2-7", "valueQuantity.value"),
                                                                    ("spo2-301", "valueQuantity.value")]  # fmt: skip


# --------------------------------------------------------------------------- what is validated


def test_every_view_column_reading_a_primitive_declares_its_fhir_type_so_its_value_is_checked() -> None:
    """A column without a type is a complex element (a coding list, a Quantity) the SQL after the views reads part by part."""
    views = Path(__file__).resolve().parents[2] / "src" / "trialdesk" / "sources" / "fhir_views" / "omop"
    untyped: set[str] = set()

    def walk(select: dict[str, object]) -> None:
        for col in select.get("column") or []:  # type: ignore[attr-defined]
            if "type" not in col:
                untyped.add(col["name"])
        for key in ("select", "unionAll"):
            for sub in select.get(key) or []:  # type: ignore[attr-defined]
                walk(sub)

    for f in views.glob("*.json"):
        walk({"select": json.loads(f.read_text())["select"]})
    assert untyped == {"codings", "contained", "med_codings", "value_codings", "interpretation_codings", "ranges", "quantity",
                       "dose", "supply_duration", "bounds_durations", "bounds_starts", "bounds_ends"}  # fmt: skip


def test_the_elements_read_are_validated_the_same_by_default_and_in_full(tmp_path: Path) -> None:
    """A value that is not a number and a date with month 13 fail either way: the resource is
    dropped and named by file, line, resource and element."""
    good = {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]},
            "effectiveDateTime": "2024-11-02", "valueQuantity": {"value": 30, "unit": "U/L"}}  # fmt: skip
    lines = [
        {"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01"},
        {**good, "id": "alt-ok"},
        {**good, "id": "alt-abc", "valueQuantity": {"value": "abc", "unit": "U/L"}},
        {**good, "id": "alt-month-13", "effectiveDateTime": "2024-13-45"},
        {**good, "id": "alt-bad-category-1", "category": [{"coding": [{"code": 5}]}]},
        {**good, "id": "alt-ok-2"},
        {**good, "id": "alt-bad-category-2", "category": [{"coding": [{"code": 5}]}]},
    ]
    path = tmp_path / "Observation.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    for validate in ("read", "full"):
        reading = read_fhir(path, validate=validate)  # type: ignore[arg-type]
        assert [r.id for r in reading.records] == ["p", "alt-ok", "alt-ok-2"]
        named = [(p.file, p.line, p.resource_id, p.field) for p in reading.problems]
        if validate == "full":  # the R4 JSON Schema names the element by its place in the resource
            named = [(f, ln, i, (fl or "").replace(".0.", ".")) for f, ln, i, fl in named]
        assert named == [(str(path), 3, "alt-abc", "valueQuantity.value"), (str(path), 4, "alt-month-13", "effectiveDateTime"),
                         (str(path), 5, "alt-bad-category-1", "category.coding.code"),
                         (str(path), 7, "alt-bad-category-2", "category.coding.code")]  # fmt: skip
        assert all("fails FHIR R4 validation" in p.message for p in reading.problems)


def test_an_element_not_read_is_validated_only_in_full(tmp_path: Path) -> None:
    """A narrative whose status is a number: the mapping never reads ``text``, so by default
    the ALT is kept; ``validate="full"`` drops it and names text.status. An element R4 does
    not define fails either way, and so does a missing element R4 requires."""
    doc = json.loads((BAD / "invalid_resource.json").read_text())
    (alt,) = [e["resource"] for e in doc["entry"] if e["resource"]["id"] == "bad-alt"]
    alt["text"] = {"status": 12, "div": '<div xmlns="http://www.w3.org/1999/xhtml">ALT 30 U/L</div>'}
    doc["entry"] = [e for e in doc["entry"] if e["resource"]["id"] != "bad-alt-invalid"]
    misspelt = {**alt, "id": "alt-misspelt", "valueQuantty": alt["valueQuantity"]}
    no_code = {k: v for k, v in alt.items() if k != "code"} | {"id": "alt-no-code"}
    doc["entry"] += [{"resource": misspelt}, {"resource": no_code}]
    path = tmp_path / "narrative.json"
    path.write_text(json.dumps(doc))

    default = read_fhir(path)
    assert [r.id for r in default.records] == ["bad-1", "bad-alt"]
    assert {(p.resource_id, p.field) for p in default.problems} == {("alt-misspelt", "valueQuantty"), ("alt-no-code", "code")}

    full = read_fhir(path, validate="full")
    assert [r.id for r in full.records] == ["bad-1"]
    assert ("bad-alt", "text.status") in {(p.resource_id, p.field) for p in full.problems}


def test_every_test_chart_reads_the_same_records_by_default_and_in_full() -> None:
    for source in (BUNDLES, FIXTURES / "export_ssc_ild_new", FIXTURES / "export_bad_lines", BAD / "invalid_resource.json"):
        default, full = read_fhir(source), read_fhir(source, validate="full")
        assert [(r.file, r.id) for r in default.records] == [(r.file, r.id) for r in full.records]
        assert [(p.file, p.line, p.resource_id, p.field) for p in default.problems] == [
            (p.file, p.line, p.resource_id, p.field) for p in full.problems
        ]


def test_two_types_of_one_value_and_a_missing_code_are_refused_by_default_and_a_bad_sampled_value_in_full(tmp_path: Path) -> None:
    """The rules of R4 a view's values alone do not show: one type only for a value[x], the
    elements R4 requires; a sampled-data value (never read) missing its origin fails in full only."""
    base = {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]}, "effectiveDateTime": "2024-11-02",
            "valueQuantity": {"value": 95, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}  # fmt: skip
    sampled = {"origin": {"value": 0}, "period": 1, "dimensions": 1, "data": "95 96"}
    no_value = {k: v for k, v in base.items() if k != "valueQuantity"}
    lines = [
        {"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01"},
        {**base, "id": "o-1"},
        {**base, "id": "o-two-values", "valueString": "95 %"},
        {k: v for k, v in base.items() if k != "code"} | {"id": "o-no-code"},
        {**no_value, "id": "o-sampled", "valueSampledData": sampled},
        {**no_value, "id": "o-sampled-bad", "valueSampledData": {k: v for k, v in sampled.items() if k != "origin"}},
    ]  # fmt: skip
    path = tmp_path / "Observation.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    default, full = read_fhir(path), read_fhir(path, validate="full")
    assert [r.id for r in default.records] == ["p", "o-1", "o-sampled", "o-sampled-bad"]
    assert [(p.resource_id, p.field) for p in default.problems] == [("o-two-values", "value[x]"), ("o-no-code", "code")]
    assert "only one type of value[x]" in default.problems[0].message
    assert [r.id for r in full.records] == ["p", "o-1", "o-sampled"]
    assert {p.resource_id for p in full.problems} == {"o-two-values", "o-no-code", "o-sampled-bad"}

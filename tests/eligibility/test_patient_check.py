"""``trialdesk patient check``: referred patients' FHIR R4 charts screened against NCT03929120.

Every chart in tests/fixtures/fhir/bundles is screened once, in one batch, as of 2025-03-01
(the planned first infusion is 14 days later, 2025-03-15). The expected statuses are the table
in tests/fixtures/fhir/README.md; a variant chart ("`ssc_ild_new` with SpO2 86 %") expects
what its base chart expects, except for the criteria its own row names.
"""

from __future__ import annotations

import html
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trialdesk.cli import app
from trialdesk.eligibility.worksheet import Worksheet, check_fhir
from trialdesk.protocol.loader import load

AS_OF = date(2025, 3, 1)
FHIR = Path(__file__).resolve().parents[1] / "fixtures" / "fhir"
BUNDLES = FHIR / "bundles"
BAD = FHIR / "bad"
IDS = ["I1", "I2", "I3", "I4", *[f"E{i}" for i in range(1, 12)]]
MET, NOT, NR, UNK = "met", "not_met", "needs_review", "unknown"

runner = CliRunner()

# "in every chart I2 is met, I4, E5, E10 and E11 are needs_review (attestations), E4 and E6 are
# needs_review (the investigator's clinical assessment) unless their records part is met, E7 is not_met unless listed"
EVERY_CHART = {"I2": MET, "I4": NR, "E4": NR, "E5": NR, "E6": NR, "E7": NOT, "E10": NR, "E11": NR}

# chart: (its base chart, what its README row says)
README: dict[str, tuple[str | None, dict[str, str]]] = {
    "ssc_ild_new": (None, {"I1": MET, "I3": MET, "E1": NOT, "E2": NOT, "E3": NOT, "E8": NOT, "E9": NOT}),
    "ra_ild_established": (None, {"I1": MET, "I3": NR, "E1": NOT, "E2": NOT, "E3": NOT, "E8": NOT, "E9": NOT}),
    "myositis_ild_antisynthetase": (None, {"I1": MET, "I3": MET, "E1": NOT, "E2": NOT, "E3": NOT, "E8": NOT, "E9": NOT}),
    "anca_gpa_ild": (None, {"I1": MET, "I3": MET, "E1": NOT, "E2": NOT, "E3": NOT, "E8": NOT, "E9": NOT}),
    "ipaf": (None, {"I1": MET, "I3": NR, "E1": NR, "E2": NOT, "E3": NOT, "E8": NOT, "E9": UNK}),
    "excl_rituximab_30_days": ("ssc_ild_new", {"E2": MET}),
    "excl_spo2_86": ("ssc_ild_new", {"E3": MET}),
    "excl_alt_3x_uln": ("ssc_ild_new", {"E8": MET}),
    "excl_hepatitis_c": ("ssc_ild_new", {"E7": MET}),
    "excl_mi_4_months": ("ra_ild_established", {"E6": MET}),
    "excl_pregnancy_positive": ("myositis_ild_antisynthetase", {"E9": MET}),
    "boundary_spo2_88": ("ssc_ild_new", {"E3": NOT}),
    "boundary_alt_at_uln": ("ssc_ild_new", {"E8": NOT}),
    "boundary_rituximab_window_first_day": ("ssc_ild_new", {"E2": MET}),
    "boundary_rituximab_day_before_window": ("ssc_ild_new", {"E2": NOT}),
    "boundary_age_18_today": ("myositis_ild_antisynthetase", {"I1": MET}),
    "boundary_age_17_turns_18_tomorrow": ("myositis_ild_antisynthetase", {"I1": NOT}),
    "boundary_age_80_today": ("ra_ild_established", {"I1": NOT}),
    "boundary_age_79_turns_80_tomorrow": ("ra_ild_established", {"I1": MET}),
}

SENTENCES = {
    "ssc_ild_new": "new_ssc_ild_meets_i3_and_trips_no_exclusion",
    "ra_ild_established": "ra_ild_a_year_under_mycophenolate_awaits_the_no_improvement_attestation",
    "myositis_ild_antisynthetase": "antisynthetase_ild_is_new_and_the_latest_normal_liver_tests_count",
    "anca_gpa_ild": "anca_vasculitis_ild_is_new_and_rituximab_8_months_ago_does_not_exclude",
    "ipaf": "ipaf_with_no_ctd_code_is_the_investigators_call_for_i3_and_e1",
    "excl_rituximab_30_days": "rituximab_30_days_before_screening_excludes",
    "excl_spo2_86": "spo2_86_percent_at_rest_excludes",
    "excl_alt_3x_uln": "alt_3_times_uln_at_screening_excludes",
    "excl_hepatitis_c": "chronic_hepatitis_c_since_2016_excludes",
    "excl_mi_4_months": "nstemi_4_months_before_the_first_infusion_excludes",
    "excl_pregnancy_positive": "positive_serum_hcg_5_days_before_screening_excludes",
    "boundary_spo2_88": "spo2_exactly_88_percent_does_not_exclude",
    "boundary_alt_at_uln": "alt_exactly_at_uln_is_normal",
    "boundary_rituximab_window_first_day": "rituximab_on_the_first_day_of_the_2_month_window_excludes",
    "boundary_rituximab_day_before_window": "rituximab_the_day_before_the_2_month_window_does_not_exclude",
    "boundary_age_18_today": "18th_birthday_on_the_screening_date_is_old_enough",
    "boundary_age_17_turns_18_tomorrow": "turning_18_the_day_after_screening_is_too_young",
    "boundary_age_80_today": "80th_birthday_on_the_screening_date_is_too_old",
    "boundary_age_79_turns_80_tomorrow": "turning_80_the_day_after_screening_is_young_enough",
}


def expected(chart: str) -> dict[str, str]:
    base, row = README[chart]
    return {**EVERY_CHART, **(expected(base) if base else {}), **row}


def overall_of(statuses: dict[str, str]) -> str:
    """DESIGN.md: eligible = every inclusion met and no exclusion met; unknown or needs_review
    makes it needs_review unless something already excludes."""
    if any(s == NOT for c, s in statuses.items() if c.startswith("I")) or any(s == MET for c, s in statuses.items() if c.startswith("E")):
        return "not_eligible"
    return "eligible" if all(s == NOT for c, s in statuses.items() if c.startswith("E")) and \
        all(s == MET for c, s in statuses.items() if c.startswith("I")) else "needs_review"


@pytest.fixture(scope="module")
def protocol():  # type: ignore[no-untyped-def]
    return load("nct03929120")


@pytest.fixture(scope="module")
def sheets(protocol) -> dict[str, Worksheet]:  # type: ignore[no-untyped-def]
    """All charts, one batch (the folder of bundles), keyed by file name."""
    return {Path(s.file).stem: s for s in check_fhir(BUNDLES, protocol, AS_OF)}


def statuses(sheet: Worksheet) -> dict[str, str]:
    return {c["id"]: c["status"] for c in sheet.criteria}


def criterion(sheet: Worksheet, cid: str) -> dict[str, Any]:
    (c,) = [c for c in sheet.criteria if c["id"] == cid]
    return c


def cited(sheet: Worksheet, cid: str) -> list[dict[str, Any]]:
    return criterion(sheet, cid)["evidence"]


def check(*args: str) -> Any:
    return runner.invoke(app, ["patient", "check", *[str(a) for a in args], "--as-of", AS_OF.isoformat()])


# --------------------------------------------------------------------------- the batch


def test_readme_names_every_chart_in_the_folder_and_the_batch_screens_each_once(sheets: dict[str, Worksheet]) -> None:
    files = sorted(p.stem for p in BUNDLES.glob("*.json"))
    assert sorted(README) == files == sorted(SENTENCES)
    assert sorted(sheets) == files
    assert len({s.patient for s in sheets.values()}) == len(files)
    for s in sheets.values():
        assert [c["id"] for c in s.criteria] == IDS and s.problems == [] and s.as_of == AS_OF


@pytest.mark.parametrize("chart", [pytest.param(c, id=SENTENCES[c]) for c in README])
def test_chart_screens_as_the_readme_says(sheets: dict[str, Worksheet], chart: str) -> None:
    sheet = sheets[chart]
    assert statuses(sheet) == expected(chart)
    assert sheet.overall == overall_of(expected(chart))


def test_every_criterion_carries_its_registered_text(sheets: dict[str, Worksheet], protocol) -> None:  # type: ignore[no-untyped-def]
    texts = {c.id: c.text for c in protocol.eligibility.criteria}
    for sheet in sheets.values():
        assert {c["id"]: c["text"] for c in sheet.criteria} == texts


# --------------------------------------------------------------------------- the evidence a PI reads


def test_spo2_86_cites_the_resting_observation_in_percent(sheets: dict[str, Worksheet]) -> None:
    (e,) = cited(sheets["excl_spo2_86"], "E3")
    assert (e["value"], e["unit"], e["date"]) == (86, "%", "2025-02-18")
    assert e["resource"].startswith("Observation/spo2-86-") and e["code"] in ("2708-6", "59408-5")


def test_spo2_exactly_88_cites_the_88(sheets: dict[str, Worksheet]) -> None:
    (e,) = cited(sheets["boundary_spo2_88"], "E3")
    assert (e["value"], e["unit"]) == (88, "%") and e["resource"].startswith("Observation/")


def test_rituximab_30_days_before_cites_the_infusion_of_2025_01_30(sheets: dict[str, Worksheet]) -> None:
    evidence = cited(sheets["excl_rituximab_30_days"], "E2")
    latest = evidence[0]
    assert latest["date"] == "2025-01-30" and latest["code"] == "121191"  # RxNorm rituximab
    assert latest["resource"].split("/")[0] in ("MedicationRequest", "MedicationAdministration")
    assert {e["date"] for e in evidence} == {"2025-01-16", "2025-01-30"}


def test_rituximab_on_the_first_day_of_the_window_cites_2025_01_01(sheets: dict[str, Worksheet]) -> None:
    evidence = cited(sheets["boundary_rituximab_window_first_day"], "E2")
    assert evidence[0]["date"] == "2025-01-01" and evidence[0]["resource"].startswith("Medication")
    assert "2024-12-17" not in {e["date"] for e in evidence}


def test_rituximab_outside_the_window_is_not_cited(sheets: dict[str, Worksheet]) -> None:
    assert cited(sheets["boundary_rituximab_day_before_window"], "E2") == []
    assert cited(sheets["anca_gpa_ild"], "E2") == []


def test_hepatitis_c_cites_the_b18_2_condition(sheets: dict[str, Worksheet]) -> None:
    (e,) = [e for e in cited(sheets["excl_hepatitis_c"], "E7") if e["table"] == "condition_occurrence"]
    assert e["code"] == "B18.2" and e["date"] == "2016-03-08" and e["resource"].startswith("Condition/")


def test_alt_3_times_uln_cites_value_and_the_laboratorys_range(sheets: dict[str, Worksheet]) -> None:
    alt = [e for e in cited(sheets["excl_alt_3x_uln"], "E8") if e["code"] == "1742-6"]
    assert len(alt) == 1
    assert (alt[0]["value"], alt[0]["unit"], alt[0]["range_low"], alt[0]["range_high"], alt[0]["date"]) == (135, "U/L", 7, 45, "2025-02-17")
    assert alt[0]["resource"].startswith("Observation/")


def test_alt_at_uln_is_cited_with_every_screening_lab_it_was_compared_with(sheets: dict[str, Worksheet]) -> None:
    evidence = cited(sheets["boundary_alt_at_uln"], "E8")
    assert {e["code"] for e in evidence} == {"6690-2", "718-7", "777-3", "751-8", "1920-8", "2160-0", "1742-6"}
    (alt,) = [e for e in evidence if e["code"] == "1742-6"]
    assert (alt["value"], alt["range_high"]) == (45, 45)
    assert all(e["date"] == "2025-02-17" and "range_high" in e for e in evidence)


def test_creatinine_range_sent_in_umol_per_l_is_cited_in_mg_per_dl(sheets: dict[str, Worksheet]) -> None:
    (creat,) = [e for e in cited(sheets["ssc_ild_new"], "E8") if e["code"] == "2160-0"]
    assert creat["unit"] == "mg/dL" and creat["value"] == pytest.approx(0.8)
    assert creat["range_low"] == pytest.approx(53 / 88.42, abs=1e-3) and creat["range_high"] == pytest.approx(92 / 88.42, abs=1e-3)


def test_mi_4_months_before_cites_the_i21_4_condition(sheets: dict[str, Worksheet]) -> None:
    (e,) = cited(sheets["excl_mi_4_months"], "E6")
    assert (e["code"], e["date"]) == ("I21.4", "2024-11-01") and e["resource"].startswith("Condition/")


def test_positive_pregnancy_test_cites_the_serum_hcg(sheets: dict[str, Worksheet]) -> None:
    hcg = [e for e in cited(sheets["excl_pregnancy_positive"], "E9") if e.get("code") == "21198-7"]
    assert hcg and hcg[0]["value"] == 1850 and hcg[0]["date"] == "2025-02-24" and hcg[0]["resource"].startswith("Observation/")


def test_negative_hcg_in_the_14_days_is_cited_for_a_woman_of_child_bearing_age(sheets: dict[str, Worksheet]) -> None:
    (e,) = cited(sheets["ssc_ild_new"], "E9")
    assert (e["code"], e["value"], e["date"]) == ("21198-7", 2, "2025-02-17")


def test_a_woman_with_no_hcg_in_the_14_days_is_unknown_and_a_man_needs_none(sheets: dict[str, Worksheet]) -> None:
    e9 = criterion(sheets["ipaf"], "E9")
    assert e9["status"] == UNK
    assert [(e["table"], e["display"]) for e in e9["evidence"]] == [("person", "FEMALE")]  # a woman, and no hCG on record
    assert criterion(sheets["ra_ild_established"], "E9")["status"] == NOT


def test_new_ssc_ild_cites_the_first_ild_record_and_the_ctd(sheets: dict[str, Worksheet]) -> None:
    evidence = {e["code"]: e for e in cited(sheets["ssc_ild_new"], "I3")}
    assert evidence["M34.81"]["date"] == "2025-01-20" and "first record" in evidence["M34.81"]["note"]
    assert evidence["M34.0"]["date"] == "2024-09-06"
    assert all(e["resource"].startswith("Condition/") for e in evidence.values())


def test_established_ra_ild_cites_first_and_last_mycophenolate(sheets: dict[str, Worksheet]) -> None:
    evidence = cited(sheets["ra_ild_established"], "I3")
    mmf = {e["note"].split(" (")[0]: e for e in evidence if e["code"] == "68149"}
    assert mmf["first exposure of the therapy"]["date"] == "2024-02-26"
    assert mmf["last exposure of the therapy"]["date"] == "2025-02-15"
    assert {"M05.10", "M05.79"} <= {e["code"] for e in evidence}


def test_ipaf_cites_the_ild_and_leaves_the_ipaf_question_to_the_investigator(sheets: dict[str, Worksheet]) -> None:
    (e,) = [e for e in cited(sheets["ipaf"], "E1") if not (e.get("note") or "").startswith("supporting")]
    assert e["code"] == "J84.89" and e["resource"] == "Condition/ipaf-condition-1"
    assert {(a["criterion_id"], a["id"]) for a in sheets["ipaf"].attestations} >= {("I3", "ipaf"), ("E1", "ipaf")}


@pytest.mark.parametrize(("chart", "birth", "age"), [
    pytest.param("boundary_age_18_today", "2007-03-01", 18, id="born_2007_03_01_is_18"),
    pytest.param("boundary_age_17_turns_18_tomorrow", "2007-03-02", 17, id="born_2007_03_02_is_still_17"),
    pytest.param("boundary_age_80_today", "1945-03-01", 80, id="born_1945_03_01_is_80"),
    pytest.param("boundary_age_79_turns_80_tomorrow", "1945-03-02", 79, id="born_1945_03_02_is_still_79"),
    pytest.param("ssc_ild_new", "1970-06-12", 54, id="born_1970_06_12_is_54"),
])  # fmt: skip
def test_age_is_cited_in_completed_years_on_the_screening_date(sheets: dict[str, Worksheet], chart: str, birth: str, age: int) -> None:
    (e,) = cited(sheets[chart], "I1")
    assert e["birth"] == birth and e["resource"].startswith("Patient/")
    assert e["note"] == f"age on 2025-03-01: {age}"


# --------------------------------------------------------------------------- the same chart, other shapes


def test_bulk_export_of_the_ssc_chart_screens_like_its_bundle(sheets: dict[str, Worksheet], protocol) -> None:  # type: ignore[no-untyped-def]
    (sheet,) = check_fhir(FHIR / "export_ssc_ild_new", protocol, AS_OF)
    assert statuses(sheet) == statuses(sheets["ssc_ild_new"]) and sheet.problems == []
    (e,) = cited(sheet, "E3")
    assert e["value"] == 94 and e["resource"].startswith("Observation/")


def test_export_without_manifest_screens_like_the_ra_bundle(sheets: dict[str, Worksheet], protocol) -> None:  # type: ignore[no-untyped-def]
    (sheet,) = check_fhir(FHIR / "export_ra_ild_no_manifest", protocol, AS_OF)
    assert statuses(sheet) == statuses(sheets["ra_ild_established"])


def test_export_with_bad_lines_still_gives_a_worksheet_naming_file_and_line(protocol) -> None:  # type: ignore[no-untyped-def]
    (sheet,) = check_fhir(FHIR / "export_bad_lines", protocol, AS_OF)
    assert [c["id"] for c in sheet.criteria] == IDS
    assert len(sheet.problems) == 2
    assert "Observation.ndjson:3: not JSON" in sheet.problems[0]
    assert "Observation.ndjson:5:" in sheet.problems[1] and "valueQuantity.value" in sheet.problems[1]


# --------------------------------------------------------------------------- the command


def test_json_prints_overall_and_each_criterion_with_status_and_evidence(sheets: dict[str, Worksheet]) -> None:
    result = check(BUNDLES / "excl_spo2_86.json", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["overall"] == "not_eligible" and doc["as_of"] == "2025-03-01" and doc["protocol"] == "NCT03929120"
    assert [c["id"] for c in doc["criteria"]] == IDS
    for c in doc["criteria"]:
        assert {"id", "status", "evidence"} <= set(c) and isinstance(c["evidence"], list)
    assert {c["id"]: c["status"] for c in doc["criteria"]} == statuses(sheets["excl_spo2_86"])
    (e3,) = [c for c in doc["criteria"] if c["id"] == "E3"]
    assert e3["evidence"][0]["value"] == 86 and e3["evidence"][0]["unit"] == "%"


def test_html_is_a_printable_page_with_every_criterion_and_every_question(tmp_path: Path, protocol) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "worksheet.html"
    result = check(BUNDLES / "ra_ild_established.json", "--format", "html", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in " ".join(result.output.split())
    page = out.read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html>") and "@media print" in page
    text = " ".join(html.unescape(page).split())
    for c in protocol.eligibility.criteria:
        assert " ".join(c.text.split()) in text, c.id
    for _, _, question in protocol.attestation_items():
        assert question in text
    assert "ra-ild-patient" in text and "Signature" in text
    assert not list(tmp_path.glob(".*.tmp"))


def test_folder_of_bundles_prints_a_json_list_one_worksheet_each(tmp_path: Path) -> None:
    for name in ("ipaf.json", "excl_hepatitis_c.json"):
        shutil.copy(BUNDLES / name, tmp_path / name)
    result = check(tmp_path, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    sheets_ = doc["worksheets"]
    assert sorted(d["patient"] for d in sheets_) == ["hcv-patient", "ipaf-patient"]
    assert {d["patient"]: d["overall"] for d in sheets_} == {"hcv-patient": "not_eligible", "ipaf-patient": "needs_review"}
    assert doc["batch"] == {"patients": 2, "overall": {"eligible": 0, "needs_review": 1, "not_eligible": 1}, "problems": []}


def _with_a_bundle_of_no_patient(folder: Path, *charts: str) -> None:
    for name in charts:
        shutil.copy(BUNDLES / name, folder / name)
    doc = json.loads((BAD / "missing_patient.json").read_text())
    doc["entry"] = [e for e in doc["entry"] if e["resource"]["resourceType"] != "Patient"]
    (folder / "no_patient.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("fmt", ["json", "html", "table"])
def test_problems_that_belong_to_no_patient_appear_once_in_a_batch(tmp_path: Path, fmt: str) -> None:
    _with_a_bundle_of_no_patient(tmp_path, "ipaf.json", "excl_hepatitis_c.json")
    out = tmp_path / "out" / f"w.{fmt}"
    out.parent.mkdir()
    result = runner.invoke(app, ["patient", "check", str(tmp_path), "--as-of", AS_OF.isoformat(), "--format", fmt,
                                 *(["--out", str(out)] if fmt != "table" else [])], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    text = result.output if fmt == "table" else out.read_text(encoding="utf-8")
    # the Bundle with no Patient: its two resources' problems (the ALT, the orphan Condition) are named once each
    assert text.count("Condition/bad-orphan") == 1 and text.count("Observation/bad-alt") == 1, text
    if fmt == "json":
        doc = json.loads(text)
        assert [p for p in doc["batch"]["problems"] if "Condition/bad-orphan" in p]
        assert all(d["problems"] == [] for d in doc["worksheets"])


def test_a_single_patients_check_keeps_the_problems_of_no_patient_on_its_worksheet(tmp_path: Path, protocol) -> None:  # type: ignore[no-untyped-def]
    _with_a_bundle_of_no_patient(tmp_path, "ipaf.json")
    (sheet,) = checked = check_fhir(tmp_path, protocol, AS_OF)
    assert sheet.patient == "ipaf-patient" and [p for p in sheet.problems if "Condition/bad-orphan" in p]
    assert checked.problems == [] and checked.summary()["problems"] == []


@pytest.mark.parametrize(("name", "says"), [
    pytest.param("not_json.json", "not JSON (line 1, column 1", id="a_text_note_is_not_json"),
    pytest.param("not_fhir.json", "JSON but not FHIR", id="json_without_resource_type_is_not_fhir"),
    pytest.param("stu3_condition.json", "looks like FHIR STU3", id="stu3_condition_is_refused"),
    pytest.param("dstu2_medication_order.json", "MedicationOrder is a FHIR DSTU2 resource type", id="dstu2_medication_order_is_refused"),
    pytest.param("stu3_capability_statement.json", "declares fhirVersion 3.0.2", id="fhir_version_3_is_refused"),
])  # fmt: skip
def test_unreadable_input_is_one_line_naming_the_file_and_exit_1(name: str, says: str) -> None:
    result = check(BAD / name, "--format", "json")
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(BAD / name) in lines[0] and says in lines[0]
    assert result.stdout.strip() == "" or not result.stdout.lstrip().startswith(("{", "["))


def test_missing_input_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = check(tmp_path / "nothing.json", "--format", "json")
    assert result.exit_code == 1 and "no such file or folder" in result.output and len(result.output.strip().splitlines()) == 1


def _worksheet(path: Path) -> dict[str, Any]:
    result = check(path, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_alt_failing_validation_is_named_and_the_other_alt_is_used() -> None:
    doc = _worksheet(BAD / "invalid_resource.json")
    (problem,) = doc["problems"]
    assert "invalid_resource.json" in problem and "Observation/bad-alt-invalid" in problem and "valueQuantity.value" in problem
    e8 = {c["id"]: c for c in doc["criteria"]}["E8"]
    assert [e["resource"] for e in e8["evidence"]] == ["Observation/bad-alt"]
    assert e8["status"] == UNK  # no CBC, creatinine or AST in this record


def test_unconvertible_units_are_named_the_creatinine_kept_without_range_and_the_ast_dropped() -> None:
    doc = _worksheet(BAD / "unconvertible_unit.json")
    problems = " | ".join(doc["problems"])
    assert "Observation/bad-creat-range: referenceRange[0].low" in problems and "mmol/mol" in problems
    assert "Observation/bad-ast-unit: valueQuantity.unit" in problems and "furlongs per fortnight" in problems
    e8 = {c["id"]: c for c in doc["criteria"]}["E8"]
    assert e8["status"] == UNK
    by_resource = {e["resource"]: e for e in e8["evidence"]}
    assert "Observation/bad-ast-unit" not in by_resource
    creat = by_resource["Observation/bad-creat-range"]
    assert creat["value"] == 0.9 and "range_high" not in creat and creat["note"] == "no ULN on the record"


def test_condition_of_a_patient_not_in_the_record_is_named_and_not_used() -> None:
    doc = _worksheet(BAD / "missing_patient.json")
    (problem,) = doc["problems"]
    assert "Condition/bad-orphan: subject" in problem and "Patient/not-in-this-bundle" in problem
    # the orphan was the chart's only Condition: by the design's convention no diagnosis still counts as none
    # (E7 not_met), and the worksheet tells the investigator the chart held no diagnosis at all
    e7 = {c["id"]: c for c in doc["criteria"]}["E7"]
    assert e7["status"] == NOT
    assert e7["evidence"] == [{"table": "condition_occurrence",
                               "note": "the chart holds no diagnoses or problems (Condition) and no List saying there are none:"
                                       " no record is read as none, as for anything the chart does not hold; check the full record"}]


def test_bundle_with_no_patient_is_a_one_line_error(tmp_path: Path) -> None:
    doc = json.loads((BAD / "missing_patient.json").read_text())
    doc["entry"] = [e for e in doc["entry"] if e["resource"]["resourceType"] != "Patient"]
    path = tmp_path / "no_patient.json"
    path.write_text(json.dumps(doc))
    result = check(path, "--format", "json")
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "no Patient resource found" in result.output and len(result.output.strip().splitlines()) == 1


def test_chart_with_no_measurements_still_gives_a_worksheet_with_labs_unknown(tmp_path: Path) -> None:
    doc = json.loads((BAD / "missing_patient.json").read_text())
    doc["entry"] = [e for e in doc["entry"] if e["resource"]["resourceType"] == "Patient"]
    path = tmp_path / "patient_only.json"
    path.write_text(json.dumps(doc))
    statuses_ = {c["id"]: c["status"] for c in _worksheet(path)["criteria"]}
    assert (statuses_["E3"], statuses_["E8"], statuses_["E9"]) == (UNK, UNK, UNK)


# --------------------------------------------------------------------------- a batch in parts


def _batch_folder(tmp_path: Path) -> Path:
    """Every test chart, the readable bad ones, and a Bundle with no Patient (its problem
    belongs to no one, so every worksheet shows it)."""
    folder = tmp_path / "batch"
    folder.mkdir()
    for f in sorted(BUNDLES.glob("*.json")):
        shutil.copy(f, folder / f.name)
    for name in ("invalid_resource.json", "missing_patient.json", "unconvertible_unit.json"):
        shutil.copy(BAD / name, folder / f"bad_{name}")
    doc = json.loads((BAD / "missing_patient.json").read_text())
    doc["entry"] = [e for e in doc["entry"] if e["resource"]["resourceType"] != "Patient"]
    (folder / "bad_no_patient.json").write_text(json.dumps(doc))
    return folder


def test_a_batch_checked_in_two_processes_gives_the_worksheets_of_one_process(
    tmp_path: Path, protocol, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    from trialdesk.eligibility import worksheet

    folder = _batch_folder(tmp_path)
    monkeypatch.setattr(worksheet, "PARALLEL_FROM_BUNDLES", 1)
    parts: list[int] = []
    in_parts = worksheet._check_in_parts
    monkeypatch.setattr(worksheet, "_check_in_parts", lambda *a: parts.append(1) or in_parts(*a))
    one = check_fhir(folder, protocol, AS_OF, workers=1)
    two = check_fhir(folder, protocol, AS_OF, workers=2)
    assert parts == [1] and len(one) == len(list(folder.glob("*.json"))) - 1
    assert json.dumps([s.to_json() for s in two]) == json.dumps([s.to_json() for s in one])
    assert [(s.birth_date, s.gender) for s in two] == [(s.birth_date, s.gender) for s in one]
    # the evidence cites the rows of the whole batch, not of one part; the orphan condition of the Bundle with no
    # Patient belongs to no worksheet: it is the batch's, once (it was repeated on every worksheet)
    assert max(e["record_id"] for s in one for c in s.criteria for e in c["evidence"] if e["table"] == "person") == len(one)
    assert two.problems == one.problems and [p for p in two.problems if "Condition/bad-orphan" in p]
    assert all("bad_no_patient.json" not in p for s in two for p in s.problems)


def test_an_unreadable_bundle_in_a_batch_checked_in_parts_is_the_same_one_line_error(
    tmp_path: Path, protocol, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    from trialdesk.eligibility import worksheet
    from trialdesk.sources.fhir import FhirError

    folder = _batch_folder(tmp_path)
    shutil.copy(BAD / "not_json.json", folder / "m_not_json.json")
    shutil.copy(BAD / "stu3_condition.json", folder / "s_stu3.json")
    monkeypatch.setattr(worksheet, "PARALLEL_FROM_BUNDLES", 1)
    errors = []
    for workers in (1, 2):
        with pytest.raises(FhirError) as e:
            check_fhir(folder, protocol, AS_OF, workers=workers)
        errors.append(str(e.value))
    assert errors[0] == errors[1] and errors[0].startswith(str(folder / "m_not_json.json"))


def test_validate_full_also_rejects_an_alt_invalid_only_in_its_narrative(tmp_path: Path) -> None:
    """The worksheet reads no narrative: by default the ALT with a malformed ``text`` is cited;
    ``--validate full`` drops it and names the element, and E8 has no ALT left."""
    doc = json.loads((BAD / "invalid_resource.json").read_text())
    doc["entry"] = [e for e in doc["entry"] if e["resource"]["id"] != "bad-alt-invalid"]
    (alt,) = [e["resource"] for e in doc["entry"] if e["resource"]["id"] == "bad-alt"]
    alt["text"] = {"status": 12, "div": '<div xmlns="http://www.w3.org/1999/xhtml">ALT 30 U/L</div>'}
    path = tmp_path / "narrative.json"
    path.write_text(json.dumps(doc))
    default = _worksheet(path)
    assert default["problems"] == []
    assert [e["resource"] for e in {c["id"]: c for c in default["criteria"]}["E8"]["evidence"]] == ["Observation/bad-alt"]
    result = check(path, "--format", "json", "--validate", "full")
    assert result.exit_code == 0, result.output
    full = json.loads(result.stdout)
    from trialdesk.eligibility.worksheet import NO_RECORDS

    (problem, note) = full["problems"]  # the chart had nothing but the ALT: it now has no clinical record
    assert "Observation/bad-alt: text.status: fails FHIR R4 validation" in problem and note == NO_RECORDS
    # no ALT is cited; the worksheet says why nothing is: the chart now holds no Observation at all
    assert {c["id"]: c for c in full["criteria"]}["E8"]["evidence"] == [  # unknown without an ALT: nothing read as none
        {"table": "measurement", "note": "the chart holds no observations (Observation)"}]


def test_the_command_pauses_garbage_collection_only_while_it_checks() -> None:
    import gc

    assert gc.isenabled()
    result = check(BAD / "invalid_resource.json", "--format", "json")
    assert result.exit_code == 0 and gc.isenabled()
    result = check(BAD / "not_json.json", "--format", "json")
    assert result.exit_code == 1 and gc.isenabled()


def test_an_unknown_validation_mode_is_refused_naming_the_option_and_the_choices() -> None:
    chart = BUNDLES / "ipaf.json"
    result = CliRunner().invoke(app, ["patient", "check", str(chart), "--as-of", "2025-03-01", "--validate", "everything"])
    assert result.exit_code == 2
    assert "--validate" in result.output and "'read'" in result.output and "'full'" in result.output


# --------------------------------------------------------------------------- an export in chunks of patients


def _export_in_files(folder: Path) -> Path:
    """Four test charts as one Bulk export (ids renamed per patient, references as Type/id), with what must cross
    chunks: a Medication two patients' rituximab infusions name, patient 3's first Observation reusing patient 0's
    id (a duplicate in another chunk), a Condition of a Patient not in the export, and each patient's
    Observations spread over two NDJSON files."""
    charts = ["excl_rituximab_30_days", "ssc_ild_new", "boundary_rituximab_window_first_day", "ra_ild_established"]
    files: dict[str, list[dict[str, Any]]] = {}
    first_obs: list[str] = []
    for i, chart in enumerate(charts):
        doc = json.loads((BUNDLES / f"{chart}.json").read_text())
        text = json.dumps(doc)
        for e in doc["entry"]:
            old = e["resource"]["id"]
            text = text.replace(f'"{old}"', f'"p{i}-{old}"').replace(f'/{old}"', f'/p{i}-{old}"')
        for e in json.loads(text)["entry"]:
            if str(e.get("fullUrl", "")).startswith("urn:"):
                text = text.replace(f'"{e["fullUrl"]}"', f'"{e["resource"]["resourceType"]}/{e["resource"]["id"]}"')
        for e in json.loads(text)["entry"]:
            r = e["resource"]
            if r["resourceType"] == "MedicationAdministration" and i in (0, 2) and "rituximab" in json.dumps(r):
                del r["medicationCodeableConcept"]
                r["medicationReference"] = {"reference": "Medication/rituximab"}
            if r["resourceType"] == "Observation" and len(first_obs) == i:
                first_obs.append(r["id"])
                if i == 3:
                    r["id"] = first_obs[0]
            files.setdefault(r["resourceType"], []).append(r)
    files["Medication"] = [{"resourceType": "Medication", "id": "rituximab", "code": {"coding": [
        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "121191", "display": "rituximab"}]}}]
    files["Condition"].insert(3, {"resourceType": "Condition", "id": "orphan", "subject": {"reference": "Patient/nobody"},
                                  "code": {"coding": [{"system": "http://snomed.info/sct", "code": "840539006"}]},
                                  "onsetDateTime": "2024-01-01"})
    observations = files.pop("Observation")
    files["Observation"], files["Observation_2"] = observations[::2], observations[1::2]
    export = folder / "export"
    export.mkdir()
    for name, rows in files.items():
        (export / f"{name}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return export


@pytest.mark.parametrize("chunk", [1, 2])
def test_an_export_checked_in_chunks_of_patients_gives_the_worksheets_of_one_pass(
    tmp_path: Path, protocol, chunk: int  # type: ignore[no-untyped-def]
) -> None:
    from trialdesk.eligibility.worksheet import check_chunked

    export = _export_in_files(tmp_path)
    whole = check_fhir(export, protocol, AS_OF)
    chunked = check_fhir(export, protocol, AS_OF, chunk=chunk)
    assert len(whole) == 4
    assert json.dumps([s.to_json() for s in chunked], indent=1) == json.dumps([s.to_json() for s in whole], indent=1)
    assert [(s.birth_date, s.gender) for s in chunked] == [(s.birth_date, s.gender) for s in whole]
    assert chunked.problems == whole.problems and [p for p in whole.problems if "Condition/orphan" in p]
    parts, _ = check_chunked([export], protocol, AS_OF, None, "read", chunk)
    assert [len(part) for part in parts] == [chunk] * (4 // chunk)
    # what crossed chunks: the Medication named from two chunks, the duplicate id, the row numbers
    assert [statuses(s)["E2"] for s in whole] == [MET, NOT, MET, NOT]
    assert [p for p in whole[3].problems if "duplicate resource Observation/p0-" in p]
    assert max(e["record_id"] for s in chunked for c in s.criteria for e in c["evidence"] if e["table"] == "person") == 4


@pytest.mark.parametrize("fmt", ["json", "html"])
def test_the_command_writes_an_export_chunk_by_chunk_as_the_same_document(tmp_path: Path, fmt: str) -> None:
    export = _export_in_files(tmp_path)
    written = {}
    for chunk in ("0", "1", "3"):
        out = tmp_path / f"sheets-{chunk}.{fmt}"
        result = check(export, "--format", fmt, "--out", out, "--chunk", chunk)
        assert result.exit_code == 0, result.output
        written[chunk] = out.read_text()
    assert written["1"] == written["0"] and written["3"] == written["0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", f"sheets-0.{fmt}", f"sheets-1.{fmt}", f"sheets-3.{fmt}"]
    if fmt == "json":
        doc = json.loads(written["1"])
        assert doc["batch"]["patients"] == 4 and len(doc["worksheets"]) == 4
        assert [p for p in doc["batch"]["problems"] if "Condition/orphan" in p]


def test_the_command_prints_an_export_checked_in_chunks_as_in_one_pass(tmp_path: Path) -> None:
    export = _export_in_files(tmp_path)
    printed = [check(export, "--format", fmt, "--chunk", chunk) for fmt in ("json", "table") for chunk in ("0", "2")]
    assert all(r.exit_code == 0 for r in printed), [r.output for r in printed]
    assert printed[0].output == printed[1].output and printed[2].output == printed[3].output
    assert "batch: 4 patients" in printed[3].output


def test_a_one_patient_export_checked_in_chunks_keeps_the_problems_of_no_patient_on_its_worksheet(tmp_path: Path) -> None:
    export = _export_in_files(tmp_path)
    for f in export.glob("*.ndjson"):
        lines = [ln for ln in f.read_text().splitlines() if '"p1-' not in ln and '"p2-' not in ln and '"p3-' not in ln
                 and "/p1-" not in ln and "/p2-" not in ln and "/p3-" not in ln]
        f.write_text("".join(ln + "\n" for ln in lines))
    one, chunked = (json.loads(check(export, "--format", "json", "--chunk", c).output) for c in ("0", "1"))
    assert chunked == one and one["patient"] and [p for p in one["problems"] if "Condition/orphan" in p]

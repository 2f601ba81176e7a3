"""A diagnosis that is only tentative does not decide a criterion: it sends it to review.

A FHIR Condition whose verificationStatus is unconfirmed, provisional or differential is
mapped with OMOP condition_status_concept_id 32899 "Preliminary diagnosis"; a leaf whose only
records in its window are preliminary is ``needs_review``, and the record is cited with a note
saying it is not confirmed. A confirmed record (32893, or no status) still decides.

Charts: the new SSc-ILD chart of tests/fixtures/fhir (ILD M34.81 on 2025-01-20, SSc M34.0 on
2024-09-06), screened as of 2025-03-01; OMOP databases: screened as of 2024-06-01.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.eligibility.helpers import person, statuses
from trialdesk.eligibility.screen import screen
from trialdesk.eligibility.worksheet import Worksheet, check_fhir
from trialdesk.protocol.loader import load, resolve
from trialdesk.sources.omop import open_omop
from trialdesk.sources.omop_builder import OmopBuilder

BUNDLES = Path(__file__).resolve().parents[1] / "fixtures" / "fhir" / "bundles"
CHART_AS_OF = dt.date(2025, 3, 1)
VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ILD = "ssc-new-condition-4"
ASKS = "a preliminary diagnosis (not confirmed): does it hold?"
MET, NOT, NR = "met", "not_met", "needs_review"


def _verified(resource: dict[str, Any], code: str) -> dict[str, Any]:
    resource["verificationStatus"] = {"coding": [{"system": VER_STATUS, "code": code}]}
    return resource


def _chart(base: str, statuses_by_id: dict[str, str], added: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """The fixture chart ``base`` with the verificationStatus of some Conditions changed, and Conditions added."""
    doc = json.loads((BUNDLES / f"{base}.json").read_text())
    for e in doc["entry"]:
        r = e["resource"]
        if r.get("id") in statuses_by_id:
            _verified(r, statuses_by_id[r["id"]])
    template = next(e for e in doc["entry"] if e["resource"].get("id") == ILD)
    for extra in added:
        entry = copy.deepcopy(template)
        entry.pop("fullUrl", None)
        r = entry["resource"]
        r.update({k: v for k, v in extra.items() if k != "status"})
        _verified(r, extra["status"])
        doc["entry"].append(entry)
    return doc


def _condition(rid: str, date: str, icd: str, text: str, status: str) -> dict[str, Any]:
    return {"id": rid, "onsetDateTime": date, "recordedDate": date, "status": status,
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd, "display": text}], "text": text}}


PNEUMONIA = "J18.9", "Pneumonia, unspecified organism"
HEPATITIS_C = "B18.2", "Chronic viral hepatitis C"

CHARTS: dict[str, dict[str, Any]] = {
    "ild_differential": _chart("ssc_ild_new", {ILD: "differential"}),
    "ild_confirmed": _chart("ssc_ild_new", {ILD: "confirmed"}),
    "ild_provisional_and_confirmed": _chart("ssc_ild_new", {ILD: "provisional"}, [
        _condition("ild-confirmed-later", "2025-02-10", "J84.10", "Interstitial lung disease", "confirmed")]),
    "ild_suspected_before_the_window_confirmed_inside": _chart("ssc_ild_new", {}, [
        _condition("ild-suspected", "2024-06-03", "J84.9", "Interstitial lung disease, unspecified", "unconfirmed")]),
    "ild_suspected_long_ago_never_confirmed": _chart("ssc_ild_new", {ILD: "refuted"}, [
        _condition("ild-suspected", "2023-01-10", "J84.9", "Interstitial lung disease, unspecified", "differential")]),
    "pneumonia_provisional": _chart("ssc_ild_new", {}, [_condition("pna", "2025-02-20", *PNEUMONIA, "provisional")]),
    "pneumonia_confirmed": _chart("ssc_ild_new", {}, [_condition("pna", "2025-02-20", *PNEUMONIA, "confirmed")]),
    "hepatitis_c_provisional": _chart("ssc_ild_new", {}, [_condition("hcv", "2016-03-08", *HEPATITIS_C, "provisional")]),
    "hepatitis_c_confirmed": _chart("ssc_ild_new", {}, [_condition("hcv", "2016-03-08", *HEPATITIS_C, "confirmed")]),
}


@pytest.fixture(scope="module")
def sheets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Worksheet]:
    """Every chart, one batch (a folder of bundles), keyed by file name."""
    folder = tmp_path_factory.mktemp("tentative")
    for name, doc in CHARTS.items():
        (folder / f"{name}.json").write_text(json.dumps(doc))
    return {Path(s.file).stem: s for s in check_fhir(folder, load("nct03929120"), CHART_AS_OF)}


def _criterion(sheet: Worksheet, cid: str) -> dict[str, Any]:
    (c,) = [c for c in sheet.criteria if c["id"] == cid]
    return c


def _notes(sheet: Worksheet, cid: str) -> dict[str, str | None]:
    return {e["code"]: e.get("note") for e in _criterion(sheet, cid)["evidence"] if e["table"] == "condition_occurrence"}


def test_the_batch_screens_every_chart_without_problems(sheets: dict[str, Worksheet]) -> None:
    assert sorted(sheets) == sorted(CHARTS)
    assert all(s.problems == [] for s in sheets.values())


def test_a_differential_ild_is_not_a_new_ild_it_is_a_question(sheets: dict[str, Worksheet]) -> None:
    sheet = sheets["ild_differential"]
    assert _criterion(sheet, "I3")["status"] == NR
    notes = _notes(sheet, "I3")
    assert notes["M34.81"] == "first record, inside the window; " + ASKS
    assert sheet.overall == "needs_review"


def test_the_same_ild_confirmed_is_the_new_diagnosis_sought(sheets: dict[str, Worksheet]) -> None:
    sheet = sheets["ild_confirmed"]
    assert _criterion(sheet, "I3")["status"] == MET
    assert _notes(sheet, "I3")["M34.81"] == "first record, inside the window"


def test_a_provisional_ild_then_a_confirmed_one_in_the_window_is_new_either_way(sheets: dict[str, Worksheet]) -> None:
    sheet = sheets["ild_provisional_and_confirmed"]
    assert _criterion(sheet, "I3")["status"] == MET
    notes = _notes(sheet, "I3")
    # the provisional one is the first record: cited, saying what it is, but asked about nothing
    assert notes["M34.81"] == "first record, inside the window; a preliminary diagnosis (not confirmed)"
    assert notes["J84.10"] == "first confirmed record, inside the window"


def test_an_ild_suspected_before_the_window_and_confirmed_inside_asks_when_it_began(sheets: dict[str, Worksheet]) -> None:
    sheet = sheets["ild_suspected_before_the_window_confirmed_inside"]
    assert _criterion(sheet, "I3")["status"] == NR
    notes = _notes(sheet, "I3")
    assert notes["J84.9"] == "first record, before the window; " + ASKS
    assert notes["M34.81"] == "first confirmed record, inside the window"


def test_an_ild_only_suspected_two_years_ago_is_no_new_diagnosis_whether_or_not_it_held(sheets: dict[str, Worksheet]) -> None:
    # if it held, the ILD began before the window; if not, there is none: not a new diagnosis either way (and
    # the established route fails on its therapy, 179 days of mycophenolate, whatever the ILD is)
    sheet = sheets["ild_suspected_long_ago_never_confirmed"]
    assert _criterion(sheet, "I3")["status"] == NOT
    assert _notes(sheet, "I3")["J84.9"] == "first record, before the window; a preliminary diagnosis (not confirmed)"


def test_a_provisional_pneumonia_does_not_exclude_it_is_cited_as_a_question(sheets: dict[str, Worksheet]) -> None:
    e4 = _criterion(sheets["pneumonia_provisional"], "E4")
    assert e4["status"] == NR
    assert _notes(sheets["pneumonia_provisional"], "E4") == {"J18.9": ASKS}
    assert _criterion(sheets["pneumonia_confirmed"], "E4")["status"] == MET
    assert _notes(sheets["pneumonia_confirmed"], "E4") == {"J18.9": None}
    assert sheets["pneumonia_confirmed"].overall == "not_eligible"
    assert sheets["pneumonia_provisional"].overall == "needs_review"


def test_a_provisional_hepatitis_c_asks_where_a_confirmed_one_excludes(sheets: dict[str, Worksheet]) -> None:
    assert _criterion(sheets["ild_confirmed"], "E7")["status"] == NOT  # no hepatitis at all
    assert _criterion(sheets["hepatitis_c_confirmed"], "E7")["status"] == MET
    assert _criterion(sheets["hepatitis_c_provisional"], "E7")["status"] == NR
    assert _notes(sheets["hepatitis_c_provisional"], "E7") == {"B18.2": ASKS}


# --------------------------------------------------------------------------- OMOP

AS_OF = dt.date(2024, 6, 1)
PRELIMINARY, CONFIRMED = 32899, 32893
Record = tuple[int, dt.date, str, int | None]  # person, date, ICD-10-CM code, condition_status_concept_id


def _cdm(tmp_path: Path, records: list[Record], *, status_column: bool = True) -> Path:
    """Persons observed for years with normal labs and SSc since 2023, and ``records``; without
    ``status_column`` the extract has no condition_status_concept_id."""
    b = OmopBuilder()
    for pid in sorted({r[0] for r in records} | {99}):
        person(b, pid)
        b.condition(pid, dt.date(2023, 5, 1), source_value="M34.1")
    for pid, date, code, _ in records:
        b.condition(pid, date, source_value=code)
    path = tmp_path / "cdm.duckdb"
    b.write(path)
    with duckdb.connect(str(path)) as con:
        for pid, date, code, status in records:
            if status is not None:
                con.execute("UPDATE condition_occurrence SET condition_status_concept_id = ? WHERE person_id = ? "
                            "AND condition_start_date = ? AND condition_source_value = ?", [status, pid, date, code])
        if not status_column:
            con.execute("ALTER TABLE condition_occurrence DROP COLUMN condition_status_concept_id")
    return path


def _screened(path: Path, protocol: Any = None) -> dict[int, dict[str, dict[str, Any]]]:
    result = screen(open_omop(path), protocol or load("nct03929120"), AS_OF)
    rows: dict[int, dict[str, dict[str, Any]]] = {}
    for r in result.person_criteria().to_pylist():
        rows.setdefault(r["person_id"], {})[r["criterion_id"]] = r
    assert {pid: {c: r["status"] for c, r in by.items()} for pid, by in rows.items()} == statuses(result)
    return rows


def _notes_of(row: dict[str, Any]) -> dict[str, str | None]:
    return {e["code"]: e["note"] for e in row["evidence"] if e["table"] == "condition_occurrence"}


def test_a_preliminary_ild_in_the_cdm_sends_i3_to_review_and_a_confirmed_one_meets_it(tmp_path: Path) -> None:
    rows = _screened(_cdm(tmp_path, [(1, dt.date(2024, 3, 1), "J84.10", PRELIMINARY),
                                     (2, dt.date(2024, 3, 1), "J84.10", CONFIRMED),
                                     (3, dt.date(2024, 3, 1), "J84.10", None)]))  # 0: no status given
    assert rows[1]["I3"]["status"] == NR
    assert _notes_of(rows[1]["I3"])["J84.10"] == "first record, inside the window; " + ASKS
    for pid in (2, 3):
        assert rows[pid]["I3"]["status"] == MET
        assert _notes_of(rows[pid]["I3"])["J84.10"] == "first record, inside the window"


def test_a_preliminary_pneumonia_in_the_cdm_does_not_exclude(tmp_path: Path) -> None:
    rows = _screened(_cdm(tmp_path, [(1, dt.date(2024, 5, 20), "J18.9", PRELIMINARY),
                                     (2, dt.date(2024, 5, 20), "J18.9", CONFIRMED)]))
    assert rows[1]["E4"]["status"] == NR
    assert _notes_of(rows[1]["E4"]) == {"J18.9": ASKS}
    assert rows[2]["E4"]["status"] == MET


def test_a_cdm_without_the_status_column_reads_every_diagnosis_as_before(tmp_path: Path) -> None:
    rows = _screened(_cdm(tmp_path, [(1, dt.date(2024, 3, 1), "J84.10", None), (1, dt.date(2024, 5, 20), "J18.9", None)],
                          status_column=False))
    assert (rows[1]["I3"]["status"], rows[1]["E4"]["status"]) == (MET, MET)
    assert not any("preliminary" in (e["note"] or "") for r in rows[1].values() for e in r["evidence"])


def test_where_two_records_are_needed_a_preliminary_one_is_asked_about_only_if_it_would_make_two(tmp_path: Path) -> None:
    """E7 rewritten as "two records of HIV, hepatitis B or C": a confirmed and a preliminary
    record make two only if the preliminary one holds; a preliminary one alone never does."""
    rule = "- {kind: condition, value_set: hiv_hepatitis_b_c, window: {start: null, end: 0}"
    text = resolve("nct03929120").read_text()
    assert text.count(rule) == 1
    (tmp_path / "two_records.yaml").write_text(text.replace(rule, rule + ", min_count: 2"))
    hcv = "B18.2"
    rows = _screened(_cdm(tmp_path, [
        (1, dt.date(2016, 3, 8), hcv, CONFIRMED), (1, dt.date(2020, 1, 9), hcv, PRELIMINARY),
        (2, dt.date(2016, 3, 8), hcv, CONFIRMED), (2, dt.date(2020, 1, 9), hcv, CONFIRMED),
        (3, dt.date(2020, 1, 9), hcv, PRELIMINARY),
        (4, dt.date(2016, 3, 8), hcv, CONFIRMED)]), load(tmp_path / "two_records.yaml"))
    assert {pid: rows[pid]["E7"]["status"] for pid in (1, 2, 3, 4)} == {1: NR, 2: MET, 3: NOT, 4: NOT}
    cited = sorted((e["date"], e["note"]) for e in rows[1]["E7"]["evidence"] if e["table"] == "condition_occurrence")
    assert cited == [("2016-03-08", None), ("2020-01-09", ASKS)]

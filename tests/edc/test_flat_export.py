"""The data manager's flat export by form: one CSV per form (in a ZIP) or one Excel sheet per form, with a codebook;
lung function and the six-minute walk included; an unscheduled visit's forms in it; an entry marked entered in error
left out; de-identified (study days, no dates, no free-text reasons) unless a role that may asks for it identified."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from .conftest import days_ago

TODAY = {"cutoff": days_ago(0).isoformat()}


@pytest.fixture
def measured(trial, users):  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.service import save_form
    from trialdesk.edc.visits.unscheduled import add_unscheduled_visit
    from trialdesk.edc.voiding import mark_entered_in_error

    p = trial.enrol()
    trial.infuse(p, ago=20)
    u = add_unscheduled_visit(users["coordinator"], p, done_on=days_ago(5), reason="breathless on stairs at Mrs Lovelace's home",
                              forms=["pulmonary_function", "six_minute_walk", "vital_signs"])
    save_form(users["coordinator"], u, "pulmonary_function", {"pft_date": days_ago(5), "fvc": 2.41, "fvc_pct": 63.0, "dlco_pct": 48.0})
    save_form(users["coordinator"], u, "six_minute_walk", {"smw_date": days_ago(5), "smw_distance": 312, "smw_spo2_nadir": 86})
    wrong = save_form(users["coordinator"], u, "vital_signs", {"vs_date": days_ago(5), "sysbp": 199, "diabp": 80})
    mark_entered_in_error(users["coordinator"], wrong, reason="entered for the wrong participant", version=wrong.version)
    return p


def _csvs(response) -> dict[str, list[dict[str, str]]]:  # type: ignore[no-untyped-def]
    z = zipfile.ZipFile(io.BytesIO(response.content))
    return {name.split("_", 2)[2].removesuffix(".csv"): list(csv.DictReader(io.StringIO(z.read(name).decode())))
            for name in z.namelist()}


def test_the_csv_zip_has_a_table_per_form_with_lung_function_and_the_walk_and_a_codebook(measured, client_as) -> None:  # type: ignore[no-untyped-def]
    r = client_as("data_manager").post("/exports/flat-csv/", TODAY)
    assert r.status_code == 200 and r["Content-Disposition"].endswith('_by_form.zip"')
    tables = _csvs(r)
    assert {"visits", "vital_signs", "laboratory", "pulmonary_function", "six_minute_walk", "infusions", "adverse_events",
            "concomitant_medications", "medical_history", "codebook"} <= set(tables)
    [pft] = tables["pulmonary_function"]
    assert (pft["subject_id"], pft["visit"], pft["visit_name"], pft["unscheduled"]) == ("001", "U1", "Unscheduled visit 1", "yes")
    assert (pft["fvc"], pft["fvc_pct"], pft["dlco_pct"], pft["pft_date_study_day"], pft["status"]) == ("2.41", "63.0", "48.0", "15",
                                                                                                     "complete")
    [walk] = tables["six_minute_walk"]
    assert (walk["smw_distance"], walk["smw_spo2_nadir"], walk["smw_date_study_day"]) == ("312", "86", "15")
    assert tables["vital_signs"] == []  # the entry marked entered in error is not exported
    unscheduled = [v for v in tables["visits"] if v["code"] == "U1"]
    assert unscheduled and unscheduled[0]["unscheduled"] == "yes" and "unscheduled_reason" not in unscheduled[0]
    book = {(e["table"], e["column"]): e for e in tables["codebook"]}
    assert book[("six_minute_walk", "smw_distance")]["unit"] == "m" and book[("six_minute_walk", "smw_distance")]["type"] == "integer"
    assert book[("pulmonary_function", "pft_date_study_day")]["label"].startswith("Date of test (study day")
    assert "possibly = Possibly" in book[("adverse_events", "relatedness")]["codes"]
    text = r.content.decode("latin-1")
    assert days_ago(5).isoformat() not in "".join(str(v) for t in tables.values() for row in t for v in row.values())
    assert "Lovelace" not in text


def test_the_workbook_has_a_sheet_per_form_and_a_codebook(measured, client_as) -> None:  # type: ignore[no-untyped-def]
    from openpyxl import load_workbook

    r = client_as("data_manager").post("/exports/flat-xlsx/", TODAY)
    assert r.status_code == 200 and r["Content-Type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(r.content), read_only=True)
    assert wb.sheetnames[0] == "codebook" and {"pulmonary_function", "six_minute_walk", "laboratory"} <= set(wb.sheetnames)
    rows = list(wb["six_minute_walk"].iter_rows(values_only=True))
    header, [walk] = rows[0], rows[1:]
    assert dict(zip(header, walk, strict=True))["smw_distance"] == 312


def test_an_identified_export_keeps_dates_and_only_a_role_that_may_takes_it(measured, client_as) -> None:  # type: ignore[no-untyped-def]
    r = client_as("data_manager").post("/exports/flat-csv/", TODAY | {"identified": "on"})
    assert r.status_code == 200 and "_IDENTIFIED" in r["Content-Disposition"]
    [pft] = _csvs(r)["pulmonary_function"]
    assert pft["pft_date"] == days_ago(5).isoformat()
    unscheduled = [v for v in _csvs(r)["visits"] if v["code"] == "U1"]
    assert "breathless on stairs" in unscheduled[0]["unscheduled_reason"]
    assert client_as("sponsor").post("/exports/flat-csv/", TODAY | {"identified": "on"}).status_code == 403
    assert client_as("sponsor").post("/exports/flat-csv/", TODAY).status_code == 200  # de-identified


def _zip_names(response) -> list[str]:  # type: ignore[no-untyped-def]
    import zipfile

    return zipfile.ZipFile(io.BytesIO(response.content)).namelist()


@pytest.mark.parametrize(("served", "cells", "weight", "dose", "unit", "label"), [
    ("nct03929120", 60e6, 80.0, "0.75", "10^6 cells/kg", "dose (per kg of body weight)"),
    ("nct02013700", 20e6, 80.0, "20.0", "10^6 cells", "dose (total)"),
])
def test_the_infusions_table_gives_the_dose_as_the_protocol_states_it(served, cells, weight, dose, unit, label, settings, trial,  # type: ignore[no-untyped-def]
                                                                      client_as) -> None:
    settings.TRIALDESK_PROTOCOL = served
    if served == "nct02013700":
        from .test_cohort_gate_desk import assign, enrol_for_aether

        p = enrol_for_aether(trial, "Ann")
        assign(trial, p, "C1")
    else:
        p = trial.enrol()
    trial.infuse(p, ago=10, total_cells=cells, weight=weight)
    response = client_as("data_manager").post("/exports/flat-csv/", TODAY | {"export_anyway": "on"})
    names = _zip_names(response)
    assert len(names) == len(set(names))  # one file per table: the AE and infusion forms are not visit tables too
    tables = _csvs(response)
    [row] = tables["infusions"]
    assert "dose_per_kg" not in row and row["dose"] == dose
    book = {(e["table"], e["column"]): e for e in tables["codebook"]}
    assert (book[("infusions", "dose")]["unit"], book[("infusions", "dose")]["label"]) == (unit, label)

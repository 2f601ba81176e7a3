"""The flat export's core: dates become study days unless identified, free-text narrative leaves a de-identified
export, the codebook names every column with its type, unit and codes, and the CSV and Excel forms hold the same rows."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

from trialdesk.analysis.flat_export import Column, Table, build

DAY0 = dt.date(2020, 1, 20)
TABLE = Table("six_minute_walk", "Six-minute walk", [
    Column("subject_id", "Subject id"), Column("smw_date", "Date of test", "date"),
    Column("smw_distance", "Distance walked", "integer", "m"), Column("note", "Note", "narrative"),
    Column("done", "Done", "yesno", codes={"yes": "Yes", "no": "No"})],
    [{"subject_id": "001", "smw_date": dt.date(2020, 2, 17), "smw_distance": 312, "note": "at Ada's home", "done": True},
     {"subject_id": "002", "smw_date": "2020-03-01", "smw_distance": 405, "note": "", "done": False}])


def test_de_identified_dates_are_study_days_and_narrative_is_left_out() -> None:
    flat = build([TABLE], day0={"001": DAY0, "002": dt.date(2020, 2, 10)}, identified=False)
    [t] = flat.tables
    assert [c.name for c in t.columns] == ["subject_id", "smw_date_study_day", "smw_distance", "done"]
    assert [r["smw_date_study_day"] for r in t.rows] == [28, 20] and [r["done"] for r in t.rows] == ["yes", "no"]
    assert {e["column"]: e["type"] for e in flat.codebook}["smw_date_study_day"] == "integer"


def test_identified_keeps_dates_and_narrative() -> None:
    flat = build([TABLE], day0={"001": DAY0}, identified=True)
    assert flat.tables[0].rows[0]["smw_date"] == "2020-02-17" and flat.tables[0].rows[0]["note"] == "at Ada's home"


def test_a_participant_never_infused_has_no_study_day() -> None:
    flat = build([TABLE], day0={"001": None}, identified=False)
    assert flat.tables[0].rows[0]["smw_date_study_day"] is None


def test_the_csv_zip_and_the_workbook_hold_the_same_rows_and_the_codebook() -> None:
    from openpyxl import load_workbook

    flat = build([TABLE], day0={"001": DAY0, "002": DAY0}, identified=False)
    z = zipfile.ZipFile(io.BytesIO(flat.csv_zip("X")))
    assert sorted(z.namelist()) == ["X_codebook.csv", "X_six_minute_walk.csv"]
    lines = z.read("X_six_minute_walk.csv").decode().splitlines()
    assert lines == ["subject_id,smw_date_study_day,smw_distance,done", "001,28,312,yes", "002,41,405,no"]
    assert "six_minute_walk,smw_distance,Distance walked,integer,m," in z.read("X_codebook.csv").decode()
    wb = load_workbook(io.BytesIO(flat.xlsx()), read_only=True)
    assert wb.sheetnames == ["codebook", "six_minute_walk"]
    assert list(wb["six_minute_walk"].iter_rows(values_only=True))[1] == ("001", 28, 312, "yes")

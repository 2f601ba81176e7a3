"""``trialdesk screen`` from the informatics team's side: files out, clear refusals, nothing half-written."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from typer.testing import CliRunner

from tests.eligibility.helpers import person
from trialdesk.cli import app
from trialdesk.sources.omop_builder import OmopBuilder

runner = CliRunner()


def _cdm(tmp_path: Path) -> Path:
    b = OmopBuilder()
    person(b, 1)
    b.condition(1, dt.date(2024, 3, 1), source_value="J84.10")
    b.condition(1, dt.date(2023, 5, 1), source_value="M34.1")
    person(b, 2, spo2=85.0)
    person(b, 3, birth=dt.date(2010, 1, 1))
    b.visit(1, dt.date(2024, 5, 1))
    b.visit(2, dt.date(2020, 5, 1))
    path = tmp_path / "cdm.duckdb"
    b.write(path)
    return path


def test_screen_writes_funnel_person_criteria_and_candidates(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["screen", "--omop", str(_cdm(tmp_path)), "--as-of", "2024-06-01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    funnel = list(csv.DictReader((out / "funnel.csv").open()))
    assert list(funnel[0]) == ["criterion_id", "met", "not_met", "unknown", "needs_review", "remaining"]
    assert [r["criterion_id"] for r in funnel] == ["I1", "I2", "I3", "I4", *[f"E{i}" for i in range(1, 12)]]
    assert funnel[0]["remaining"] == "2"  # the 14-year-old is out at I1
    table = pq.read_table(out / "person_criteria.parquet")
    assert table.column_names == ["person_id", "criterion_id", "status", "evidence"]
    assert table.num_rows == 3 * 15
    rows = table.to_pylist()
    order = ["I1", "I2", "I3", "I4", *[f"E{i}" for i in range(1, 12)]]
    assert [(r["person_id"], r["criterion_id"]) for r in rows] == [(p, c) for p in (1, 2, 3) for c in order]
    # the SpO2 that excludes person 2 is cited as a typed record, not as text
    e3 = next(r for r in rows if r["person_id"] == 2 and r["criterion_id"] == "E3")
    assert e3["status"] == "met" and e3["evidence"][0]["table"] == "measurement"
    assert e3["evidence"][0]["value"] == 85.0 and e3["evidence"][0]["unit"] == "%"
    candidates = list(csv.DictReader((out / "candidates.csv").open()))
    assert [c["person_id"] for c in candidates] == ["1"]


def test_active_within_is_an_explicit_first_step_of_the_funnel(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["screen", "--omop", str(_cdm(tmp_path)), "--as-of", "2024-06-01", "--out", str(out),
                                 "--active-within", "12m"])
    assert result.exit_code == 0, result.output
    funnel = list(csv.DictReader((out / "funnel.csv").open()))
    assert funnel[0] == {"criterion_id": "ACTIVE_12M", "met": "1", "not_met": "2", "unknown": "0", "needs_review": "0",
                         "remaining": "1"}


def test_as_of_outside_the_data_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["screen", "--omop", str(_cdm(tmp_path)), "--as-of", "2031-01-01", "--out", str(out)])
    assert result.exit_code == 1
    assert "outside the data" in result.output and "2015-01-01 to 2024-06-01" in result.output
    assert not out.exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_a_file_that_is_not_an_omop_cdm_names_the_missing_table(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE person (person_id INTEGER, gender_concept_id INTEGER, year_of_birth INTEGER)")
    con.close()
    result = runner.invoke(app, ["screen", "--omop", str(path), "--as-of", "2024-06-01", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "not an OMOP CDM: required table 'observation_period' is missing" in result.output


def test_a_text_file_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    result = runner.invoke(app, ["screen", "--omop", str(path), "--as-of", "2024-06-01", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "not a DuckDB database" in result.output


def test_an_unreachable_database_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["screen", "--omop", "postgresql://postgres@127.0.0.1:1/none?schema=cdm",
                                 "--as-of", "2024-06-01", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "cannot connect" in result.output and "Traceback" not in result.output


def test_an_unknown_protocol_id_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["screen", "--omop", str(_cdm(tmp_path)), "--as-of", "2024-06-01", "--out", str(tmp_path / "o"),
                                 "--protocol", "nct00000000"])
    assert result.exit_code == 1 and "unknown protocol id" in result.output


def test_a_bad_date_says_how_to_write_it(tmp_path: Path) -> None:
    result = runner.invoke(app, ["screen", "--omop", str(_cdm(tmp_path)), "--as-of", "06/01/2024", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "YYYY-MM-DD" in result.output

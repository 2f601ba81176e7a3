"""``trialdesk screen`` from the informatics team's side: files out, clear refusals, nothing half-written."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.eligibility.helpers import person
from trialdesk.cli import app
from trialdesk.sources.omop import OmopError, spark_driver_memory
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


def test_screen_writes_funnel_statuses_evidence_candidates_and_quality(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["screen", "--omop", str(_cdm(tmp_path)), "--as-of", "2024-06-01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["candidates.csv", "evidence.parquet", "funnel.csv", "quality.csv",
                                                     "statuses.parquet"]
    funnel = list(csv.DictReader((out / "funnel.csv").open()))
    assert list(funnel[0]) == ["criterion_id", "met", "not_met", "unknown", "needs_review", "remaining"]
    order = ["I1", "I2", "I3", "I4", *[f"E{i}" for i in range(1, 12)]]
    assert [r["criterion_id"] for r in funnel] == order
    assert funnel[0]["remaining"] == "2"  # the 14-year-old is out at I1
    statuses = pq.read_table(out / "statuses.parquet")
    assert statuses.column_names == ["person_id", "overall", *order]
    assert statuses["person_id"].to_pylist() == [1, 2, 3]  # every person, once
    assert statuses["E3"].to_pylist() == ["not_met", "met", "not_met"] and statuses["I1"].to_pylist()[2] == "not_met"
    assert statuses["overall"].to_pylist() == ["needs_review", "not_eligible", "not_eligible"]
    assert pa.types.is_dictionary(statuses.schema.field("E3").type)
    # evidence for the candidates only, by default: person 1
    evidence = pq.read_table(out / "evidence.parquet").to_pylist()
    assert {e["person_id"] for e in evidence} == {1}
    assert {"person_id", "criterion_id", "table", "record_id", "date", "code", "value", "unit", "note"} <= set(evidence[0])
    candidates = list(csv.DictReader((out / "candidates.csv").open()))
    assert [c["person_id"] for c in candidates] == ["1"]
    assert list(csv.DictReader((out / "quality.csv").open())) == []  # a clean database


def test_evidence_all_cites_every_persons_records(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["screen", "--omop", str(_cdm(tmp_path)), "--as-of", "2024-06-01", "--out", str(out),
                                 "--evidence", "all"])
    assert result.exit_code == 0, result.output
    evidence = pq.read_table(out / "evidence.parquet").to_pylist()
    # the SpO2 that excludes person 2 is cited as a typed record
    e3 = [e for e in evidence if e["person_id"] == 2 and e["criterion_id"] == "E3"]
    assert e3[0]["table"] == "measurement" and e3[0]["value"] == 85.0 and e3[0]["unit"] == "%"
    assert {e["person_id"] for e in evidence} == {1, 2, 3}


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


@pytest.mark.spark
def test_spark_running_out_of_memory_is_one_line_with_what_to_try_and_nothing_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trialdesk.sources.omop import spark_session

    jvm = spark_session()._jvm

    def exhausted(*_args: object) -> None:  # a real java.lang.OutOfMemoryError from Spark's driver, as at 100,000 persons
        jvm.java.lang.reflect.Array.newInstance(jvm.java.lang.Long.TYPE, 2**31 - 16)

    monkeypatch.setattr("trialdesk.eligibility.screen.flat_evidence", exhausted)
    out = tmp_path / "new" / "out"
    result = runner.invoke(app, ["screen", "--omop", str(_cdm(tmp_path)), "--as-of", "2024-06-01", "--out", str(out)])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: Spark's driver ran out of memory while writing the outputs")
    assert "java.lang.OutOfMemoryError" in lines[0] and "TRIALDESK_SPARK_DRIVER_MEMORY" in lines[0]
    assert "nothing was written" in lines[0]
    assert not (tmp_path / "new").exists()  # not even the folders made for the files


def test_a_failure_after_the_screen_leaves_an_existing_output_folder_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("trialdesk.eligibility.screen.flat_evidence", broken)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["screen", "--omop", str(_cdm(tmp_path)), "--as-of", "2024-06-01", "--out", str(out)])
    assert isinstance(result.exception, RuntimeError)  # not Spark's: a bug keeps its traceback
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_the_spark_driver_memory_is_a_setting_with_a_clear_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIALDESK_SPARK_DRIVER_MEMORY", raising=False)
    assert spark_driver_memory() == "4g"
    monkeypatch.setenv("TRIALDESK_SPARK_DRIVER_MEMORY", "12G")
    assert spark_driver_memory() == "12g"
    for bad in ("8 GB", "lots", "0g", "8"):
        monkeypatch.setenv("TRIALDESK_SPARK_DRIVER_MEMORY", bad)
        with pytest.raises(OmopError, match="give an amount of memory with its unit"):
            spark_driver_memory()

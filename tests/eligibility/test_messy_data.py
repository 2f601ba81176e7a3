"""Messy real extracts never stop a screen and never silently change an answer: each value
that cannot be read makes the persons and criteria it touches unknown where it matters,
everything else is screened, and quality.csv says what was found and what it did."""

from __future__ import annotations

import csv
import datetime as dt
import os
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.eligibility.helpers import AS_OF, person
from trialdesk.cli import app
from trialdesk.eligibility.screen import screen
from trialdesk.protocol.loader import load
from trialdesk.sources.omop import OmopError, open_omop
from trialdesk.sources.omop_builder import OmopBuilder
from trialdesk.sources.transfer import copy_to_postgres, drop_postgres_schema

PG_URL = os.environ.get("TRIALDESK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
D = dt.date
runner = CliRunner()


def _cdm(path: Path, build, *edits: str) -> Path:  # type: ignore[no-untyped-def]
    b = OmopBuilder()
    build(b)
    b.write(path)
    con = duckdb.connect(str(path))
    for sql in edits:
        con.execute(sql)
    con.close()
    return path


def _statuses(source: str | Path) -> tuple[dict[int, dict[str, str]], list[dict[str, str]]]:
    result = screen(open_omop(source), load("nct03929120"), AS_OF)
    table = result.statuses_table().to_pylist()
    quality = result.quality.to_arrow().to_pylist()
    return {r.pop("person_id"): r for r in table}, quality


def test_an_impossible_birth_date_keeps_the_person_and_ages_them_from_what_can_be_trusted(tmp_path: Path) -> None:
    def build(b: OmopBuilder) -> None:
        person(b, 1, birth=D(1971, 2, 1))
        person(b, 2, birth=D(2006, 6, 1))
        person(b, 3, birth=D(1980, 1, 1))

    path = _cdm(tmp_path / "cdm.duckdb", build,
                "UPDATE person SET day_of_birth = 29, birth_datetime = NULL WHERE person_id = 1",  # 29 February 1971
                "UPDATE person SET month_of_birth = 13, day_of_birth = 1, birth_datetime = NULL WHERE person_id = 2",
                "UPDATE person SET month_of_birth = 4, day_of_birth = 31, birth_datetime = NULL WHERE person_id = 3")
    statuses, quality = _statuses(path)
    assert statuses[1]["I1"] == "met"  # February 1971: 53 on 2024-06-01, whatever the day
    assert statuses[2]["I1"] == "unknown"  # 2006 and no month: 17 or 18
    assert statuses[3]["I1"] == "met"  # April 1980: 44
    problems = {(q["column"], q["problem"]): q for q in quality}
    assert problems[("day_of_birth", "impossible day of birth")]["persons"] == 2
    assert problems[("month_of_birth", "impossible month of birth")]["persons"] == 1


@pytest.mark.parametrize("text", ["12,5", "n/a", ">5", ""])
def test_a_lab_value_written_as_text_makes_only_that_criterion_unknown(tmp_path: Path, text: str) -> None:
    def build(b: OmopBuilder) -> None:
        person(b, 1)
        person(b, 2)

    path = _cdm(tmp_path / "cdm.duckdb", build,
                "ALTER TABLE measurement ALTER value_as_number TYPE VARCHAR",
                f"UPDATE measurement SET value_as_number = '{text}' WHERE person_id = 1 AND measurement_source_value = '718-7'")
    statuses, quality = _statuses(path)
    assert statuses[1]["E8"] == "unknown" and statuses[2]["E8"] == "not_met"
    assert statuses[1]["E3"] == statuses[2]["E3"] == "not_met"  # the SpO2 next to it is read
    if text:  # an empty text is no value at all, not an unreadable one
        (q,) = [q for q in quality if q["column"] == "value_as_number"]
        assert (q["table"], q["records"], q["persons"]) == ("measurement", 1, 1)


def test_the_unreadable_value_is_named_in_the_evidence(tmp_path: Path) -> None:
    path = _cdm(tmp_path / "cdm.duckdb", lambda b: person(b, 1),
                "ALTER TABLE measurement ALTER value_as_number TYPE VARCHAR",
                "UPDATE measurement SET value_as_number = '12,5' WHERE measurement_source_value = '718-7'")
    sheet = screen(open_omop(path), load("nct03929120"), AS_OF).for_person(1)
    e8 = next(c for c in sheet["criteria"] if c["id"] == "E8")
    assert any("'12,5' cannot be read as a number" in (e["note"] or "") for e in e8["evidence"])


def test_a_result_with_no_number_says_what_the_lab_sent(tmp_path: Path) -> None:
    """value_as_number empty, value_source_value '7.2' (an ETL that did not parse it): unknown, and the worksheet says
    why; with nothing sent either, the record is no result at all (nothing to cite), and E8 is unknown as well."""
    path = _cdm(tmp_path / "cdm.duckdb", lambda b: (person(b, 1), person(b, 2)),
                "UPDATE measurement SET value_as_number = NULL WHERE measurement_source_value = '718-7'",
                "UPDATE measurement SET value_source_value = CASE person_id WHEN 1 THEN '7.2' END"
                " WHERE measurement_source_value = '718-7'")
    result = screen(open_omop(path), load("nct03929120"), AS_OF)
    cited = {}
    for pid in (1, 2):
        e8 = next(c for c in result.for_person(pid)["criteria"] if c["id"] == "E8")
        assert e8["status"] == "unknown"
        cited[pid] = [e["note"] for e in e8["evidence"] if e["code"] == "718-7"]
    assert cited == {1: ["no number recorded: the result reads '7.2', which decides nothing"], 2: []}


@pytest.mark.postgres
def test_text_in_a_numeric_column_on_postgresql_is_read_like_duckdb(tmp_path: Path) -> None:
    path = _cdm(tmp_path / "cdm.duckdb", lambda b: (person(b, 1), person(b, 2)),
                "ALTER TABLE measurement ALTER value_as_number TYPE VARCHAR",
                "UPDATE measurement SET value_as_number = 'n/a' WHERE person_id = 1 AND measurement_source_value = '718-7'",
                "ALTER TABLE condition_occurrence ALTER condition_start_date TYPE VARCHAR")
    schema = f"trialdesk_messy_{uuid.uuid4().hex[:8]}"
    copy_to_postgres(open_omop(path), PG_URL, schema)
    try:
        assert _statuses(f"{PG_URL}?schema={schema}")[0] == _statuses(path)[0]
    finally:
        drop_postgres_schema(PG_URL, schema)


def test_a_record_with_no_date_makes_its_criterion_unknown_not_absent(tmp_path: Path) -> None:
    def build(b: OmopBuilder) -> None:
        person(b, 1)
        b.condition(1, D(2009, 2, 3), source_value="B20")  # HIV
        person(b, 2)
        b.condition(2, D(2010, 2, 3), source_value="B20")

    path = _cdm(tmp_path / "cdm.duckdb", build, "ALTER TABLE condition_occurrence ALTER condition_start_date DROP NOT NULL",
                "UPDATE condition_occurrence SET condition_start_date = NULL WHERE person_id = 1")
    statuses, quality = _statuses(path)
    assert statuses[1]["E7"] == "unknown" and statuses[2]["E7"] == "met"
    (q,) = [q for q in quality if q["table"] == "condition_occurrence"]
    assert (q["column"], q["records"], q["persons"]) == ("condition_start_date", 1, 1)


def test_a_missing_start_date_column_makes_its_criteria_unknown_never_not_met(tmp_path: Path) -> None:
    def build(b: OmopBuilder) -> None:
        person(b, 1)
        b.condition(1, D(2009, 2, 3), source_value="B20")
        person(b, 2)

    path = _cdm(tmp_path / "cdm.duckdb", build, "ALTER TABLE condition_occurrence DROP COLUMN condition_start_date")
    statuses, quality = _statuses(path)
    assert statuses[1]["E7"] == statuses[2]["E7"] == "unknown"
    assert statuses[1]["E2"] == "not_met"  # drugs are still read
    assert any(q["table"] == "condition_occurrence" and "E7" in q["effect"] for q in quality)


def test_a_drug_exposure_that_ends_before_it_starts_still_counts_on_its_start_day(tmp_path: Path) -> None:
    def build(b: OmopBuilder) -> None:
        person(b, 1)
        b.drug(1, D(2024, 5, 1), source_value="121191")

    path = _cdm(tmp_path / "cdm.duckdb", build, "UPDATE drug_exposure SET drug_exposure_end_date = DATE '2024-04-01'")
    statuses, quality = _statuses(path)
    assert statuses[1]["E2"] == "met"
    (q,) = [q for q in quality if q["table"] == "drug_exposure"]
    assert (q["column"], q["problem"], q["records"]) == ("drug_exposure_end_date", "ends before it starts", 1)


def test_a_person_row_given_twice_is_screened_once(tmp_path: Path) -> None:
    path = _cdm(tmp_path / "cdm.duckdb", lambda b: person(b, 1, birth=D(1970, 1, 1)),
                "INSERT INTO person SELECT * FROM person", )
    result = screen(open_omop(path), load("nct03929120"), AS_OF)
    assert result.statuses_table()["person_id"].to_pylist() == [1]
    assert result.statuses_table()["I1"].to_pylist() == ["met"]
    (q,) = [q for q in result.quality.to_arrow().to_pylist() if q["column"] == "person_id"]
    assert (q["records"], q["persons"]) == (2, 1)


def test_copies_of_a_person_that_disagree_on_the_birth_year_leave_the_age_unknown(tmp_path: Path) -> None:
    path = _cdm(tmp_path / "cdm.duckdb", lambda b: person(b, 1, birth=D(1970, 1, 1)),
                "INSERT INTO person SELECT * REPLACE (1990 AS year_of_birth) FROM person")
    assert _statuses(path)[0][1]["I1"] == "unknown"


def test_a_missing_table_leaves_an_any_met_by_another_table(tmp_path: Path) -> None:
    def build(b: OmopBuilder) -> None:
        person(b, 1)
        b.condition(1, D(2024, 5, 1), source_value="Z33.1")  # pregnant state

    path = _cdm(tmp_path / "cdm.duckdb", build, "DROP TABLE observation")
    statuses, _ = _statuses(path)
    assert statuses[1]["E9"] == "met"  # met OR unknown is met


def test_a_sqlite_file_a_single_parquet_file_and_a_newer_duckdb_file_get_clear_messages(tmp_path: Path,
                                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    sqlite3.connect(tmp_path / "cdm.sqlite").execute("CREATE TABLE person (person_id INTEGER)").connection.commit()
    with pytest.raises(OmopError, match="a SQLite database"):
        open_omop(tmp_path / "cdm.sqlite")
    pq.write_table(pa.table({"person_id": [1]}), tmp_path / "person.parquet")
    with pytest.raises(OmopError, match="single Parquet file; give the folder"):
        open_omop(tmp_path / "person.parquet")
    path = _cdm(tmp_path / "cdm.duckdb", lambda b: person(b, 1))
    import ibis.backends.duckdb as ibis_duckdb

    real = ibis_duckdb.Backend.raw_sql

    def newer(self, query, **kw):  # type: ignore[no-untyped-def]
        if str(query).startswith("ATTACH"):
            raise duckdb.IOException("IO Error: Trying to read a database file with version number 99, but we can only read "
                                     "version 64. The database file was created with a newer version of DuckDB.")
        return real(self, query, **kw)

    monkeypatch.setattr(ibis_duckdb.Backend, "raw_sql", newer)
    with pytest.raises(OmopError, match="probably written by a newer DuckDB: export it"):
        open_omop(path)


def test_a_bad_out_is_refused_before_any_work_and_nothing_is_written(tmp_path: Path) -> None:
    path = _cdm(tmp_path / "cdm.duckdb", lambda b: person(b, 1))
    a_file = tmp_path / "taken.txt"
    a_file.write_text("not a folder")
    for out, message in ((a_file, "is a file, not a folder"), (a_file / "sub", "is a file, so the folder cannot be made")):
        result = runner.invoke(app, ["screen", "--omop", str(path), "--as-of", "2024-06-01", "--out", str(out)])
        assert result.exit_code == 1 and message in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdm.duckdb", "taken.txt"]


def test_the_screen_writes_nothing_beside_its_output_folder(tmp_path: Path) -> None:
    """The files are assembled inside --out itself, so the final moves never cross filesystems."""
    path = _cdm(tmp_path / "cdm.duckdb", lambda b: person(b, 1))
    out = tmp_path / "prescreen"
    result = runner.invoke(app, ["screen", "--omop", str(path), "--as-of", "2024-06-01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdm.duckdb", "prescreen"]
    assert sorted(p.name for p in out.iterdir()) == ["candidates.csv", "evidence.parquet", "funnel.csv", "quality.csv",
                                                     "statuses.parquet"]
    assert list(csv.DictReader((out / "quality.csv").open())) == []


def test_an_absent_optional_column_or_vocabulary_table_is_in_quality_with_everyone_it_touches(tmp_path: Path) -> None:
    def build(b: OmopBuilder) -> None:
        person(b, 1)
        person(b, 2)
        b.condition(1, D(2024, 5, 1), source_value="J84.10")

    path = _cdm(tmp_path / "cdm.duckdb", build, "ALTER TABLE condition_occurrence DROP COLUMN condition_end_date",
                "DROP TABLE IF EXISTS concept_ancestor")
    _, quality = _statuses(path)
    by = {(q["table"], q["column"]): q for q in quality}
    assert by[("condition_occurrence", "condition_end_date")]["persons"] == 2
    absent = by[("concept_ancestor", "(table)")]
    assert absent["persons"] == 2 and "not descendants" in absent["effect"] and "not met" in absent["effect"]
    # a complete extract says nothing of the sort
    _, quality = _statuses(_cdm(tmp_path / "full.duckdb", build))
    assert not [q for q in quality if q["column"] in ("(table)", "condition_end_date")]

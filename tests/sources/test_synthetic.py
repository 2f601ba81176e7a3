from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from trialdesk.sources.commands import app
from trialdesk.sources.omop_builder import ALL_TABLES, CLINICAL_TABLES
from trialdesk.sources.planted import FIRST_RANDOM_PERSON_ID, add_months, planted_cases
from trialdesk.sources.synthetic import all_planted_cases, generate_omop
from trialdesk.sources.vocabulary import cdm_columns

AS_OF = dt.date(2024, 6, 1)
PERSONS = 20_000


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    path = tmp_path_factory.mktemp("synth") / "synth.duckdb"
    generate_omop(path, persons=PERSONS, seed=42, as_of=AS_OF)
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def one(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    row = con.execute(sql).fetchone()
    assert row is not None
    return float(row[0])


def test_every_cdm_table_is_written_with_the_standard_columns(db: duckdb.DuckDBPyConnection) -> None:
    for table in ALL_TABLES:
        cols = [r[0] for r in db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall()]
        assert cols == [c.name for c in cdm_columns()[table]], table


def test_every_person_is_in_person_once(db: duckdb.DuckDBPyConnection) -> None:
    n_planted = len(all_planted_cases(AS_OF))  # both trials' planted people
    assert db.execute("SELECT count(*), count(DISTINCT person_id) FROM person").fetchone() == (PERSONS + n_planted,) * 2
    assert one(db, f"SELECT count(*) FROM person WHERE person_id >= {FIRST_RANDOM_PERSON_ID}") == PERSONS
    for table in CLINICAL_TABLES:
        if table != "cdm_source":
            assert one(db, f"SELECT count(*) FROM {table} WHERE person_id NOT IN (SELECT person_id FROM person)") == 0, table


def test_rates_are_plausible(db: duckdb.DuckDBPyConnection) -> None:
    random = f"person_id >= {FIRST_RANDOM_PERSON_ID}"
    assert 0.45 <= one(db, f"SELECT avg((gender_concept_id = 8532)::int) FROM person WHERE {random}") <= 0.6
    ra = one(db, f"""SELECT count(DISTINCT person_id) FROM condition_occurrence WHERE {random} AND condition_concept_id IN
                     (SELECT descendant_concept_id FROM concept_ancestor WHERE ancestor_concept_id = 80809)""") / PERSONS
    assert 0.004 <= ra <= 0.02
    ild = one(db, f"""SELECT count(DISTINCT person_id) FROM condition_occurrence WHERE {random} AND condition_concept_id IN
                      (SELECT descendant_concept_id FROM concept_ancestor WHERE ancestor_concept_id = 4119786)""") / PERSONS
    assert 0.0005 <= ild <= 0.01
    for table, low, high in [("condition_occurrence", 10, 60), ("drug_exposure", 5, 60), ("measurement", 10, 80)]:
        assert low <= one(db, f"SELECT count(*) FROM {table} WHERE {random}") / PERSONS <= high, table
    abnormal = one(db, "SELECT avg((value_as_number > range_high OR value_as_number < range_low)::int) FROM measurement"
                       " WHERE range_high IS NOT NULL AND measurement_concept_id NOT IN (40762499)")
    assert 0.02 <= abnormal <= 0.1
    assert one(db, f"SELECT min(year_of_birth) FROM person WHERE {random}") >= AS_OF.year - 97
    unobserved = f"SELECT avg((person_id NOT IN (SELECT person_id FROM observation_period))::int) FROM person WHERE {random}"
    assert 0.005 <= one(db, unobserved) <= 0.05


def test_some_labs_come_in_other_units_and_a_few_in_units_nobody_converts(db: duckdb.DuckDBPyConnection) -> None:
    units = dict(db.execute("SELECT unit_source_value, count(*) FROM measurement GROUP BY 1").fetchall())
    assert units["umol/L"] > 0 and units["g/L"] > 0
    assert one(db, "SELECT count(*) FROM measurement WHERE unit_concept_id = 0 AND unit_source_value = 'see report'") > 0
    assert one(db, "SELECT count(*) FROM measurement WHERE measurement_concept_id = 40762499 AND value_as_number < 88") > 0


def test_every_concept_id_exists_in_concept(db: duckdb.DuckDBPyConnection) -> None:
    for table in CLINICAL_TABLES:
        for col in (c.name for c in cdm_columns()[table] if c.name.endswith("concept_id")):
            missing = one(db, f"SELECT count(*) FROM {table} WHERE {col} IS NOT NULL AND {col} != 0"
                              f" AND {col} NOT IN (SELECT concept_id FROM concept)")
            assert missing == 0, f"{table}.{col}"


def test_source_values_agree_with_their_concepts(db: duckdb.DuckDBPyConnection) -> None:
    for table, prefix, vocabularies in [("condition_occurrence", "condition", "('ICD10CM')"), ("drug_exposure", "drug", "('RxNorm')"),
                                        ("measurement", "measurement", "('LOINC')")]:
        bad = one(db, f"""SELECT count(*) FROM {table} t JOIN concept c ON c.concept_id = t.{prefix}_source_concept_id
                          WHERE c.concept_code != t.{prefix}_source_value OR c.vocabulary_id NOT IN {vocabularies}""")
        assert bad == 0, table
        # every coded record is mapped; only a record written as free text (a brand name in words) has no concept
        assert one(db, f"SELECT count(*) FROM {table} WHERE {prefix}_concept_id = 0 AND {prefix}_source_value NOT LIKE '% %'") == 0, table
    assert one(db, "SELECT count(*) FROM condition_occurrence WHERE condition_source_value NOT LIKE '%.%'") > 0  # e.g. I10, B20
    assert one(db, "SELECT avg((condition_source_value LIKE '%.%')::int) FROM condition_occurrence") > 0.8


def test_random_records_lie_within_observation_periods(db: duckdb.DuckDBPyConnection) -> None:
    outside = one(db, f"""SELECT count(*) FROM condition_occurrence c JOIN observation_period o USING (person_id)
                         WHERE c.person_id >= {FIRST_RANDOM_PERSON_ID}
                         AND (condition_start_date < observation_period_start_date
                              OR condition_start_date > observation_period_end_date)""")
    assert outside == 0
    assert db.execute("SELECT max(measurement_date) FROM measurement").fetchone() == (AS_OF,)


def test_planted_people_are_written_with_their_records(db: duckdb.DuckDBPyConnection) -> None:
    cases = {c.name: c for c in all_planted_cases(AS_OF)}  # both trials' planted people
    assert len(cases) == len(all_planted_cases(AS_OF))  # names are unique
    ids = [c.person_id for c in cases.values()]
    assert ids == list(range(1, len(ids) + 1)) and max(ids) < FIRST_RANDOM_PERSON_ID
    assert one(db, f"SELECT count(*) FROM person WHERE person_id < {FIRST_RANDOM_PERSON_ID}") == len(cases)
    rtx = cases["rituximab_on_window_start_day"].person_id
    assert db.execute(f"SELECT drug_exposure_start_date, drug_source_value FROM drug_exposure WHERE person_id = {rtx}"
                      ).fetchall() == [(add_months(AS_OF, -2), "121191")]
    spo2 = cases["spo2_87"].person_id
    assert db.execute(f"""SELECT value_as_number FROM measurement WHERE person_id = {spo2} AND measurement_concept_id = 40762499
                          ORDER BY measurement_date DESC LIMIT 1""").fetchone() == (87.0,)
    mi = cases["mi_exactly_6_months_before_first_infusion"].person_id
    mi_day = db.execute(f"SELECT condition_start_date FROM condition_occurrence WHERE person_id = {mi}").fetchone()
    assert mi_day == (dt.date(2023, 12, 15),)  # first infusion 2024-06-15 minus 6 calendar months
    nobody = cases["no_observation_period"].person_id
    assert one(db, f"SELECT count(*) FROM observation_period WHERE person_id = {nobody}") == 0


def test_planted_expected_statuses_name_real_criteria(protocol) -> None:  # type: ignore[no-untyped-def]
    criteria = {c.id for c in protocol.eligibility.criteria}
    for case in planted_cases(AS_OF):
        assert case.expected and set(case.expected) <= criteria, case.name
        assert set(case.expected.values()) <= {"met", "not_met", "unknown", "needs_review"}, case.name


def test_planted_dates_follow_the_as_of_date() -> None:
    cases = {c.name: c for c in planted_cases(dt.date(2024, 4, 30))}
    from trialdesk.sources.omop_builder import OmopBuilder

    b = OmopBuilder()
    cases["rituximab_on_window_start_day"].build(b)
    assert b.tables()["drug_exposure"].to_pylist()[0]["drug_exposure_start_date"] == dt.date(2024, 2, 29)  # month-end clamp


def test_the_same_seed_gives_the_same_database_and_another_seed_another(tmp_path: Path) -> None:
    paths = [tmp_path / f"{name}.duckdb" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (7, 7, 8), strict=True):
        generate_omop(path, persons=1500, seed=seed, as_of=AS_OF, chunk_persons=600)

    def content(path: Path) -> list[object]:
        con = duckdb.connect(str(path), read_only=True)
        try:
            return [con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ALL_TABLES]
        finally:
            con.close()

    a, b, c = (content(p) for p in paths)
    assert a == b
    assert a != c


def test_synth_omop_command_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "s.duckdb"
    runner = CliRunner()
    first = runner.invoke(app, ["omop", "--persons", "50", "--seed", "1", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert "measurement" in first.output
    again = runner.invoke(app, ["omop", "--persons", "50", "--seed", "1", "--out", str(out)])
    assert again.exit_code == 1 and "--force" in again.output
    forced = runner.invoke(app, ["omop", "--persons", "60", "--seed", "1", "--out", str(out), "--force", "--as-of", "2024-03-15"])
    assert forced.exit_code == 0, forced.output
    bad = runner.invoke(app, ["omop", "--persons", "5", "--seed", "1", "--out", str(tmp_path / "x.duckdb"), "--as-of", "15/03/2024"])
    assert bad.exit_code == 1 and "YYYY-MM-DD" in bad.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.duckdb"]

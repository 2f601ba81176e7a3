"""One implementation of each criterion, three backends: DuckDB, PostgreSQL and Spark
give identical statuses and evidence on the same data."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import duckdb
import pytest

from tests.eligibility.helpers import AS_OF, NORMAL_LABS, person
from trialdesk.eligibility.screen import screen
from trialdesk.protocol.loader import load
from trialdesk.sources.omop import open_omop
from trialdesk.sources.omop_builder import OmopBuilder
from trialdesk.sources.transfer import copy_to_parquet, copy_to_postgres, drop_postgres_schema

PG_URL = os.environ.get("TRIALDESK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
D = dt.date


def _mixed_population(path: Path) -> None:
    """A dozen people touching every kind of criterion and every status."""
    b = OmopBuilder()
    person(b, 1)
    b.condition(1, D(2024, 3, 1), source_value="J84.10")
    b.condition(1, D(2023, 5, 1), source_value="M34.1")
    person(b, 2, spo2=87.0, birth=(1990, 6))
    person(b, 3, birth=D(2006, 6, 1), sex="male")
    b.drug(3, D(2024, 4, 1), source_value="121191")
    person(b, 4, observed=False, sex=None)
    person(b, 5, labs=dict(NORMAL_LABS, **{"1742-6": (168.0, "U/L", 7.0, 56.0)}))
    b.condition(5, D(2023, 12, 15), source_value="I21.4")
    person(b, 6, labs={})
    b.condition(6, D(2022, 1, 10), source_value="J84.10")
    b.condition(6, D(2021, 6, 1), source_value="M05.79")
    b.drug(6, D(2023, 5, 15), D(2024, 5, 15), source_value="68149")
    person(b, 7, labs=dict(NORMAL_LABS, **{"2160-0": (150.0, "umol/L", 53.0, 106.0)}))
    b.measurement(7, D(2024, 5, 27), source_value="21198-7", value=25.0, unit="m[IU]/mL")
    person(b, 8, spo2=None)
    b.measurement(8, AS_OF, source_value="59408-5", value=60.0, unit="mm[Hg]")
    b.condition(8, D(2009, 2, 3), source_value="B18.2")
    # tagged by (concept id, source value): a pneumonia concept written as an MI code is both;
    # an empty concept id or source value leaves the other half to decide; both empty, nothing
    person(b, 9)
    b.condition(9, D(2024, 5, 11), concept_id=b._resolve("condition", None, "J18.9")[0], source_value="I21.4")
    person(b, 10)
    b.drug(10, D(2024, 5, 1), source_value="121191")
    person(b, 11)
    b.drug(11, D(2024, 5, 1), concept_id=b._resolve("drug", None, "121191")[0])
    person(b, 12)
    b.drug(12, D(2024, 5, 1), source_value="121191")
    b.write(path)
    with duckdb.connect(str(path)) as con:
        con.execute("ALTER TABLE drug_exposure ALTER COLUMN drug_concept_id DROP NOT NULL")
        con.execute("UPDATE drug_exposure SET drug_concept_id = NULL WHERE person_id IN (10, 12)")
        con.execute("UPDATE drug_exposure SET drug_source_value = NULL WHERE person_id = 12")


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("backends") / "cdm.duckdb"
    _mixed_population(path)
    return path


def _screen(source: str) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    result = screen(open_omop(source), load("nct03929120"), AS_OF)
    return result.person_criteria().to_pylist(), result.funnel()


@pytest.mark.postgres
def test_postgresql_gives_the_same_statuses_and_evidence_as_duckdb(population: Path) -> None:
    schema = f"trialdesk_test_{uuid.uuid4().hex[:8]}"
    copy_to_postgres(open_omop(population), PG_URL, schema)
    try:
        assert _screen(f"{PG_URL}?schema={schema}") == _screen(str(population))
    finally:
        drop_postgres_schema(PG_URL, schema)


@pytest.mark.spark
def test_spark_gives_the_same_statuses_and_evidence_as_duckdb(population: Path, tmp_path: Path) -> None:
    copy_to_parquet(open_omop(population), tmp_path / "parquet")
    assert _screen(f"spark:{tmp_path / 'parquet'}") == _screen(str(population))


def test_a_parquet_folder_screens_like_the_duckdb_file(population: Path, tmp_path: Path) -> None:
    copy_to_parquet(open_omop(population), tmp_path / "parquet")
    rows, funnel = _screen(str(tmp_path / "parquet"))
    assert (rows, funnel) == _screen(str(population))
    statuses = {(r["person_id"], r["criterion_id"]): r["status"] for r in rows}
    assert statuses[(2, "E3")] == "met" and statuses[(3, "E2")] == "met" and statuses[(4, "I2")] == "unknown"
    assert statuses[(9, "E4")] == "met" and statuses[(9, "E6")] == "met"
    assert [statuses[(p, "E2")] for p in (10, 11, 12)] == ["met", "met", "not_met"]


def test_a_screen_written_for_a_few_persons_gives_what_the_population_screen_gives(population: Path) -> None:
    """``screen(few=True)`` (one FHIR chart, a chunk of an export) spreads each table's slots by
    aggregation in one statement where the population screen materialises them and joins once per
    value set: the same statuses, deciding flags, quality counts, evidence and funnel, first run and
    re-run from the kept SQL alike."""
    from trialdesk.eligibility import compiler

    def answers(few: bool) -> tuple[object, ...]:
        result = screen(open_omop(population), load("nct03929120"), AS_OF, few=few)
        return (result.statuses.sort_by("person_id"), result.person_criteria().to_pylist(), result.funnel(),
                result.quality.to_arrow().to_pylist(), result.evidence("all").to_pylist(),
                result.evidence("candidates").to_pylist(), result.evidence([2, 5, 9, 12]).to_pylist())

    compiler._PREPARED.clear()
    joins, pivot = answers(False), answers(True)
    assert len(compiler._PREPARED) == 2  # each way keeps its own statements
    # one statement a table for the few (no per-set table), two for the population
    assert sorted(all(sets == "" for sets, _ in p.aggregate_sql.values()) for p in compiler._PREPARED.values()) == [False, True]
    assert pivot[0].schema == joins[0].schema and pivot == joins
    assert answers(True) == joins  # from the kept statements
    statuses = {(r["person_id"], r["criterion_id"]): r["status"] for r in pivot[1]}
    assert [statuses[(p, "E2")] for p in (10, 11, 12)] == ["met", "met", "not_met"]


@pytest.mark.postgres
def test_the_value_at_the_latest_key_is_the_same_on_postgresql_as_on_duckdb() -> None:
    """PostgreSQL has no arg_max: the engine packs key and value into one number there. Its
    answers must be DuckDB's: NULL keys and NULL values skipped, the rows filtered, the
    extremes of 64-bit keys and values and a small integer value kept exact."""
    import ibis
    import pyarrow as pa

    from trialdesk.eligibility.leaves import native_arg

    lo, hi = -(1 << 63), (1 << 63) - 1
    data = pa.table({
        "g": [1, 1, 1, 1, 2, 2, 3, 3, 4, 5, 5],
        "k": [10, 20, None, 5, 7, 3, lo, hi, 1, 2, 9],
        "x": pa.array([1, None, 3, 4, None, None, hi, lo, 8, -2, -1], pa.int64()),
        "s": pa.array([1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3], pa.int8()),
        "w": [True, True, True, True, True, True, True, True, False, True, True],
    })

    def answers(con: ibis.BaseBackend, backend: str) -> list[dict[str, object]]:
        t = con.create_table(f"argtest_{uuid.uuid4().hex[:8]}", obj=ibis.memtable(data), temp=True)
        q = t.group_by("g").aggregate(
            last=native_arg("arg_max", backend, t.x, t.k, t.w), first=native_arg("arg_min", backend, t.x, t.k, t.w),
            last_s=native_arg("arg_max", backend, t.s, t.k, t.w & (t.k < 10)),
            first_s=native_arg("arg_min", backend, t.s, t.k, t.w))
        return sorted(q.to_pyarrow().to_pylist(), key=lambda r: r["g"])

    expected = answers(ibis.duckdb.connect(), "duckdb")
    assert expected[0] == {"g": 1, "last": 1, "first": 4, "last_s": 4, "first_s": 4}
    assert expected[4] == {"g": 5, "last": -1, "first": -2, "last_s": 3, "first_s": 2}
    pg = ibis.connect(PG_URL)
    try:
        assert answers(pg, "postgres") == expected
    finally:
        pg.disconnect()

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from trialdesk.protocol.loader import load_value_sets
from trialdesk.sources.omop_builder import ALL_TABLES, OmopBuilder
from trialdesk.sources.vocabulary import LOCAL_ID_START, cdm_columns, default_vocabulary
from trialdesk.terminology.products import products as rxnorm_products

D = dt.date


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", [table]
    ).fetchall()]


def test_an_empty_builder_writes_every_cdm_table_with_the_standard_columns(tmp_path: Path) -> None:
    OmopBuilder().write(tmp_path / "empty.duckdb")
    con = duckdb.connect(str(tmp_path / "empty.duckdb"), read_only=True)
    assert {r[0] for r in con.execute("SHOW TABLES").fetchall()} == set(ALL_TABLES)
    for table in ALL_TABLES:
        assert _columns(con, table) == [(c.name, c.type) for c in cdm_columns()[table]], table
    assert con.execute("SELECT count(*) FROM person").fetchone() == (0,)
    assert con.execute("SELECT cdm_version FROM cdm_source").fetchone() == ("v5.4",)


def test_the_column_list_is_cdm_v5_4() -> None:
    cols = cdm_columns()
    assert set(cols) == set(ALL_TABLES)
    assert [c.name for c in cols["person"]][:3] == ["person_id", "gender_concept_id", "year_of_birth"]
    assert "unit_source_concept_id" in [c.name for c in cols["measurement"]]  # new in v5.4
    assert "discharged_to_concept_id" in [c.name for c in cols["visit_occurrence"]]  # renamed in v5.4


def test_source_values_are_filled_like_an_etl(tmp_path: Path) -> None:
    b = OmopBuilder()
    b.person(1, birth=D(1970, 5, 2), sex="female")
    b.condition(1, D(2024, 4, 2), source_value="M05.10")
    b.drug(1, D(2024, 3, 1), source_value="121191")
    b.measurement(1, D(2024, 5, 28), source_value="2160-0", value=150.0, unit="umol/L", range_low=45.0, range_high=97.0)
    b.measurement(1, D(2024, 5, 28), source_value="1742-6", value=30.0, unit="see report")
    con = duckdb.connect()
    b.write(con)
    cond = con.execute("""SELECT condition_concept_id, s.vocabulary_id, s.concept_code, condition_source_value
                          FROM condition_occurrence JOIN concept s ON s.concept_id = condition_source_concept_id""").fetchone()
    assert cond == (4028118, "ICD10CM", "M05.10", "M05.10")  # rheumatoid lung disease, from the ICD-10-CM code with its dot
    assert con.execute("SELECT drug_concept_id, drug_source_value FROM drug_exposure").fetchone() == (1314273, "121191")
    units = con.execute("SELECT unit_source_value, unit_concept_id FROM measurement ORDER BY measurement_id").fetchall()
    assert units == [("umol/L", 8749), ("see report", 0)]


def test_an_unknown_code_gets_concept_zero_and_a_record_needs_a_code() -> None:
    b = OmopBuilder()
    b.condition(1, D(2024, 1, 1), source_value="X99.9")
    row = b.tables()["condition_occurrence"].to_pylist()[0]
    assert (row["condition_concept_id"], row["condition_source_concept_id"], row["condition_source_value"]) == (0, 0, "X99.9")
    with pytest.raises(ValueError, match="needs a concept_id, a source_value"):
        b.drug(1, D(2024, 1, 1))


def test_birth_year_and_month_only_leaves_the_day_empty() -> None:
    b = OmopBuilder()
    b.person(7, birth=(1990, 3), sex=None)
    row = b.tables()["person"].to_pylist()[0]
    assert (row["year_of_birth"], row["month_of_birth"], row["day_of_birth"], row["birth_datetime"]) == (1990, 3, None, None)
    assert row["gender_concept_id"] == 0


def test_record_ids_are_numbered_per_table() -> None:
    b = OmopBuilder(first_ids={"condition_occurrence": 100})
    b.condition(1, D(2024, 1, 1), source_value="I10").condition(1, D(2024, 1, 2), source_value="I10")
    b.observation_period(1, D(2020, 1, 1), D(2024, 1, 1))
    assert [r["condition_occurrence_id"] for r in b.tables()["condition_occurrence"].to_pylist()] == [100, 101]
    assert b.next_ids()["observation_period"] == 2


def test_write_replaces_an_existing_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    OmopBuilder().person(1, birth=D(1980, 1, 1)).write(path)
    OmopBuilder().person(2, birth=D(1980, 1, 1)).person(3, birth=D(1980, 1, 1)).write(path)
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT list(person_id ORDER BY person_id) FROM person").fetchone() == ([2, 3],)
    assert [p.name for p in tmp_path.iterdir()] == ["db.duckdb"]


def test_concept_ancestor_holds_each_standard_concept_and_the_subset_hierarchy() -> None:
    con = duckdb.connect()
    OmopBuilder().write(con)
    self_rows = con.execute("""SELECT count(*) FROM concept c LEFT JOIN concept_ancestor a
                               ON a.ancestor_concept_id = c.concept_id AND a.descendant_concept_id = c.concept_id
                               AND a.min_levels_of_separation = 0
                               WHERE c.standard_concept = 'S' AND a.ancestor_concept_id IS NULL""").fetchone()
    assert self_rows == (0,)
    sql = "SELECT ancestor_concept_id FROM concept_ancestor WHERE descendant_concept_id = 4028118"
    ancestors = {r[0] for r in con.execute(sql).fetchall()}
    assert ancestors == {4028118, 80809, 4119786}  # rheumatoid lung disease is under RA and under ILD
    rtx = con.execute("""SELECT count(*) FROM concept_ancestor a JOIN concept c ON c.concept_id = a.descendant_concept_id
                         WHERE a.ancestor_concept_id = 1314273 AND c.concept_class_id = 'Clinical Drug'""").fetchone()
    assert rtx == (1,)
    maps = con.execute("""SELECT concept_id_2 FROM concept_relationship r JOIN concept c ON c.concept_id = r.concept_id_1
                          WHERE c.vocabulary_id = 'ICD10CM' AND c.concept_code = 'J84.9' AND relationship_id = 'Maps to'""").fetchall()
    assert maps == [(4119786,)]


def test_every_value_set_code_has_a_concept() -> None:
    vocab = default_vocabulary()
    missing = []
    products = {p.rxcui for p in rxnorm_products()}
    for vs in load_value_sets().values():
        for code in [*vs.codes, *vs.excluded]:
            if code.system == "OMOP":
                found = int(code.code) in vocab.by_id
            elif code.system == "ICD10CM" and ("-" in code.code or code.code.isdigit()):
                continue  # blocks (C00-C14) and chapters (15) of ICD-10-CM are not OMOP concepts
            elif code.system == "RxNorm" and not code.include_descendants and code.code in products:
                continue  # products folded in from terminology/data/rxnorm_products.csv, not the vocabulary subset
            else:
                found = vocab.code({"LOCAL": "LOCAL"}.get(code.system, code.system), code.code) is not None
            if not found:
                missing.append(f"{vs.id}: {code.system} {code.code}")
    assert missing == []


def test_value_set_omop_ids_are_kept_and_invented_concepts_are_site_local() -> None:
    vocab = default_vocabulary()
    assert vocab.code("SNOMED", "233703007").concept_id == 4119786  # type: ignore[union-attr]
    assert vocab.code("RxNorm", "121191").concept_id == 1314273  # type: ignore[union-attr]
    for c in vocab.concepts:
        assert (c.source == "local") == (c.concept_id >= LOCAL_ID_START), c
        if c.vocabulary_id == "ICD10CM":
            assert c.standard_concept is None and c.maps_to is not None, c

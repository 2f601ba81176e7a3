"""Which value sets a record belongs to: by its concept, by its source value, or both.

The single pass joins each table once with a key table made from its distinct (concept id,
source value) pairs. These are the cases that join could get wrong: a record coded as one
thing and written as another belongs to both sets; a record found both ways for the same set
is one record; a missing concept id or source value leaves the other half to decide.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from tests.eligibility.helpers import AS_OF, person, screened
from trialdesk.eligibility.screen import ScreenResult, screen
from trialdesk.protocol.loader import load
from trialdesk.sources.omop import open_omop
from trialdesk.sources.omop_builder import OmopBuilder

D = dt.date
MAY_11 = D(2024, 5, 11)  # three weeks before screening: an active infection, and an MI within 6 months


def _by_criterion(result: ScreenResult, criterion: str) -> dict[int, dict[str, object]]:
    return {r["person_id"]: r for r in result.person_criteria().to_pylist() if r["criterion_id"] == criterion}


def _null_out(path: Path, table: str, column: str, person_id: int) -> None:
    """As an extract may have it (a CDM without the NOT NULL constraint): the column empty
    (NULL, not 0) in that person's records."""
    with duckdb.connect(str(path)) as con:
        con.execute(f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL")
        con.execute(f"UPDATE {table} SET {column} = NULL WHERE person_id = ?", [person_id])


def test_a_pneumonia_concept_written_as_an_mi_code_is_both_an_infection_and_an_mi(tmp_path: Path) -> None:
    """The concept says pneumonia (E4, active infection); the site's code, I21.4, says
    myocardial infarction (E6). The record is evidence for both, once each."""
    def build(b: OmopBuilder) -> None:
        pneumonia = b._resolve("condition", None, "J18.9")[0]
        person(b, 1)
        b.condition(1, MAY_11, concept_id=pneumonia, source_value="I21.4")
        person(b, 2)
        b.condition(2, MAY_11, source_value="J18.9")  # pneumonia both ways, nothing else
        person(b, 3)
    result = screened(tmp_path, build)
    e4, e6 = _by_criterion(result, "E4"), _by_criterion(result, "E6")
    assert e4[1]["status"] == "met" and e6[1]["status"] == "met"
    assert e4[2]["status"] == "met" and e6[2]["status"] != "met"
    assert e6[2]["status"] == e6[3]["status"]  # pneumonia is no MI: as if there were no record
    cited_e4 = [(e["table"], e["date"], e["record_id"]) for e in e4[1]["evidence"]]
    cited_e6 = [(e["table"], e["date"], e["record_id"]) for e in e6[1]["evidence"]]
    assert cited_e4 == cited_e6 and len(cited_e4) == 1 and cited_e4[0][:2] == ("condition_occurrence", "2024-05-11")


def test_a_missing_concept_id_or_source_value_leaves_the_other_to_decide(tmp_path: Path) -> None:
    """Rituximab in the last two months excludes (E2): found by its source code when the
    concept id is empty, by its concept when the source value is empty; a record with
    neither is nobody's rituximab."""
    b = OmopBuilder()
    rituximab = b._resolve("drug", None, "121191")[0]
    person(b, 1)
    b.drug(1, D(2024, 5, 1), source_value="121191")  # concept id emptied below
    person(b, 2)
    b.drug(2, D(2024, 5, 1), concept_id=rituximab)  # no source value
    person(b, 3)
    b.drug(3, D(2024, 5, 1), source_value="121191")  # both emptied below
    person(b, 4)
    b.drug(4, D(2024, 5, 1), source_value="121191")  # both ways: the same record once
    path = tmp_path / "cdm.duckdb"
    b.write(path)
    _null_out(path, "drug_exposure", "drug_concept_id", 1)
    _null_out(path, "drug_exposure", "drug_concept_id", 3)
    _null_out(path, "drug_exposure", "drug_source_value", 3)
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT person_id, drug_concept_id, drug_source_value FROM drug_exposure ORDER BY person_id").fetchall()
    assert rows[0][1] is None and rows[1][2] is None and rows[2][1:] == (None, None)
    result = screen(open_omop(path), load("nct03929120"), AS_OF)
    e2 = _by_criterion(result, "E2")
    assert {pid: e2[pid]["status"] for pid in (1, 2, 3, 4)} == {1: "met", 2: "met", 3: "not_met", 4: "met"}
    for pid in (1, 2, 4):
        assert [(e["table"], e["date"]) for e in e2[pid]["evidence"]] == [("drug_exposure", "2024-05-01")]
    assert e2[3]["evidence"] == []

"""Evidence is looked up after the statuses, only for the persons someone reads; a person's
evidence is the same whichever way it was asked for."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from tests.eligibility.helpers import AS_OF, NORMAL_LABS, person
from trialdesk.cli import app
from trialdesk.eligibility.screen import screen
from trialdesk.protocol.loader import load
from trialdesk.sources.omop import open_omop
from trialdesk.sources.omop_builder import OmopBuilder

D = dt.date
runner = CliRunner()


def _cdm(path: Path) -> Path:
    b = OmopBuilder()
    person(b, 1)  # a candidate: established RA-ILD on mycophenolate
    b.condition(1, D(2022, 1, 10), source_value="J84.10")
    b.condition(1, D(2021, 6, 1), source_value="M05.79")
    b.drug(1, D(2023, 5, 15), D(2024, 5, 15), source_value="68149")
    person(b, 2, spo2=86.0)  # excluded by E3
    b.condition(2, D(2024, 3, 1), source_value="J84.10")
    person(b, 3, labs=dict(NORMAL_LABS, **{"1742-6": (168.0, "U/L", 7.0, 56.0)}))  # excluded by E8 (ALT)
    b.drug(3, D(2024, 4, 20), source_value="121191")
    b.write(path)
    return path


def _rows(table) -> list[tuple]:  # type: ignore[no-untyped-def]
    return sorted((tuple(sorted(r.items(), key=lambda kv: kv[0])) for r in table.to_pylist()), key=repr)


def test_a_persons_evidence_is_the_same_for_candidates_everyone_and_that_person_alone(tmp_path: Path) -> None:
    path = _cdm(tmp_path / "cdm.duckdb")
    result = screen(open_omop(path), load("nct03929120"), AS_OF)
    assert result.candidate_ids() == [1]
    everyone = result.evidence("all")
    for pid in (1, 2, 3):
        alone = result.evidence([pid])
        assert alone.num_rows > 0
        assert _rows(alone) == _rows(everyone.filter(everyone["person_id"].to_numpy() == pid))
    candidates = result.evidence("candidates")
    assert _rows(candidates) == _rows(result.evidence([1]))
    # and from a fresh screen asked for one person only (trialdesk explain)
    again = screen(open_omop(path), load("nct03929120"), AS_OF)
    assert _rows(again.evidence([2])) == _rows(result.evidence([2]))


def test_explain_prints_one_persons_worksheet_with_the_records_that_decided(tmp_path: Path) -> None:
    path = _cdm(tmp_path / "cdm.duckdb")
    result = runner.invoke(app, ["explain", "--omop", str(path), "--as-of", str(AS_OF), "--person", "2", "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    sheet = json.loads(result.output)
    assert sheet["overall"] == "not_eligible"
    e3 = next(c for c in sheet["criteria"] if c["id"] == "E3")
    assert e3["status"] == "met" and e3["evidence"][0]["value"] == 86.0
    out = tmp_path / "explain.html"
    result = runner.invoke(app, ["explain", "--omop", str(path), "--as-of", str(AS_OF), "--person", "2", "--format", "html",
                                 "--out", str(out)])
    assert result.exit_code == 0 and "86" in out.read_text()
    missing = runner.invoke(app, ["explain", "--omop", str(path), "--as-of", str(AS_OF), "--person", "99"])
    assert missing.exit_code == 1 and "--person 99: no such person_id" in missing.output


def test_the_screen_file_and_explain_agree(tmp_path: Path) -> None:
    path = _cdm(tmp_path / "cdm.duckdb")
    out = tmp_path / "out"
    assert runner.invoke(app, ["screen", "--omop", str(path), "--as-of", str(AS_OF), "--out", str(out)]).exit_code == 0
    written = [r for r in pq.read_table(out / "evidence.parquet").to_pylist() if r["person_id"] == 1]
    sheet = screen(open_omop(path), load("nct03929120"), AS_OF).for_person(1)
    from_sheet = [dict(e, criterion_id=c["id"]) for c in sheet["criteria"] for e in c["evidence"]]
    assert sorted((r["criterion_id"], r["table"], r["record_id"], r["note"]) for r in written) == \
        sorted((r["criterion_id"], r["table"], r["record_id"], r["note"]) for r in from_sheet)

"""The synthetic hospital plants people at every criterion's boundary; the screen must
give each the status its case was planted for, whatever the screening date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from trialdesk.eligibility.screen import screen
from trialdesk.protocol.loader import load
from trialdesk.sources.omop import open_omop
from trialdesk.sources.synthetic import generate_omop, planted_cases


@pytest.mark.parametrize("as_of", [dt.date(2024, 6, 1), dt.date(2024, 4, 30), dt.date(2025, 1, 31)])
def test_every_planted_person_gets_the_status_of_their_case(tmp_path: Path, as_of: dt.date) -> None:
    path = tmp_path / "hospital.duckdb"
    generate_omop(path, persons=300, seed=7, as_of=as_of)
    rows = screen(open_omop(path), load("nct03929120"), as_of).person_criteria().to_pylist()
    got = {(r["person_id"], r["criterion_id"]): r["status"] for r in rows}
    wrong = [f"{case.person_id} {case.name}: {cid} expected {want}, got {got[(case.person_id, cid)]}"
             for case in planted_cases(as_of) for cid, want in case.expected.items() if got[(case.person_id, cid)] != want]
    assert not wrong, "\n".join(wrong)

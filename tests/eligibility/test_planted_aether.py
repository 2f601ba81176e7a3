"""The synthetic hospital plants people for AETHER too: the screen of NCT02013700, with its folder's value
sets, gives each planted person the status of their case, whatever the screening date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from trialdesk.eligibility.screen import screen
from trialdesk.protocol.loader import load, protocol_value_sets
from trialdesk.sources.omop import open_omop
from trialdesk.sources.synthetic import FIRST_RANDOM_PERSON_ID, aether_cases, all_planted_cases, generate_omop, planted_cases


@pytest.mark.parametrize("as_of", [dt.date(2024, 6, 1), dt.date(2025, 2, 28)])
def test_every_aether_planted_person_gets_the_status_of_their_case(tmp_path: Path, as_of: dt.date) -> None:
    path = tmp_path / "hospital.duckdb"
    generate_omop(path, persons=100, seed=7, as_of=as_of)
    result = screen(open_omop(path), load("nct02013700"), as_of, value_sets=protocol_value_sets("nct02013700"))
    got = {(r["person_id"], r["criterion_id"]): r["status"] for r in result.person_criteria().to_pylist()}
    cases = aether_cases(as_of, len(planted_cases(as_of)) + 1)
    wrong = [f"{case.person_id} {case.name}: {cid} expected {want}, got {got[(case.person_id, cid)]}"
             for case in cases for cid, want in case.expected.items() if got[(case.person_id, cid)] != want]
    assert not wrong, "\n".join(wrong)


def test_aethers_people_follow_the_first_trials_below_the_random_population() -> None:
    as_of = dt.date(2024, 6, 1)
    ids = [c.person_id for c in all_planted_cases(as_of)]
    assert ids == list(range(1, len(ids) + 1)) and ids[-1] < FIRST_RANDOM_PERSON_ID
    assert len({c.name for c in all_planted_cases(as_of)}) == len(ids)

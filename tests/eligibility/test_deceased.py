"""A person recorded as dead on or before the screening date is no candidate, whatever the criteria say: the OMOP
``death`` table and FHIR ``Patient.deceased[x]`` are read by the same rule. A death after the screening date (a
screen run as of an earlier day) changes nothing; a death record with no readable date may be before it, so the
person cannot be eligible until somebody checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.eligibility.helpers import AS_OF, person, screened
from tests.sources.referral import referral
from trialdesk.eligibility.screen import Death
from trialdesk.eligibility.worksheet import check_fhir
from trialdesk.protocol.loader import load
from trialdesk.sources.omop import open_omop

FHIR_AS_OF = dt.date(2025, 3, 1)


def candidate(b: Any, pid: int) -> None:
    """New SSc-ILD, a negative hCG, a clean panel: only the investigator's attestations remain."""
    person(b, pid)
    b.measurement(pid, dt.date(2024, 5, 28), source_value="21198-7", value=1.0, unit="[IU]/L")
    b.condition(pid, dt.date(2024, 3, 1), source_value="J84.10")
    b.condition(pid, dt.date(2023, 5, 1), source_value="M34.1")


def four_people(b: Any) -> None:
    for pid in (1, 2, 3, 4):
        candidate(b, pid)
    b.death(1, AS_OF - dt.timedelta(days=30))  # died a month before screening
    b.death(2, AS_OF)  # died on the screening date
    b.death(3, AS_OF + dt.timedelta(days=1))  # died the day after: alive on the screening date


def test_a_person_dead_on_or_before_the_screening_date_is_not_eligible_and_no_candidate(tmp_path: Path) -> None:
    result = screened(tmp_path, four_people)
    overall = dict(zip(*result.overall().to_pydict().values(), strict=True))
    assert overall[1] == overall[2] == "not_eligible"
    assert overall[3] == overall[4] == "needs_review"  # the same chart, alive on the screening date
    # every person keeps a row, and the criteria keep their own truth: death is not one of them
    rows = {r["person_id"]: r for r in result.statuses_table().to_pylist()}
    assert len(rows) == 4 and rows[1]["overall"] == "not_eligible"
    assert not any(v == "met" for k, v in rows[1].items() if k.startswith("E"))
    assert set(result.candidates()["person_id"].to_pylist()) == {3, 4}
    funnel = result.funnel()
    assert funnel[0] == {"criterion_id": "ALIVE", "met": 2, "not_met": 2, "unknown": 0, "needs_review": 0, "remaining": 2}
    assert funnel[-1]["remaining"] == 2
    assert any("2 person(s) recorded as dead on or before 2024-06-01" in n for n in result.notes)
    sheet = result.for_person(1)
    assert sheet["overall"] == "not_eligible" and sheet["death"] == Death(AS_OF - dt.timedelta(days=30))
    assert result.for_person(3)["death"] is None


def test_no_death_recorded_adds_no_funnel_row(tmp_path: Path) -> None:
    result = screened(tmp_path, lambda b: person(b, 1))
    assert result.funnel()[0]["criterion_id"] == "I1"
    assert result.for_person(1)["death"] is None


def _cdm_with_death(tmp_path: Path, columns: str, rows: list[tuple[Any, ...]], people: tuple[int, ...] = (1, 2)) -> Path:
    """Candidates whose CDM has a death table as a messy extract ships it (``columns``: its SQL column list)."""
    path = tmp_path / "cdm.duckdb"
    from trialdesk.sources.omop_builder import OmopBuilder

    b = OmopBuilder()
    for pid in people:
        candidate(b, pid)
    b.write(path)
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE death")
    con.execute(f"CREATE TABLE death ({columns})")
    for row in rows:
        con.execute(f"INSERT INTO death VALUES ({', '.join('?' for _ in row)})", list(row))
    con.close()
    return path


def test_a_death_record_with_no_readable_date_keeps_the_person_from_being_eligible(tmp_path: Path) -> None:
    from trialdesk.eligibility.screen import screen

    # messy: dates as text, one unreadable
    path = _cdm_with_death(tmp_path, "person_id BIGINT, death_date VARCHAR", [(1, "unknown")])
    result = screen(open_omop(path), load("nct03929120"), AS_OF)
    assert result.for_person(1)["death"] == Death(None)
    assert result.funnel()[0] == {"criterion_id": "ALIVE", "met": 1, "not_met": 0, "unknown": 1, "needs_review": 0,
                                  "remaining": 2}
    assert set(result.candidates()["person_id"].to_pylist()) == {1, 2}  # a person must check, not the engine drop


def test_a_death_table_without_its_columns_is_not_used_and_said(tmp_path: Path) -> None:
    from trialdesk.eligibility.screen import screen

    # as some real extracts ship it: positional names, and no header in the first row
    path = _cdm_with_death(tmp_path, "column0 VARCHAR, column1 VARCHAR", [("1", "2020-01-01")], people=(1,))
    result = screen(open_omop(path), load("nct03929120"), AS_OF)
    assert result.overall()["overall"].to_pylist() == ["needs_review"]
    assert any("table 'death' lacks person_id, death_date; it is not used" in n for n in result.notes)


def _death_as_loaded(tmp_path: Path, rows: list[tuple[str, ...]]) -> Path:
    """The death table of an extract loaded from a CSV file without reading its header (positional names)."""
    return _cdm_with_death(tmp_path, ", ".join(f"column{i} VARCHAR" for i in range(len(rows[0]))), list(rows))


CDM_DEATH_HEADER = ("PERSON_ID", "DEATH_DATE", "DEATH_DATETIME", "DEATH_TYPE_CONCEPT_ID", "CAUSE_CONCEPT_ID",
                    "CAUSE_SOURCE_VALUE", "CAUSE_SOURCE_CONCEPT_ID")


def test_a_death_table_whose_header_was_loaded_as_its_first_row_is_read_by_those_names(tmp_path: Path) -> None:
    from trialdesk.eligibility.screen import screen

    died = (AS_OF - dt.timedelta(days=10)).isoformat()
    path = _death_as_loaded(tmp_path, [CDM_DEATH_HEADER, ("1", died, "", "32817", "0", "", "0")])
    result = screen(open_omop(path), load("nct03929120"), AS_OF)
    overall = dict(zip(*result.overall().to_pydict().values(), strict=True))
    assert overall == {1: "not_eligible", 2: "needs_review"}
    assert result.for_person(1)["death"] == Death(AS_OF - dt.timedelta(days=10))
    assert any("table 'death' has positional column names" in n and "header was loaded as data" in n
               for n in result.notes)
    assert not any("it is not used" in n for n in result.notes)


def test_a_death_table_holding_only_its_header_records_no_death(tmp_path: Path) -> None:
    """Eunomia ships its death table so: one row, the column names."""
    from trialdesk.eligibility.screen import screen

    result = screen(open_omop(_death_as_loaded(tmp_path, [CDM_DEATH_HEADER])), load("nct03929120"), AS_OF)
    assert result.overall()["overall"].to_pylist() == ["needs_review", "needs_review"]
    assert result.funnel()[0]["criterion_id"] == "I1"  # nobody is recorded dead: no ALIVE row


def test_a_first_row_of_names_without_the_death_date_is_not_taken_for_a_header(tmp_path: Path) -> None:
    from trialdesk.eligibility.screen import screen

    path = _death_as_loaded(tmp_path, [("PERSON_ID", "CAUSE_SOURCE_VALUE"), ("1", "2020-01-01")])
    result = screen(open_omop(path), load("nct03929120"), AS_OF)
    assert any("table 'death' lacks person_id, death_date; it is not used" in n for n in result.notes)


def test_an_undated_death_turns_eligible_into_needs_review_and_never_softens_not_eligible() -> None:
    assert Death.verdict(Death(None), "eligible") == "needs_review"
    assert Death.verdict(Death(None), "not_eligible") == "not_eligible"
    assert Death.verdict(Death(dt.date(2024, 1, 1)), "eligible") == "not_eligible"
    assert Death.verdict(None, "eligible") == "eligible"


@pytest.fixture(scope="module")
def protocol():  # type: ignore[no-untyped-def]
    return load("nct03929120")


@pytest.mark.parametrize(("deceased", "overall", "date"), [
    ({"deceasedDateTime": "2025-02-20"}, "not_eligible", "2025-02-20"),
    ({"deceasedDateTime": "2025-03-01T08:00:00-05:00"}, "not_eligible", "2025-03-01"),  # the screening date itself
    ({"deceasedDateTime": "2025-03-02"}, "needs_review", None),  # after the screening date: nothing changes
    ({"deceasedBoolean": True}, "needs_review", "undated"),
    ({"deceasedBoolean": False}, "needs_review", None),
    ({"deceasedDateTime": "2025-02-30"}, "needs_review", "undated"),  # not a date: the Patient is kept
], ids=["died before", "died on the day", "died after", "deceased, no date", "not deceased", "impossible date"])
def test_a_fhir_patient_recorded_as_deceased(tmp_path: Path, protocol: Any, deceased: dict[str, Any], overall: str,
                                             date: str | None) -> None:
    (sheet,) = check_fhir(referral(tmp_path, **deceased), protocol, FHIR_AS_OF)
    assert sheet.overall == overall
    shown = sheet.to_json()
    if date is None:
        assert sheet.death is None and "death" not in shown
    elif date == "undated":
        assert shown["death"]["date"] is None and "no readable date" in shown["problems"][0]
    else:
        assert shown["death"]["date"] == date
        assert shown["problems"][0] == f"Patient: recorded as dead on {date}: not eligible, whatever the criteria say"

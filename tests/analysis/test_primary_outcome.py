"""Every count of the primary outcome against the hand count in tests/analysis/fixtures.py."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.analysis.fixtures import empty_data
from trialdesk.analysis.attribution import attribute
from trialdesk.analysis.data_cut import NoParticipantsError, study_day
from trialdesk.analysis.primary_outcome import clopper_pearson, primary_outcome
from trialdesk.protocol.model import Protocol
from trialdesk.trial.records import TrialData


def _why(data: TrialData, ae_id: str) -> tuple[int | None, str | None]:
    a = next(a for a in attribute(data, 183) if a.event.id == ae_id)
    return (a.infusion.number if a.infusion and a.counted else None), a.excluded


def test_ae_on_an_infusion_day_belongs_to_that_infusion(data: TrialData) -> None:
    assert _why(data, "A2") == (1, None)
    assert _why(data, "A3") == (2, None)


def test_ae_after_the_second_infusion_belongs_to_the_second(data: TrialData) -> None:
    assert _why(data, "A4") == (2, None)
    assert _why(data, "B2") == (2, None)


def test_ae_on_day_183_is_counted_and_on_day_187_is_not(data: TrialData) -> None:
    assert _why(data, "A6") == (2, None)
    assert _why(data, "A5") == (None, "after_window")


def test_pre_treatment_ae_is_not_counted(data: TrialData) -> None:
    assert _why(data, "A1") == (None, "before_first_infusion")


@pytest.mark.parametrize(
    ("scope", "key", "expected"),
    [
        # at risk, events, related, grade>=3, pts with event, pts related, pts grade>=3
        ("infusion", "1", (3, 4, 2, 2, 3, 2, 2)),
        ("infusion", "2", (2, 4, 1, 1, 2, 1, 1)),
        ("dose_level", "0.5", (2, 3, 2, 2, 2, 2, 1)),
        ("dose_level", "1.0", (2, 5, 1, 1, 2, 1, 1)),
        ("participant", "S01", (1, 4, 2, 0, 1, 1, 0)),
        ("participant", "S02", (1, 2, 1, 2, 1, 1, 1)),
        ("participant", "S03", (1, 2, 0, 1, 1, 0, 1)),
        ("total", "all", (3, 8, 3, 3, 3, 2, 2)),
    ],
)
def test_counts_match_the_hand_count(data: TrialData, protocol: Protocol, scope: str, key: str, expected: tuple[int, ...]) -> None:
    r = primary_outcome(data, protocol).row(scope, key)  # type: ignore[arg-type]
    assert (r.participants_at_risk, r.events, r.related_events, r.grade_3_plus_events, r.participants_with_event,
            r.participants_with_related, r.participants_with_grade_3_plus) == expected


def test_participant_never_infused_has_no_row(data: TrialData, protocol: Protocol) -> None:
    with pytest.raises(KeyError):
        primary_outcome(data, protocol).row("participant", "S04")


def test_proportions_with_exact_confidence_intervals(data: TrialData, protocol: Protocol) -> None:
    result = primary_outcome(data, protocol)
    anyone = result.proportion("any")
    assert (anyone.participants, anyone.at_risk) == (3, 3)
    # 3/3: lower limit (0.025)^(1/3)
    assert anyone.ci_low == pytest.approx(0.025 ** (1 / 3), abs=1e-9)
    assert anyone.ci_high == 1.0
    related = result.proportion("related")
    assert (related.participants, related.at_risk) == (2, 3)
    assert related.proportion == pytest.approx(2 / 3)
    assert (related.ci_low, related.ci_high) == pytest.approx((0.0943, 0.9916), abs=5e-5)
    severe = result.proportion("grade_3_plus")
    assert (severe.participants, severe.at_risk) == (2, 3)


def test_clopper_pearson_ends() -> None:
    assert clopper_pearson(0, 10)[0] == 0.0
    assert clopper_pearson(0, 10)[1] == pytest.approx(1 - 0.025 ** (1 / 10))
    assert clopper_pearson(10, 10) == (pytest.approx(0.025 ** (1 / 10)), 1.0)
    assert clopper_pearson(0, 0) == (0.0, 1.0)


def test_csv_and_plot_are_written(data: TrialData, protocol: Protocol, tmp_path: Path) -> None:
    result = primary_outcome(data, protocol)
    paths = result.to_csv(tmp_path) + result.plot(tmp_path)
    assert [p.name for p in paths] == ["primary_outcome_counts.csv", "primary_outcome_participants.csv", "primary_outcome_events.csv",
                                       "primary_outcome.png", "primary_outcome.svg"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "primary_outcome_counts.csv").read_text())))
    assert rows[-1] == {"scope": "total", "key": "all", "participants_at_risk": "3", "events": "8", "related_events": "3",
                        "grade_3_plus_events": "3", "participants_with_event": "3", "participants_with_related": "2",
                        "participants_with_grade_3_plus": "2"}
    events = list(csv.DictReader(io.StringIO((tmp_path / "primary_outcome_events.csv").read_text())))
    assert {e["ae_id"]: e["counted"] for e in events} == {"A1": "N", "A2": "Y", "A3": "Y", "A4": "Y", "A5": "N", "A6": "Y",
                                                          "B1": "Y", "B2": "Y", "C1": "Y", "C2": "Y"}
    assert (tmp_path / "primary_outcome.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "primary_outcome.svg").read_text()


def test_no_participant_enrolled_is_refused_unless_allowed(protocol: Protocol) -> None:
    with pytest.raises(NoParticipantsError, match="no enrolled participant"):
        primary_outcome(empty_data(), protocol)
    result = primary_outcome(empty_data(), protocol, allow_empty=True)
    assert result.total.events == 0
    assert result.note is not None and "allow_empty" in result.note


def test_study_day_has_no_day_zero() -> None:
    import datetime as dt

    ref = dt.date(2020, 1, 20)
    assert study_day(ref, ref) == 1
    assert study_day(dt.date(2020, 1, 19), ref) == -1
    assert study_day(dt.date(2020, 1, 21), ref) == 2
    assert study_day(None, ref) is None

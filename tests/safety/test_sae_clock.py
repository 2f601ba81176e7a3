"""SAE reporting deadlines: which rules apply, and when each report is due at the Jacksonville site."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.safety.fixtures import NY, ae, at, trial_data
from trialdesk.safety.sae_clock import FollowUpReceived, SubmittedReport, applicable_rules, due_at, due_reports
from trialdesk.safety.site_time import NaiveDatetimeError

LA = ZoneInfo("America/Los_Angeles")


def sae(learned: dt.datetime, relatedness: str = "possibly", criteria: tuple[str, ...] = ("hospitalisation",), **kw: Any):  # type: ignore[no-untyped-def]
    base: dict[str, Any] = {"serious": True, "seriousness": list(criteria), "learned_at": learned, "expected": False,
                            "expectedness_assessed_by": "sponsor-investigator"}
    base.update(kw)
    grade = base.pop("grade", 3)
    return ae("S1", "001", "Lung infection", grade, learned.astimezone(NY).date().isoformat(), relatedness, **base)


def rules_for(protocol, event) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.id for r in applicable_rules(event, protocol)]


def rule(protocol, rule_id: str):  # type: ignore[no-untyped-def]
    return next(r for r in protocol.safety.sae_reporting if r.id == rule_id)


# --- which rules apply -------------------------------------------------------------------------------

def test_a_non_serious_event_has_no_reports(protocol) -> None:  # type: ignore[no-untyped-def]
    assert applicable_rules(ae("X", "001", "Headache", 1, "2020-02-01"), protocol) == []


def test_a_serious_unrelated_event_is_reported_to_sponsor_and_irb_only(protocol) -> None:  # type: ignore[no-untyped-def]
    assert rules_for(protocol, sae(at("2024-03-01 10:00"), "unlikely")) == ["R1"]


def test_a_serious_related_but_expected_event_is_reported_to_sponsor_and_irb_only(protocol) -> None:  # type: ignore[no-untyped-def]
    assert rules_for(protocol, sae(at("2024-03-01 10:00"), "probably", expected=True)) == ["R1"]


def test_a_serious_unexpected_suspected_reaction_goes_to_the_fda_and_all_investigators_in_15_days(protocol) -> None:  # type: ignore[no-untyped-def]
    assert rules_for(protocol, sae(at("2024-03-01 10:00"), "possibly")) == ["R1", "R3", "R5"]


@pytest.mark.parametrize("criteria", [("life_threatening",), ("death",), ("hospitalisation", "life_threatening")])
def test_an_unexpected_fatal_or_life_threatening_suspected_reaction_needs_the_7_day_and_also_the_15_day_report(protocol, criteria) -> None:  # type: ignore[no-untyped-def]
    kw = {"grade": 5, "outcome": "fatal"} if "death" in criteria else {}
    assert rules_for(protocol, sae(at("2024-03-01 10:00"), "definitely", criteria, **kw)) == ["R1", "R2", "R3", "R5"]


# --- due instants --------------------------------------------------------------------------------------

def test_24_hours_is_an_exact_instant(protocol) -> None:  # type: ignore[no-untyped-def]
    assert due_at(at("2024-02-14 16:30"), rule(protocol, "R1"), NY) == at("2024-02-15 16:30")


def test_24_hours_across_the_march_clock_change_is_11_am_daylight_time(protocol) -> None:  # type: ignore[no-untyped-def]
    due = due_at(at("2024-03-09 10:00"), rule(protocol, "R1"), NY)  # clocks go forward at 2:00 on 10 March
    assert due.isoformat() == "2024-03-10T11:00:00-04:00"
    assert due.astimezone(dt.UTC) - at("2024-03-09 10:00").astimezone(dt.UTC) == dt.timedelta(hours=24)  # 25 h on the wall clock


def test_24_hours_across_the_november_clock_change_is_9_am_standard_time(protocol) -> None:  # type: ignore[no-untyped-def]
    assert due_at(at("2024-11-02 10:00"), rule(protocol, "R1"), NY).isoformat() == "2024-11-03T09:00:00-05:00"


def test_7_calendar_days_from_a_thursday_end_the_next_thursday_across_the_weekend(protocol) -> None:  # type: ignore[no-untyped-def]
    due = due_at(at("2024-03-07 16:00"), rule(protocol, "R2"), NY)
    assert due.date() == dt.date(2024, 3, 14) and due.weekday() == 3
    assert due.isoformat() == "2024-03-14T23:59:59.999999-04:00"  # by the end of the day, daylight time since 10 March


def test_15_calendar_days_ending_on_a_saturday_are_not_extended_to_monday(protocol) -> None:  # type: ignore[no-untyped-def]
    due = due_at(at("2024-03-01 16:00"), rule(protocol, "R3"), NY)  # a Friday
    assert due.date() == dt.date(2024, 3, 16) and due.strftime("%A") == "Saturday"


def test_calendar_days_count_from_the_date_at_the_site_when_learned_in_another_time_zone(protocol) -> None:  # type: ignore[no-untyped-def]
    learned = at("2024-03-01 23:30", LA)  # 02:30 on 2 March in Jacksonville
    assert due_at(learned, rule(protocol, "R2"), NY).date() == dt.date(2024, 3, 9)
    assert due_at(learned, rule(protocol, "R1"), NY) == at("2024-03-03 02:30")


def test_a_naive_learned_at_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NaiveDatetimeError, match=r"learned_at.*no time zone"):
        due_at(dt.datetime(2024, 3, 1, 10), rule(protocol, "R1"), NY)


# --- the dashboard ---------------------------------------------------------------------------------------

def test_the_fixture_anaphylaxis_not_yet_assessed_lists_its_fda_reports_as_pending_the_assessment(protocol) -> None:  # type: ignore[no-untyped-def]
    reports = due_reports(trial_data(), protocol, now=at("2020-03-10 09:00"))
    a7 = [(r.rule_id, r.due_at.isoformat(), r.status, r.pending_assessment) for r in reports if r.ae_id == "A7"]
    assert a7 == [("R1", "2020-03-10T14:00:00-04:00", "due", False), ("R2", "2020-03-16T23:59:59.999999-04:00", "due", True),
                  ("R3", "2020-03-24T23:59:59.999999-04:00", "due", True), ("R5", "2020-03-24T23:59:59.999999-04:00", "due", True)]
    assert {(r.ae_id, r.rule_id) for r in reports if r.ae_id != "A7"} == {("A5", "R1"), ("A9", "R1")}


def test_the_fixture_anaphylaxis_assessed_expected_needs_only_the_24_hour_notice(protocol) -> None:  # type: ignore[no-untyped-def]
    data = trial_data()
    data = data.model_copy(update={"adverse_events": [a.model_copy(update={"expected": True}) if a.id == "A7" else a
                                                       for a in data.adverse_events]})
    assert [r.rule_id for r in due_reports(data, protocol, now=at("2020-03-10 09:00")) if r.ae_id == "A7"] == ["R1"]


def test_reports_past_due_are_overdue_and_submitted_ones_say_so(protocol) -> None:  # type: ignore[no-untyped-def]
    submitted = [SubmittedReport("A7", "R1", at("2020-03-10 15:00"))]
    reports = {(r.ae_id, r.rule_id): r for r in due_reports(trial_data(), protocol, now=at("2020-03-17 08:00"), submitted=submitted)}
    assert reports["A7", "R1"].status == "submitted" and reports["A7", "R1"].late
    assert reports["A7", "R2"].status == "overdue"
    assert reports["A5", "R1"].status == "due"  # learned on 21 March


def test_follow_up_information_after_the_first_report_has_its_own_15_day_clock(protocol) -> None:  # type: ignore[no-untyped-def]
    submitted = [SubmittedReport("A7", "R1", at("2020-03-09 20:00")), SubmittedReport("A7", "R2", at("2020-03-12 12:00"))]
    follow_ups = [FollowUpReceived("A7", at("2020-03-05 08:00")), FollowUpReceived("A7", at("2020-03-20 11:00"))]
    reports = due_reports(trial_data(), protocol, now=at("2020-03-25 08:00"), submitted=submitted, follow_ups=follow_ups)
    r4 = [r for r in reports if r.rule_id == "R4"]
    assert [(r.clock_start, r.due_at.date(), r.status) for r in r4] == [(at("2020-03-20 11:00"), dt.date(2020, 4, 4), "due")]
    r6 = [r for r in reports if r.rule_id == "R6"]  # the 7-day IND report was submitted: a follow-up IND safety report too
    assert [(r.clock_start, r.recipient) for r in r6] == [(at("2020-03-20 11:00"), "FDA (follow-up IND safety report)")]
    submitted.append(SubmittedReport("A7", "R4", at("2020-03-24 09:00")))
    [r4] = [r for r in due_reports(trial_data(), protocol, at("2020-04-10 08:00"), submitted, follow_ups) if r.rule_id == "R4"]
    assert r4.status == "submitted" and not r4.late


def test_a_naive_now_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NaiveDatetimeError, match="now"):
        due_reports(trial_data(), protocol, now=dt.datetime(2020, 3, 10))


def test_a_serious_event_stored_with_a_naive_learned_at_is_refused_by_name(protocol) -> None:  # type: ignore[no-untyped-def]
    naive = ae("N", "001", "Lung infection", 3, "2020-02-01", serious=True, seriousness=["hospitalisation"],
               learned_at=dt.datetime(2020, 2, 1, 9))
    with pytest.raises(NaiveDatetimeError, match="AE N learned_at"):
        due_reports(trial_data(adverse_events=[naive]), protocol, now=at("2020-02-02 09:00"))

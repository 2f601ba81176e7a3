"""21 CFR 312.32 as a reviewer reads it: expectedness against the reference safety information at the
severity and specificity observed, the 7-day notice *and* the 15-day report, the participating
investigators notified, follow-up reports, and the aggregate report of an increased rate."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.safety.fixtures import INFUSIONS, NY, PARTICIPANTS, ae, at, d, infusion, participant, trial_data
from trialdesk.safety.aggregate import evaluate_aggregate, tail_probability
from trialdesk.safety.expectedness import suggest_expectedness, within_hours_of_infusion
from trialdesk.safety.sae_clock import FollowUpReceived, SubmittedReport, due_reports, report_history
from trialdesk.trial.records import SafetyReportSubmission

# 001's second infusion is on 2020-02-17


def hypoxia(grade: int, onset: str = "2020-02-18", **kw: Any):  # type: ignore[no-untyped-def]
    base: dict[str, Any] = {"relatedness": "possibly"}
    if grade >= 3:
        base.update(serious=True, seriousness=["life_threatening" if grade == 4 else "hospitalisation"],
                    learned_at=at(f"{onset} 08:00"))
    base.update(kw)
    return ae("H", "001", "Hypoxia", grade, onset, **base)


def suggestion(protocol, event):  # type: ignore[no-untyped-def]
    return suggest_expectedness(event, INFUSIONS, protocol)


def rows(protocol, event, now: str = "2020-02-18 09:00", **kw: Any) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    reports = due_reports(trial_data(adverse_events=[event]), protocol, now=at(now), **kw)
    return [(r.rule_id, r.recipient) for r in reports]


# --- expectedness: listed at the severity and specificity observed (312.32(a)) ----------------------------

def test_grade_2_hypoxia_the_day_after_an_infusion_is_listed_in_the_brochure(protocol) -> None:  # type: ignore[no-untyped-def]
    s = suggestion(protocol, hypoxia(2))
    assert s.expected and "listed up to grade 2 within 24 h of an infusion (infusion 2 on 2020-02-17)" in s.reason


def test_grade_3_hypoxia_is_beyond_the_severity_the_brochure_lists(protocol) -> None:  # type: ignore[no-untyped-def]
    s = suggestion(protocol, hypoxia(3))
    assert not s.expected and "grade 3 is more severe than listed" in s.reason and "312.32(a)" in s.reason


def test_grade_2_hypoxia_three_days_after_an_infusion_is_beyond_the_setting_the_brochure_lists(protocol) -> None:  # type: ignore[no-untyped-def]
    s = suggestion(protocol, hypoxia(2, "2020-02-20"))
    assert not s.expected and "only within 24 h of an infusion; onset 2020-02-20 is 3 day(s) after infusion 2" in s.reason


def test_an_event_whose_term_the_brochure_does_not_list_is_unexpected(protocol) -> None:  # type: ignore[no-untyped-def]
    s = suggestion(protocol, ae("X", "001", "Thromboembolic event", 1, "2020-02-17", "possibly"))
    assert not s.expected and "not listed" in s.reason and s.entry is None


def test_within_24_hours_reads_the_infusion_day_and_the_next_day_of_onset_dates() -> None:
    own = [i for i in INFUSIONS if i.subject_id == "001"]
    assert within_hours_of_infusion(d("2020-02-17"), own, 24, NY) is not None
    assert within_hours_of_infusion(d("2020-02-18"), own, 24, NY) is not None
    assert within_hours_of_infusion(d("2020-02-19"), own, 24, NY) is None
    assert within_hours_of_infusion(d("2020-01-19"), own, 24, NY) is None  # before the first infusion
    started = own[1].model_copy(update={"started_at": at("2020-02-17 23:00")})
    assert within_hours_of_infusion(d("2020-02-18"), [started], 24, NY) is not None
    assert within_hours_of_infusion(d("2020-02-19"), [started], 24, NY) is None
    assert within_hours_of_infusion(d("2020-02-19"), [started], 48, NY) is not None


# --- which reports: both clocks ---------------------------------------------------------------------------

def test_grade_4_hypoxia_beyond_the_brochure_needs_7_and_15_day_reports(protocol) -> None:  # type: ignore[no-untyped-def]
    event = hypoxia(4, expected=False, expectedness_assessed_by="Dr PI (sponsor-investigator)")
    assert not suggestion(protocol, event).expected
    assert rows(protocol, event) == [("R1", "Sponsor and IRB"), ("R2", "FDA (7-day IND safety report)"),
                                     ("R3", "FDA (IND safety report)"), ("R5", "All participating investigators")]
    reports = {r.rule_id: r for r in due_reports(trial_data(adverse_events=[event]), protocol, now=at("2020-02-18 09:00"))}
    assert reports["R2"].due_at == at("2020-02-25 23:59:59.999999") and reports["R3"].due_at == at("2020-03-04 23:59:59.999999")


def test_unrelated_grade_4_event_needs_no_ind_report(protocol) -> None:  # type: ignore[no-untyped-def]
    event = hypoxia(4, relatedness="unrelated", expected=False)
    assert rows(protocol, event) == [("R1", "Sponsor and IRB")]


def test_an_unlikely_related_grade_4_event_needs_no_ind_report(protocol) -> None:  # type: ignore[no-untyped-def]
    assert rows(protocol, hypoxia(4, relatedness="unlikely", expected=False)) == [("R1", "Sponsor and IRB")]


def test_a_serious_suspected_reaction_assessed_expected_needs_no_ind_report(protocol) -> None:  # type: ignore[no-untyped-def]
    assert rows(protocol, hypoxia(4, expected=True)) == [("R1", "Sponsor and IRB")]


def test_a_serious_unexpected_suspected_reaction_that_is_not_life_threatening_needs_only_the_15_day_report(protocol) -> None:  # type: ignore[no-untyped-def]
    assert [r for r, _ in rows(protocol, hypoxia(3, expected=False))] == ["R1", "R3", "R5"]


def test_a_serious_suspected_reaction_not_yet_assessed_shows_its_ind_reports_pending_the_assessment(protocol) -> None:  # type: ignore[no-untyped-def]
    reports = due_reports(trial_data(adverse_events=[hypoxia(4)]), protocol, now=at("2020-02-18 09:00"))
    assert [(r.rule_id, r.pending_assessment) for r in reports] == [("R1", False), ("R2", True), ("R3", True), ("R5", True)]


def test_each_ind_safety_report_has_a_recorded_notification_of_the_participating_investigators(protocol) -> None:  # type: ignore[no-untyped-def]
    event = hypoxia(4, expected=False)
    submitted = [SubmittedReport("H", "R3", at("2020-02-20 10:00"))]
    reports = {r.rule_id: r for r in due_reports(trial_data(adverse_events=[event]), protocol, at("2020-03-05 09:00"), submitted)}
    assert reports["R3"].status == "submitted"
    assert reports["R5"].status == "overdue" and reports["R5"].recipient == "All participating investigators"


# --- follow-up reports (312.32(d)(3)) -----------------------------------------------------------------------

def test_follow_up_information_after_an_ind_safety_report_needs_a_follow_up_ind_safety_report(protocol) -> None:  # type: ignore[no-untyped-def]
    event = hypoxia(4, expected=False)
    submitted = [SubmittedReport("H", "R1", at("2020-02-18 12:00")), SubmittedReport("H", "R2", at("2020-02-20 12:00"))]
    follow = [FollowUpReceived("H", at("2020-02-25 09:00"))]
    reports = due_reports(trial_data(adverse_events=[event]), protocol, at("2020-02-26 09:00"), submitted, follow)
    follow_rows = [(r.rule_id, r.clock_start, r.due_at.date()) for r in reports if r.rule_id in ("R4", "R6")]
    assert follow_rows == [("R4", at("2020-02-25 09:00"), dt.date(2020, 3, 11)), ("R6", at("2020-02-25 09:00"), dt.date(2020, 3, 11))]
    r6 = next(r for r in reports if r.rule_id == "R6")
    assert "as soon as the information is available" in r6.basis and "312.32(d)(3)" in r6.basis


def test_follow_up_of_an_sae_with_no_ind_safety_report_goes_to_sponsor_and_irb_only(protocol) -> None:  # type: ignore[no-untyped-def]
    event = hypoxia(4, relatedness="unrelated", expected=False)
    submitted = [SubmittedReport("H", "R1", at("2020-02-18 12:00"))]
    reports = due_reports(trial_data(adverse_events=[event]), protocol, at("2020-02-26 09:00"), submitted,
                          [FollowUpReceived("H", at("2020-02-25 09:00"))])
    assert [r.rule_id for r in reports if r.clock_start == at("2020-02-25 09:00")] == ["R4"]


def test_the_report_history_of_an_sae_lists_its_initial_and_follow_up_reports_in_order(protocol) -> None:  # type: ignore[no-untyped-def]
    event = hypoxia(4, expected=False)
    submitted = [SafetyReportSubmission(ae_id="H", rule_id="R2", submitted_at=at("2020-02-20 12:00"))]
    data = trial_data(adverse_events=[event], safety_reports=submitted)
    reports = due_reports(data, protocol, at("2020-02-26 09:00"), follow_ups=[FollowUpReceived("H", at("2020-02-25 09:00"))])
    history = report_history("H", reports)
    assert [r.rule_id for r in history] == ["R1", "R2", "R3", "R5", "R4", "R6"]
    assert next(r for r in history if r.rule_id == "R2").status == "submitted"  # read from the data cut


# --- the aggregate report (312.32(c)(1)(iv)) ----------------------------------------------------------------

def _serious_irr(ae_id: str, subject: str, onset: str, relatedness: str = "possibly"):  # type: ignore[no-untyped-def]
    return ae(ae_id, subject, "Infusion related reaction", 2, onset, relatedness, serious=True, seriousness=["hospitalisation"],
              learned_at=at(f"{onset} 18:00"), expected=True)


TEN = [participant(f"1{n:02d}", "2020-01-01") for n in range(10)]
TEN_INFUSED = [infusion(p.subject_id, 1, f"2020-01-{10 + n:02d}", 0.5) for n, p in enumerate(TEN)]  # 10 to 19 January


def test_the_exact_binomial_tail_at_the_listed_rate() -> None:
    assert tail_probability(2, 10, 0.05) == pytest.approx(0.0861, abs=1e-4)
    assert tail_probability(3, 10, 0.05) == pytest.approx(0.0115, abs=1e-4)
    assert tail_probability(0, 10, 0.05) == 1.0


def test_two_serious_infusion_reactions_in_ten_participants_are_not_a_clinically_important_increase(protocol) -> None:  # type: ignore[no-untyped-def]
    events = [_serious_irr("I1", "100", "2020-01-25"), _serious_irr("I2", "101", "2020-01-26")]  # all ten infused by then
    data = trial_data(participants=TEN, infusions=TEN_INFUSED, adverse_events=events, cutoff=d("2020-03-01"))
    irr = next(a for a in evaluate_aggregate(data, protocol) if a.term == "Infusion related reaction")
    assert not irr.fired and irr.with_event == 2 and irr.infused == 10
    assert not any("/" in r.rule_id for r in due_reports(data, protocol, at("2020-03-01 09:00")))


def test_three_serious_infusion_reactions_in_ten_participants_need_an_aggregate_ind_safety_report(protocol) -> None:  # type: ignore[no-untyped-def]
    events = [_serious_irr("I1", "100", "2020-01-25"), _serious_irr("I2", "101", "2020-01-26"), _serious_irr("I3", "102", "2020-01-27")]
    data = trial_data(participants=TEN, infusions=TEN_INFUSED, adverse_events=events, cutoff=d("2020-03-01"))
    irr = next(a for a in evaluate_aggregate(data, protocol) if a.term == "Infusion related reaction")
    assert irr.fired and irr.trigger_ae == "I3" and irr.fired_with == (3, 10)
    aggregate = [(r.ae_id, r.rule_id, r.recipient, r.clock_start) for r in due_reports(data, protocol, at("2020-03-01 09:00"))
                 if "/" in r.rule_id]
    assert aggregate == [("I3", "AGG1/R3", "FDA (IND safety report)", at("2020-01-27 18:00")),
                         ("I3", "AGG1/R5", "All participating investigators", at("2020-01-27 18:00"))]


def test_two_serious_infusion_reactions_in_the_first_two_participants_already_need_the_aggregate_report(protocol) -> None:  # type: ignore[no-untyped-def]
    events = [_serious_irr("I1", "100", "2020-01-10"), _serious_irr("I2", "101", "2020-01-11")]  # 2 of the 2 infused so far
    data = trial_data(participants=TEN, infusions=TEN_INFUSED, adverse_events=events, cutoff=d("2020-03-01"))
    irr = next(a for a in evaluate_aggregate(data, protocol) if a.term == "Infusion related reaction")
    assert irr.fired and irr.fired_with == (2, 2) and irr.fired_at == at("2020-01-11 18:00")


def test_one_serious_infusion_reaction_is_never_an_increase_in_rate(protocol) -> None:  # type: ignore[no-untyped-def]
    data = trial_data(participants=TEN, infusions=TEN_INFUSED[:1], adverse_events=[_serious_irr("I1", "100", "2020-01-10")],
                      cutoff=d("2020-03-01"))
    assert not any(a.fired for a in evaluate_aggregate(data, protocol))  # 1 of 1 (p = 0.05, not below): and one is not a rate


def test_unrelated_serious_events_do_not_count_towards_the_rate_of_a_suspected_reaction(protocol) -> None:  # type: ignore[no-untyped-def]
    events = [_serious_irr(f"I{n}", f"10{n}", f"2020-01-1{n}", "unlikely") for n in range(5)]
    data = trial_data(participants=TEN, infusions=TEN_INFUSED, adverse_events=events, cutoff=d("2020-03-01"))
    assert not any(a.fired for a in evaluate_aggregate(data, protocol))


def test_the_fixture_trial_has_no_aggregate_report(protocol) -> None:  # type: ignore[no-untyped-def]
    assert PARTICIPANTS and not any(a.fired for a in evaluate_aggregate(trial_data(), protocol))


def test_the_aggregate_rule_is_evaluated_with_the_stopping_rules(protocol) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.safety.stopping_rules import evaluate

    events = [_serious_irr(f"I{n}", f"10{n}", f"2020-01-2{n + 5}") for n in range(3)]
    data = trial_data(participants=TEN, infusions=TEN_INFUSED, adverse_events=events, cutoff=d("2020-03-01"))
    [irr] = [a for a in evaluate(data, protocol).aggregate if a.term == "Infusion related reaction"]
    assert irr.fired and irr.trigger_ae == "I2"

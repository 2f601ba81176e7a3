"""Stopping rules on the hand-counted data cut, the pauses they impose, and the DSMB decisions that lift them.

In the fixture, 003's grade 4 anaphylaxis (A7, definitely related, learned 2020-03-09 14:00) meets S1
(grade >= 4, possibly related) and S3 (grade >= 3 infusion reaction); with 002's grade 3 hypoxia (A6,
possibly related, onset 2020-03-10) two participants have a related grade >= 3 event, meeting S2.
002's death (A9) is unrelated and counts for none.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.safety.fixtures import ADVERSE_EVENTS, INFUSIONS, ae, at, infusion, trial_data
from trialdesk.protocol.model import BayesianMonitor
from trialdesk.safety.bayesian_monitor import posterior, probability_above
from trialdesk.safety.stopping_rules import DsmbDecision, evaluate
from trialdesk.trial.pause import first_stopping_dosing, first_stopping_enrolment

DATA = trial_data()


def with_monitor(protocol, **kw):  # type: ignore[no-untyped-def]
    monitor = BayesianMonitor(**{"prior_a": 1, "prior_b": 1, "threshold_rate": 0.2, "posterior_probability": 0.8, "min_grade": 3,
                                 "min_relatedness": "possibly", "reason": "test", **kw})
    return protocol.model_copy(update={"safety": protocol.safety.model_copy(update={"bayesian_monitor": monitor})})


def test_related_grade_4_anaphylaxis_triggers_s1_and_s3_when_the_site_learns_of_it(protocol) -> None:  # type: ignore[no-untyped-def]
    status = evaluate(DATA, protocol)
    for rule_id in ("S1", "S3"):
        r = status.rule(rule_id)
        assert (r.evidence, r.participants, r.triggered_at, r.state) == (("A7",), ("003",), at("2020-03-09 14:00"), "paused")


def test_two_participants_with_related_grade_3_events_trigger_s2_on_the_second(protocol) -> None:  # type: ignore[no-untyped-def]
    s2 = evaluate(DATA, protocol).rule("S2")
    assert (s2.evidence, s2.participants, s2.triggered_at) == (("A7", "A6"), ("003", "002"), at("2020-03-10 00:00"))


def test_an_unrelated_death_pauses_enrolment_and_dosing_under_s4_not_s1(protocol) -> None:  # type: ignore[no-untyped-def]
    only_death = trial_data(adverse_events=[e for e in ADVERSE_EVENTS if e.id == "A9"])
    status = evaluate(only_death, protocol)
    assert status.rule("S1").triggered is False  # S1 asks for relatedness
    assert status.rule("S4").triggered and status.rule("S4").evidence == ("A9",)
    assert status.action == "pause_enrolment_and_dosing"


def test_s1_pauses_enrolment_and_dosing(protocol) -> None:  # type: ignore[no-untyped-def]
    status = evaluate(DATA, protocol)
    assert status.action == "pause_enrolment_and_dosing" and status.paused_enrolment and status.paused_dosing and not status.stopped
    assert first_stopping_enrolment(status.pauses()) is not None and first_stopping_dosing(status.pauses()) is not None
    assert {p.rule_id for p in status.pauses()} == {"S1", "S2", "S3", "S4", "S6"}  # S6: A6, grade 3 hypoxia the day after infusion 2


def test_a_grade_3_infusion_reaction_alone_pauses_dosing_but_not_enrolment(protocol) -> None:  # type: ignore[no-untyped-def]
    reaction = ae("R", "003", "Anaphylaxis", 3, "2020-03-09", "unlikely")
    status = evaluate(trial_data(adverse_events=[reaction]), protocol)
    assert [r.rule_id for r in status.triggered] == ["S3"]
    assert (status.action, status.paused_enrolment, status.paused_dosing) == ("pause_dosing", False, True)
    [pause] = status.pauses()
    assert pause.since.isoformat() == "2020-03-09" and first_stopping_enrolment([pause]) is None


def test_events_before_the_first_infusion_never_trigger(protocol) -> None:  # type: ignore[no-untyped-def]
    early = ae("E", "001", "Anaphylaxis", 3, "2020-01-15", "unrelated")
    assert evaluate(trial_data(adverse_events=[early]), protocol).triggered == []


def test_nothing_qualifying_leaves_the_trial_running(protocol) -> None:  # type: ignore[no-untyped-def]
    status = evaluate(trial_data(adverse_events=[e for e in ADVERSE_EVENTS if e.grade < 3]), protocol)
    assert status.action is None and not status.paused_enrolment and not status.paused_dosing and status.pauses() == []


def test_the_pause_holds_until_a_dsmb_decision_to_resume_each_rule(protocol) -> None:  # type: ignore[no-untyped-def]
    resume = [DsmbDecision(rule_id, at("2020-03-20 15:00"), "resume", "Dr DSMB Chair") for rule_id in ("S1", "S2", "S6")]
    resume.append(DsmbDecision("S4", at("2020-06-03 15:00"), "resume", "Dr DSMB Chair"))  # after reviewing the death of 1 June
    status = evaluate(DATA, protocol, resume)
    assert status.rule("S1").state == "resumed" and status.rule("S1").decision == resume[0]
    assert status.action == "pause_dosing"  # S3 has no decision yet
    status = evaluate(DATA, protocol, [*resume, DsmbDecision("S3", at("2020-03-20 15:00"), "resume", "Dr DSMB Chair")])
    assert status.action is None and status.triggered != [] and status.in_force == []


def test_a_decision_taken_before_the_trigger_does_not_lift_it(protocol) -> None:  # type: ignore[no-untyped-def]
    early = [DsmbDecision(r, at("2020-03-09 10:00"), "resume", "Dr DSMB Chair") for r in ("S1", "S2", "S3")]
    assert evaluate(DATA, protocol, early).action == "pause_enrolment_and_dosing"


def test_a_new_related_grade_4_event_after_a_resume_pauses_again(protocol) -> None:  # type: ignore[no-untyped-def]
    resume = [DsmbDecision(r, at("2020-03-20 15:00"), "resume", "Dr DSMB Chair") for r in ("S1", "S2", "S3", "S4")]
    later = ae("L", "001", "Hypoxia", 4, "2020-04-01", "possibly", serious=True, seriousness=["life_threatening"],
               learned_at=at("2020-04-01 12:00"))
    status = evaluate(trial_data(adverse_events=[*ADVERSE_EVENTS, later]), protocol, resume)
    s1 = status.rule("S1")
    assert (s1.state, s1.triggered_at, s1.evidence) == ("paused", at("2020-04-01 12:00"), ("A7", "L"))
    assert status.rule("S3").state == "resumed"  # hypoxia is not an infusion reaction


def test_a_dsmb_decision_to_stop_stops_the_trial(protocol) -> None:  # type: ignore[no-untyped-def]
    status = evaluate(DATA, protocol, [DsmbDecision("S3", at("2020-03-11 09:00"), "stop", "Dr DSMB Chair")])
    assert status.rule("S3").state == "stopped" and status.action == "stop_trial" and status.stopped and status.paused_enrolment


def test_the_bayesian_posterior_matches_the_hand_computed_beta_3_2_tail(protocol) -> None:  # type: ignore[no-untyped-def]
    # uniform prior, 2 of 3 infused with a related grade >= 3 event: Beta(3, 2);
    # P(rate <= 0.2) = 4 (0.2)^3 (0.8) + (0.2)^4 = 0.0272, so P(rate > 0.2) = 0.9728 > 0.8
    status = evaluate(DATA, with_monitor(protocol))
    assert status.bayes is not None
    assert (status.bayes.participants, status.bayes.with_event, status.bayes.a, status.bayes.b) == (3, 2, 3, 2)
    assert status.bayes.probability_above == pytest.approx(0.9728, abs=1e-12)
    bayes = status.rule("BAYES")
    assert bayes.state == "paused" and bayes.action == "pause_dosing"
    # at the first event (A7, 14:00 on 9 March) 003 had been infused that day: 1 of 3, Beta(2, 3), P = 1 - 0.1808 = 0.8192 > 0.8
    assert bayes.triggered_at == at("2020-03-09 14:00")
    assert posterior(with_monitor(protocol).safety.bayesian_monitor, 1, 3).probability_above == pytest.approx(0.8192, abs=1e-12)


def test_the_protocol_monitor_does_not_trigger_on_2_of_3(protocol) -> None:  # type: ignore[no-untyped-def]
    status = evaluate(DATA, protocol)
    assert status.bayes is not None and (status.bayes.a, status.bayes.b) == (2.5, 5.5)
    assert not status.bayes.triggers and status.rule("BAYES").state == "clear"


def test_the_half_integer_posterior_agrees_with_numerical_integration() -> None:
    a, b = 1.5, 4.5  # the protocol's Beta(0.5, 4.5) prior after 1 event in 1 participant
    x = np.linspace(0.2, 1.0, 400_001)[:-1]  # the density is 0 at 1 (b > 1)
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    density = np.append(np.exp((a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - log_beta), 0.0)
    x = np.append(x, 1.0)
    tail = float(np.trapezoid(density, x))
    assert probability_above(0.2, a, b) == pytest.approx(tail, abs=1e-6)


def test_participants_infused_count_once_each(protocol) -> None:  # type: ignore[no-untyped-def]
    extra = trial_data(infusions=[*INFUSIONS, infusion("001", 3, "2020-03-16", 0.5)])
    assert evaluate(extra, protocol).bayes.participants == 3  # type: ignore[union-attr]


def test_the_pause_starts_on_the_site_s_calendar_date_from_the_protocol_s_time_zone(protocol) -> None:  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    # learned at 02:00 UTC on 2 June: still 1 June in Jacksonville, already 2 June in Berlin
    death = ae("D", "002", "Respiratory failure", 5, "2020-06-01", "unrelated",
               learned_at=at("2020-06-02 02:00", ZoneInfo("UTC")))
    data = trial_data(adverse_events=[death])
    assert protocol.site_time_zone() == "America/New_York"
    [pause] = evaluate(data, protocol).pauses()
    assert pause.since.isoformat() == "2020-06-01"
    berlin = protocol.model_copy(update={"locations": [protocol.locations[0].model_copy(update={"time_zone": "Europe/Berlin"})]})
    [pause] = evaluate(data, berlin).pauses()
    assert pause.since.isoformat() == "2020-06-02"

"""Stopping rules for what IV MSCs are known for (thrombosis, pulmonary embolism, acute respiratory
deterioration within 24 h of an infusion), and the Bayesian monitor described and counted correctly."""

from __future__ import annotations

from tests.safety.fixtures import ae as make_ae
from tests.safety.fixtures import at, d, infusion, participant, trial_data
from trialdesk.safety.simulate import comparable_fixed_rules, monitor_added_stopping, monitor_comparison
from trialdesk.safety.stopping_rules import evaluate

ONE = [participant("001", "2020-01-06")]
INFUSED = [infusion("001", 1, "2020-01-20", 0.5), infusion("001", 2, "2020-02-17", 1.0)]


def status(protocol, *events):  # type: ignore[no-untyped-def]
    return evaluate(trial_data(participants=ONE, infusions=INFUSED, adverse_events=list(events)), protocol)


def test_a_pulmonary_embolism_the_day_after_an_infusion_pauses_dosing_whatever_its_attribution(protocol) -> None:  # type: ignore[no-untyped-def]
    s = status(protocol, make_ae("PE", "001", "Thromboembolic event", 2, "2020-02-18", "unrelated"))
    assert s.rule("S5").in_force and s.paused_dosing and not s.paused_enrolment and s.action == "pause_dosing"


def test_a_thrombosis_three_days_after_an_infusion_does_not_trigger_the_24_hour_rule(protocol) -> None:  # type: ignore[no-untyped-def]
    s = status(protocol, make_ae("T", "001", "Thromboembolic event", 2, "2020-02-20", "unrelated"))
    assert not s.rule("S5").triggered and not s.paused_dosing


def test_grade_3_hypoxia_on_the_day_of_an_infusion_is_an_acute_respiratory_deterioration_that_pauses_dosing(protocol) -> None:  # type: ignore[no-untyped-def]
    s = status(protocol, make_ae("H", "001", "Hypoxia", 3, "2020-01-20", "unlikely"))
    assert s.rule("S6").in_force and s.rule("S6").evidence == ("H",)


def test_grade_2_hypoxia_the_day_after_an_infusion_is_not_an_acute_respiratory_deterioration(protocol) -> None:  # type: ignore[no-untyped-def]
    assert not status(protocol, make_ae("H", "001", "Hypoxia", 2, "2020-01-21", "possibly")).rule("S6").triggered


def test_respiratory_failure_two_days_after_an_infusion_is_outside_the_24_hour_rule(protocol) -> None:  # type: ignore[no-untyped-def]
    event = make_ae("R", "001", "Respiratory failure", 4, "2020-01-22", "unrelated", serious=True, seriousness=["life_threatening"],
                    learned_at=at("2020-01-22 10:00"))
    assert not status(protocol, event).rule("S6").triggered


# --- the Bayesian monitor ------------------------------------------------------------------------------------

def test_the_prior_is_worth_five_participants_and_the_protocol_says_so(protocol) -> None:  # type: ignore[no-untyped-def]
    m = protocol.safety.bayesian_monitor
    assert m.prior_participants == 5.0
    assert "worth a + b = 5 participants" in " ".join(m.reason.split())


def test_the_denominator_counts_only_participants_who_completed_the_observation_window(protocol) -> None:  # type: ignore[no-untyped-def]
    people = [participant(f"00{n}", "2020-01-01") for n in range(1, 5)]
    infusions = [infusion("001", 1, "2020-01-10", 0.5), infusion("002", 1, "2020-01-20", 0.5), infusion("003", 1, "2020-03-01", 0.5),
                 infusion("004", 1, "2020-03-05", 0.5)]
    event = make_ae("B", "003", "Hypoxia", 3, "2020-03-02", "possibly")
    data = trial_data(participants=people, infusions=infusions, adverse_events=[event], cutoff=d("2020-03-10"))
    posterior = evaluate(data, protocol).bayes
    # 001 and 002 completed 28 days; 003 had the event; 004 was infused 5 days ago: 1 of 3, not 1 of 4
    assert posterior is not None and (posterior.with_event, posterior.participants) == (1, 3)
    later = evaluate(data.model_copy(update={"cutoff": d("2020-04-02")}), protocol).bayes
    assert later is not None and later.participants == 4  # 004 completed 28 days on 2 April


def test_the_simulation_report_shows_the_monitor_adds_nothing_over_s2_for_ten_participants(protocol) -> None:  # type: ignore[no-untyped-def]
    assert comparable_fixed_rules(protocol) == ["S2"]
    assert not any(c.fires_first for c in monitor_comparison(protocol))
    assert all(alone == both for _, alone, both in monitor_added_stopping(protocol))


def test_the_simulation_report_shows_when_the_monitor_fires_before_the_fixed_rules(protocol) -> None:  # type: ignore[no-untyped-def]
    rules = [r.model_copy(update={"participants_at_least": 4}) if r.id == "S2" else r for r in protocol.safety.stopping_rules]
    looser = protocol.model_copy(update={"safety": protocol.safety.model_copy(update={"stopping_rules": rules})})
    first = [c for c in monitor_comparison(looser) if c.fires_first]
    assert [(c.treated, c.bayes_boundary, c.fixed_boundary) for c in first][:2] == [(2, 2, 4), (3, 3, 4)]
    assert "before the fixed rules (4)" in first[0].sentence()
    added = {round(rate, 2): both - alone for rate, alone, both in monitor_added_stopping(looser)}
    assert added[0.3] > 0.03 and all(v >= 0 for v in added.values())  # it can only add stopping, never remove it

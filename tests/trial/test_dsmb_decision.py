"""A DSMB decision to continue, pause or stop, and the stop that enrolment and dosing obey for good."""

from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.trial.consent import Consent
from trialdesk.trial.dosing import DosingParticipant, InfusionEntry, check_infusion
from trialdesk.trial.dsmb_decision import Decision, check_decision, consequences
from trialdesk.trial.enrolment import Candidate, check_enrolment
from trialdesk.trial.errors import ConductError
from trialdesk.trial.pause import DSMB_RULE_ID, Pause, check_lift

TODAY = dt.date(2020, 8, 1)
CONSENT = Consent("1.0", dt.datetime(2020, 5, 1, 10, tzinfo=dt.UTC), "C. Coordinator", True, site_zone=dt.UTC)
RULE_PAUSE = Pause("S1", "pause_enrolment_and_dosing", dt.date(2020, 7, 20), "related grade 4")


def decision(**kw: object) -> Decision:
    base: dict[str, object] = {"kind": "continue", "decided_on": dt.date(2020, 7, 30), "report_cutoff": dt.date(2020, 7, 28),
                               "rationale": "one related grade 4 event, resolved; no pattern across participants"}
    base.update(kw)
    return Decision(**base)  # type: ignore[arg-type]


def stop_pause() -> Pause:
    add = consequences(decision(kind="stop", rationale="two related deaths"), [RULE_PAUSE]).add
    assert add is not None
    return add


def refusal(d: Decision, pauses: list[Pause] | None = None) -> ConductError:
    with pytest.raises(ConductError) as info:
        check_decision(d, pauses=pauses or [], today=TODAY)
    return info.value


def test_continue_lifts_every_pause_in_force() -> None:
    d = decision()
    check_decision(d, pauses=[RULE_PAUSE], today=TODAY)
    assert consequences(d, [RULE_PAUSE]).lift == (RULE_PAUSE,) and consequences(d, [RULE_PAUSE]).add is None


def test_pause_adds_a_dsmb_pause_of_enrolment_and_dosing() -> None:
    add = consequences(decision(kind="pause"), []).add
    assert add is not None and add.rule_id == DSMB_RULE_ID and add.stops_enrolment and add.stops_dosing and not add.final


def test_stop_is_a_final_stop_of_enrolment_and_dosing() -> None:
    stop = stop_pause()
    assert stop.action == "stop_trial" and stop.final and stop.since == dt.date(2020, 7, 30)
    assert "DSMB's decision of 2020-07-30" in stop.sentence()


def test_a_decision_without_a_rationale_is_refused() -> None:
    assert refusal(decision(rationale="  ")).field == "rationale"


def test_continue_with_modifications_needs_the_modifications() -> None:
    err = refusal(decision(kind="continue_with_modifications", modifications=""))
    assert err.field == "modifications"


def test_a_decision_on_a_report_cut_after_it_is_refused() -> None:
    assert refusal(decision(report_cutoff=dt.date(2020, 7, 31))).field == "report_cutoff"


def test_a_decision_in_the_future_is_refused() -> None:
    assert refusal(decision(decided_on=dt.date(2020, 8, 2))).field == "decided_on"


def test_no_decision_after_a_stop() -> None:
    err = refusal(decision(kind="continue"), [stop_pause()])
    assert err.field == "kind" and "final" in err.message


def test_the_dsmb_stop_cannot_be_lifted_but_a_rule_pause_can() -> None:
    check_lift(RULE_PAUSE)
    with pytest.raises(ConductError, match="final"):
        check_lift(stop_pause())


def test_a_protocol_rule_with_a_stop_action_still_waits_for_the_dsmb() -> None:
    assert not Pause("S9", "stop_trial", dt.date(2020, 7, 1)).final


def test_enrolment_after_a_dsmb_stop_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    candidate = Candidate("S-0100", True, "eligible", CONSENT, dt.date(2020, 7, 31))
    with pytest.raises(ConductError) as info:
        check_enrolment(protocol, candidate, [], pauses=[stop_pause()], today=TODAY)
    assert info.value.field == "enrolment" and "stopped" in info.value.message and "for good" in info.value.message


def test_infusion_after_a_dsmb_stop_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    who = DosingParticipant("001", "on_study", dt.date(2020, 5, 10), CONSENT)
    with pytest.raises(ConductError) as info:
        check_infusion(protocol, who, InfusionEntry(1, dt.date(2020, 7, 31), 70.0, 52_500_000.0), pauses=[stop_pause()], today=TODAY)
    assert "trial is stopped" in info.value.message and "for good" in info.value.message

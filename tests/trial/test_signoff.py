from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.trial.errors import ConductError
from trialdesk.trial.signoff import decide, manual_worksheet, open_criteria, prescreen_worksheet

AS_OF = dt.date(2020, 5, 1)


def yes_to_all_but(protocol, **override: bool) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    # answers that make a person eligible: competent (I4), IPAF present, no improvement, and "no" to every exclusion question
    answers = {aid: False for _, aid, _ in protocol.attestation_items()}
    answers.update(consent_and_compliance=True, ipaf=True, no_improvement=True)
    answers.update(override)
    return answers


def test_manual_worksheet_leaves_every_criterion_to_the_investigator(protocol) -> None:  # type: ignore[no-untyped-def]
    sheet = manual_worksheet(protocol, AS_OF)
    assert {c["status"] for c in sheet["criteria"]} == {"needs_review"}
    assert sheet["protocol_version"] == protocol.version and sheet["as_of"] == "2020-05-01"
    assert {a["criterion_id"] for a in sheet["attestations"]} >= {"I4", "E10", "E11", "E6"}


def test_every_attestation_must_be_answered(protocol) -> None:  # type: ignore[no-untyped-def]
    answers = yes_to_all_but(protocol)
    del answers["contraception"]
    with pytest.raises(ConductError) as e:
        decide(protocol, manual_worksheet(protocol, AS_OF), answers, {})
    assert e.value.field == "answer_contraception"


def test_every_unsettled_criterion_needs_a_decision(protocol) -> None:  # type: ignore[no-untyped-def]
    sheet = manual_worksheet(protocol, AS_OF)
    assert "I4" not in open_criteria(protocol, sheet)  # a lone attestation takes its answer
    with pytest.raises(ConductError) as e:
        decide(protocol, sheet, yes_to_all_but(protocol), {})
    assert e.value.field == "decision_I1"


def test_investigator_decisions_and_answers_make_the_overall_result(protocol) -> None:  # type: ignore[no-untyped-def]
    sheet = manual_worksheet(protocol, AS_OF)
    decisions = {cid: ("met" if cid.startswith("I") else "not_met") for cid in open_criteria(protocol, sheet)}
    assert decide(protocol, sheet, yes_to_all_but(protocol), decisions).overall == "eligible"
    d = decide(protocol, sheet, yes_to_all_but(protocol, contraception=True), decisions)
    assert d.overall == "not_eligible" and d.failed == ["E10"]


def test_prescreen_row_keeps_the_criteria_it_left_open(protocol) -> None:  # type: ignore[no-untyped-def]
    sheet = prescreen_worksheet(protocol, AS_OF, person_id="42", unknown=["E3", "E8"], needs_review=["I4"])
    statuses = {c["id"]: c["status"] for c in sheet["criteria"]}
    assert statuses["E3"] == "unknown" and statuses["I4"] == "needs_review" and statuses["I1"] == "met" and statuses["E2"] == "not_met"
    assert sheet["overall"] == "needs_review"


def test_a_worksheet_recording_a_dated_death_cannot_be_signed_eligible(protocol) -> None:  # type: ignore[no-untyped-def]
    sheet = manual_worksheet(protocol, AS_OF)
    decisions = {cid: ("met" if cid.startswith("I") else "not_met") for cid in open_criteria(protocol, sheet)}
    dead = dict(sheet, death={"date": "2020-04-20", "note": "recorded as dead on 2020-04-20"})
    assert decide(protocol, dead, yes_to_all_but(protocol), decisions).overall == "not_eligible"
    # a death with no date is the investigator's to check: once checked, their answers decide
    undated = dict(sheet, death={"date": None, "note": "recorded as dead, with no readable date"})
    assert decide(protocol, undated, yes_to_all_but(protocol), decisions).overall == "eligible"

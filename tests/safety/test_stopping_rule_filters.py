"""Stopping rules filter as the protocol says: serious events only, or DLTs only (AETHER's DLT: a
serious event within 28 days of the infusion, whatever its grade and attribution)."""

from __future__ import annotations

import pytest

from tests.trial.aether_data import ae, cut, subjects
from trialdesk.protocol.loader import load
from trialdesk.protocol.model import Protocol, StoppingRule
from trialdesk.safety.stopping_rules import evaluate


@pytest.fixture(scope="module")
def aether() -> Protocol:
    return load("nct02013700")


def with_rule(p: Protocol, **kw: object) -> Protocol:
    rule = StoppingRule.model_validate({"id": "S1", "description": "two participants", "min_grade": 1,
                                        "participants_at_least": 2, "reason": "test", **kw})
    return p.model_copy(update={"safety": p.safety.model_copy(update={"stopping_rules": [rule]})})


def test_a_serious_only_rule_ignores_non_serious_events(aether: Protocol) -> None:
    events = [ae("A1", "C1-1", 3, serious=True), ae("A2", "C1-2", 3, serious=False)]
    assert not evaluate(cut(subjects(), events), with_rule(aether, serious_only=True)).rule("S1").triggered
    assert evaluate(cut(subjects(), events), with_rule(aether)).rule("S1").triggered


def test_a_serious_only_rule_triggers_on_the_second_participant_with_a_serious_event(aether: Protocol) -> None:
    events = [ae("A1", "C1-1", 3, serious=True), ae("A2", "C1-2", 3, serious=True)]
    status = evaluate(cut(subjects(), events), with_rule(aether, serious_only=True)).rule("S1")
    assert status.triggered and status.participants == ("C1-1", "C1-2")


def test_a_dlt_only_rule_counts_events_inside_the_dlt_window_only(aether: Protocol) -> None:
    on_last_day = [ae("A1", "C1-1", 28, serious=True), ae("A2", "C1-2", 28, serious=True)]
    one_late = [ae("A1", "C1-1", 28, serious=True), ae("A2", "C1-2", 29, serious=True)]
    assert evaluate(cut(subjects(), on_last_day), with_rule(aether, dlt_only=True)).rule("S1").triggered
    assert not evaluate(cut(subjects(), one_late), with_rule(aether, dlt_only=True)).rule("S1").triggered


def test_a_dlt_only_rule_needs_a_dlt_definition() -> None:
    first = load("nct03929120")
    with pytest.raises(ValueError, match="dlt_only: counting DLTs needs a dose_finding section"):
        Protocol.model_validate({**first.model_dump(mode="json", by_alias=True, exclude_none=True),
                                 "safety": {**first.safety.model_dump(mode="json", exclude_none=True),
                                            "stopping_rules": [{"id": "S9", "description": "d", "min_grade": 3,
                                                                "dlt_only": True, "reason": "r"}]}})

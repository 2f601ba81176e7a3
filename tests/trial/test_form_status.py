"""A visit form is not started, incomplete, complete or not done (with a reason); the infusion and adverse-event
forms are recorded on their own pages and are never visit forms to complete."""

from __future__ import annotations

import pytest

from trialdesk.protocol.forms import load_forms
from trialdesk.trial.errors import ConductError
from trialdesk.trial.form_status import check_not_done, status, visit_forms

CAT = load_forms()


def test_the_infusion_and_adverse_events_are_not_visit_forms() -> None:
    assert visit_forms(CAT, ["vital_signs", "infusion", "adverse_events", "laboratory"]) == ["vital_signs", "laboratory"]


@pytest.mark.parametrize(("data", "reason", "expected"), [
    (None, "", "not_started"),
    ({"spo2_date": "2020-06-01"}, "", "incomplete"),  # oxygen saturation and 'at rest' are required
    ({"spo2_date": "2020-06-01", "oxysat": 95, "spo2_at_rest": True}, "", "complete"),
    ({"spo2_date": "2020-06-01", "oxysat": 95, "spo2_at_rest": False}, "", "complete"),  # 'no' is an answer
    ({}, "oximeter broken", "not_done"),
])
def test_a_forms_status(data: dict[str, object] | None, reason: str, expected: str) -> None:
    assert status(CAT, "spo2", data, reason) == expected


def test_not_done_needs_its_reason() -> None:
    with pytest.raises(ConductError) as e:
        check_not_done(" no ")
    assert e.value.field == "not_done_reason"
    assert check_not_done(" participant declined ") == "participant declined"

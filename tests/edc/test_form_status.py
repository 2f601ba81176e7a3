"""Form status on the visit page and the participant page, and the missing-forms report: a visit form not started
at a visit that took place is missing until it is entered or recorded as not done with its reason."""

from __future__ import annotations

import pytest


@pytest.fixture
def d7(trial, users):  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit

    p = trial.enrol()
    trial.infuse(p, ago=20)
    v = Visit.objects.get(participant=p, code="D7")
    return record_visit(users["coordinator"], v, done_on=v.target, version=v.version)


def test_a_visits_forms_are_missing_until_entered_or_not_done(d7, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.service import save_form

    coordinator = client_as("coordinator")
    report = client_as("monitor").get("/missing-forms/").content.decode()
    forms = [f for f in d7.forms if f not in ("infusion", "adverse_events")]
    for form_id in forms:
        assert f"/visits/D7/{form_id}/" in report
    assert "/visits/D7/infusion/" not in report and "/visits/D7/adverse_events/" not in report
    save_form(users["coordinator"], d7, "vital_signs", {"vs_date": d7.target, "sysbp": 120, "diabp": 80})
    refused = coordinator.post("/participants/001/visits/D7/spo2/not-done/", {"not_done_reason": "no"}, follow=True)
    assert "say why the form was not done" in refused.content.decode()
    coordinator.post("/participants/001/visits/D7/spo2/not-done/", {"not_done_reason": "the oximeter was broken"})
    report = client_as("monitor").get("/missing-forms/").content.decode()
    assert "/visits/D7/vital_signs/" not in report and "/visits/D7/spo2/" not in report
    visit = coordinator.get("/participants/001/visits/D7/").content.decode()
    assert 'data-status="complete"' in visit and 'data-status="not_done"' in visit and "the oximeter was broken" in visit
    detail = coordinator.get("/participants/001/").content.decode()
    assert f"2 of {len(forms)} complete" in detail


def test_the_monitor_may_not_record_a_form_as_not_done(d7, client_as) -> None:  # type: ignore[no-untyped-def]
    assert client_as("monitor").post("/participants/001/visits/D7/spo2/not-done/", {"not_done_reason": "broken"}).status_code == 403

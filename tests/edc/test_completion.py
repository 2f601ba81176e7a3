"""A participant completes the study only once the last scheduled visit (month 6) is done."""

from __future__ import annotations

import pytest

from trialdesk.trial.errors import ConductError

from .conftest import days_ago


def _infused(trial):  # type: ignore[no-untyped-def]
    entry = trial.ready()
    from trialdesk.edc.participants.service import enrol

    participant = enrol(trial.users["coordinator"], entry, enrolled_on=days_ago(25))
    trial.infuse(participant, ago=20)
    participant.refresh_from_db()
    return participant


def test_completion_before_the_month_6_visit_is_refused(trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import complete_study

    p = _infused(trial)
    with pytest.raises(ConductError, match="last scheduled visit"):
        complete_study(trial.users["pi"], p, on=days_ago(1), version=p.version)
    p.refresh_from_db()
    assert p.status == "on_study"


def test_completion_after_the_month_6_visit_is_recorded_with_its_date(trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import complete_study

    p = _infused(trial)
    last = p.visits.order_by("-day").first()
    # the visit itself is entered with the data; here the month-6 date is set directly on the record to stay in the past
    from trialdesk.edc.audit import trail

    trail.update(last, trial.users["coordinator"], changes={"done_on": days_ago(2)}, reason="visit date entered", version=last.version)
    p = complete_study(trial.users["pi"], p, on=days_ago(2), version=p.version)
    assert (p.status, p.off_study_on) == ("completed", days_ago(2))
    with pytest.raises(ConductError, match="already completed"):
        complete_study(trial.users["pi"], p, on=days_ago(1), version=p.version)


def _month_6_done(trial):  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit import trail

    p = _infused(trial)
    last = p.visits.order_by("-day").first()
    trail.update(last, trial.users["coordinator"], changes={"done_on": days_ago(2)}, reason="visit date entered", version=last.version)
    p.refresh_from_db()
    return p


def test_the_pi_is_offered_study_completion_only_after_the_month_6_visit(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit import trail

    p = _infused(trial)
    pi = client_as("pi")
    assert "Study completed" not in pi.get(f"/participants/{p.subject_id}/").content.decode()
    last = p.visits.order_by("-day").first()
    trail.update(last, trial.users["coordinator"], changes={"done_on": days_ago(2)}, reason="visit date entered", version=last.version)
    assert "Study completed" in pi.get(f"/participants/{p.subject_id}/").content.decode()


def test_a_coordinator_is_not_offered_completion_and_cannot_record_it(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p = _month_6_done(trial)
    coordinator = client_as("coordinator")
    assert "Study completed" not in coordinator.get(f"/participants/{p.subject_id}/").content.decode()
    response = coordinator.post(f"/participants/{p.subject_id}/off-study/?complete=1",
                                {"completed_on": days_ago(2).isoformat(), "confirm": "on", "version": p.version})
    assert response.status_code == 403
    p.refresh_from_db()
    assert p.status == "on_study"


def test_completion_without_the_confirmation_box_is_not_recorded(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p = _month_6_done(trial)
    page = client_as("pi").get(f"/participants/{p.subject_id}/off-study/?complete=1").content.decode()
    assert "I confirm the participant completed the protocol&#x27;s follow-up" in page
    response = client_as("pi").post(f"/participants/{p.subject_id}/off-study/?complete=1",
                                    {"completed_on": days_ago(2).isoformat(), "version": p.version})
    assert response.status_code == 200 and 'data-field="confirm"' in response.content.decode()
    p.refresh_from_db()
    assert p.status == "on_study"


def test_the_pi_confirms_completion_and_it_is_audited(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit.models import AuditEntry

    p = _month_6_done(trial)
    response = client_as("pi").post(f"/participants/{p.subject_id}/off-study/?complete=1",
                                    {"completed_on": days_ago(1).isoformat(), "confirm": "on", "version": p.version})
    assert response.status_code == 302
    p.refresh_from_db()
    assert (p.status, p.off_study_on) == ("completed", days_ago(1))
    entry = AuditEntry.objects.filter(subject_id=p.subject_id, reason="completed the study").get()
    assert entry.username == "pi" and entry.changes["status"] == ["on_study", "completed"]
    page = client_as("pi").get(f"/participants/{p.subject_id}/").content.decode()
    assert "Study completed" not in page and "Completed" in page

"""Entered in error: an adverse event, an infusion or a visit's form that should never have been entered is
marked so with the reason, by the role that records it; it stays in the audit trail and on its page, and
leaves every count, report, stopping rule and data cut (snapshot)."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from trialdesk.edc.adverse_events.models import AdverseEvent
from trialdesk.edc.audit.models import AuditEntry
from trialdesk.edc.audit.trail import verify
from trialdesk.trial.errors import ConductError

from .conftest import at_days_ago, days_ago
from .test_adverse_events import record


def _cut() -> Any:
    from trialdesk.edc.adverse_events.service import cut

    return cut(timezone.localdate())


def test_an_ae_entered_in_error_leaves_the_data_cut_the_rules_and_the_lists_but_stays_in_the_trail(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p)
    ae = record(trial, p, term="Pneumonitis", grade=4, relatedness="possibly", onset=days_ago(3), learned_at=at_days_ago(2))
    assert [a.id for a in _cut().adverse_events] == [ae.ae_id]
    coordinator = client_as("coordinator")
    refused = coordinator.post(f"/adverse-events/{ae.pk}/entered-in-error/", {"error_reason": "oops", "version": ae.version})
    assert refused.status_code == 422 and 'data-field="error_reason"' in refused.content.decode()
    assert AdverseEvent.objects.filter(pk=ae.pk).exists()  # a reason of a few letters says nothing: refused, nothing changed
    done = coordinator.post(f"/adverse-events/{ae.pk}/entered-in-error/",
                            {"error_reason": "entered for the wrong participant", "version": ae.version})
    assert done.status_code == 302
    assert _cut().adverse_events == [] and not AdverseEvent.objects.exists()
    assert AdverseEvent.with_voided.get(pk=ae.pk).error_reason == "entered for the wrong participant"
    entry = AuditEntry.objects.filter(form="adverse_event", action="update").latest("seq")
    assert entry.reason == "entered in error: entered for the wrong participant" and entry.role == "coordinator"
    assert f"/adverse-events/{ae.pk}/\"" not in coordinator.get("/participants/001/").content.decode()
    assert coordinator.get("/api/adverse-events").json() == []
    page = coordinator.get(f"/adverse-events/{ae.pk}/").content.decode()
    assert 'id="entered-in-error"' in page and "entered for the wrong participant" in page and "/edit/" not in page
    assert verify().ok


def test_only_the_role_that_records_an_ae_marks_it_entered_in_error(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p)
    ae = record(trial, p)
    for role in ("monitor", "data_manager", "dsmb", "sponsor"):
        response = client_as(role).post(f"/adverse-events/{ae.pk}/entered-in-error/", {"error_reason": "a duplicate of AE-2",
                                                                                       "version": ae.version})
        assert response.status_code == 403, role
    assert AdverseEvent.objects.filter(pk=ae.pk).exists()


def test_a_form_entered_in_error_leaves_the_data_cut_and_can_be_entered_again(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import FormEntry, Visit
    from trialdesk.edc.visits.service import record_visit, save_form

    p = trial.enrol()
    trial.infuse(p, ago=20)
    visit = next(v for v in Visit.objects.filter(participant=p, day__gt=0).order_by("day") if "laboratory" in v.forms)
    visit = record_visit(users["coordinator"], visit, done_on=visit.target, version=visit.version)
    lab = save_form(users["coordinator"], visit, "laboratory", {"lb_date": visit.target, "alt": 35.0})
    assert [x.value for x in _cut().labs] == [35.0]
    url = f"/participants/001/visits/{visit.code}/laboratory/"
    response = client_as("coordinator").post(url + "entered-in-error/", {"error_reason": "another participant's results",
                                                                          "version": lab.version})
    assert response.status_code == 302
    assert _cut().labs == [] and not FormEntry.objects.exists()
    visit_page = client_as("coordinator").get(f"/participants/001/visits/{visit.code}/").content.decode()
    assert "entered in error…" not in visit_page.split("Laboratory")[1].split("</li>")[0]  # shown as empty, to enter again
    save_form(users["coordinator"], visit, "laboratory", {"lb_date": visit.target, "alt": 41.0})
    assert [x.value for x in _cut().labs] == [41.0] and FormEntry.with_voided.count() == 2
    assert verify().ok


def test_infusions_are_marked_entered_in_error_last_first_and_the_number_is_entered_again(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.dosing.models import Infusion
    from trialdesk.edc.voiding import mark_entered_in_error

    p = trial.enrol(ago=30)
    first = trial.infuse(p, ago=29)
    second = trial.infuse(p, ago=1, number=2)  # 28 days later
    with pytest.raises(ConductError, match="mark infusion 2 entered in error first"):
        mark_entered_in_error(users["coordinator"], first, reason="wrong participant", version=first.version)
    mark_entered_in_error(users["coordinator"], second, reason="recorded twice by mistake", version=second.version)
    assert [i.number for i in _cut().infusions] == [1]
    with pytest.raises(ConductError, match="already marked"):
        mark_entered_in_error(users["coordinator"], Infusion.with_voided.get(pk=second.pk), reason="again and again", version=2)
    again = trial.infuse(p, ago=0, number=2)
    assert again.number == 2 and Infusion.objects.count() == 2 and Infusion.with_voided.count() == 3
    assert verify().ok


def test_an_ae_a_death_report_names_is_not_marked_entered_in_error(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from .test_death_dsmb_medwatch import FATAL, death_form

    p = trial.enrol()
    trial.infuse(p, ago=25)
    fatal = record(trial, p, **FATAL)
    assert client_as("pi").post(f"/participants/{p.subject_id}/death/", death_form(fatal)).status_code == 302
    response = client_as("pi").post(f"/adverse-events/{fatal.pk}/entered-in-error/", {"error_reason": "wrong participant",
                                                                                     "version": fatal.version})
    assert response.status_code == 422 and "correct the death report" in response.content.decode()

"""Data entry that protects the data: every problem of a form shown at once at its field, nothing stored; an
assessment or a visit out of its window needs the reason and lands in the protocol-deviation log, beside the
deviations site staff log by hand and SAE reports submitted late; the data cut carries the log."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from trialdesk.edc.audit.models import AuditEntry
from trialdesk.trial.errors import ConductError

from .conftest import at_days_ago, days_ago
from .test_adverse_events import _form, record


@pytest.fixture
def at_visit(trial, users):  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit

    p = trial.enrol()
    trial.infuse(p, ago=20)
    visit = Visit.objects.get(participant=p, code="D7")
    return record_visit(users["coordinator"], visit, done_on=visit.target, version=visit.version)


def _cut():  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import cut

    return cut(timezone.localdate())


def test_every_problem_of_a_vital_signs_form_is_shown_at_once_and_nothing_is_stored(at_visit, client_as) -> None:  # type: ignore[no-untyped-def]
    n = AuditEntry.objects.count()
    url = f"/participants/001/visits/{at_visit.code}/vital_signs/"
    page = client_as("coordinator").post(url, {"vs_date": days_ago(-2).isoformat(), "sysbp": "80", "diabp": "95"}).content.decode()
    assert 'data-field="vs_date"' in page and "is in the future" in page
    assert 'data-field="diabp"' in page and "must be below Systolic blood pressure (80)" in page
    assert AuditEntry.objects.count() == n


def test_an_assessment_out_of_the_visit_window_is_kept_with_its_reason_and_logged_as_a_deviation(at_visit, client_as) -> None:  # type: ignore[no-untyped-def]
    late = at_visit.latest + dt.timedelta(days=1)
    url = f"/participants/001/visits/{at_visit.code}/vital_signs/"
    refused = client_as("coordinator").post(url, {"vs_date": late.isoformat(), "sysbp": "120", "diabp": "80"}).content.decode()
    assert "outside the visit&#x27;s window" in refused and _cut().deviations == []
    saved = client_as("coordinator").post(url, {"vs_date": late.isoformat(), "sysbp": "120", "diabp": "80",
                                                 "out_of_window_reason": "the participant was admitted elsewhere"})
    assert saved.status_code == 302
    [deviation] = _cut().deviations
    assert (deviation.subject_id, deviation.date, deviation.category, deviation.source) == (
        "001", late, "Visit or assessment out of window", "automatic")
    assert "1 day(s) late" in deviation.description and deviation.reason == "the participant was admitted elsewhere"
    log = client_as("monitor").get("/deviations/").content.decode()
    assert "the participant was admitted elsewhere" in log and "by the desk" in log


def test_an_assessment_before_consent_is_refused(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import save_form

    p = trial.enrol()
    trial.infuse(p, ago=20)
    screening = Visit.objects.get(participant=p, code="SCREENING")
    with pytest.raises(ConductError, match="before consent was signed"):
        save_form(users["coordinator"], screening, "vital_signs", {"vs_date": days_ago(31)})


def test_a_visit_out_of_window_needs_the_reason_and_is_logged(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit

    p = trial.enrol()
    trial.infuse(p, ago=20)
    d7 = Visit.objects.get(participant=p, code="D7")
    day = d7.latest + dt.timedelta(days=2)
    with pytest.raises(ConductError) as err:
        record_visit(users["coordinator"], d7, done_on=day, version=d7.version)
    assert err.value.field == "out_of_window_reason"
    record_visit(users["coordinator"], d7, done_on=day, version=d7.version, out_of_window_reason="travelling")
    [d] = _cut().deviations
    assert d.date == day and d.description.startswith(f"{d7.name} visit on {day}") and "(2 day(s) late)" in d.description


def test_recovered_without_a_resolution_date_is_refused_at_the_resolution_with_the_other_errors(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.infuse(trial.enrol())
    page = client_as("coordinator").post("/adverse-events/new/", _form(outcome="recovered", resolved="", grade="")).content.decode()
    assert 'data-field="resolved"' in page and "needs the date the event resolved" in page and 'data-field="grade"' in page
    from trialdesk.edc.participants.models import Participant

    with pytest.raises(ConductError, match="needs the date the event resolved"):  # the service refuses it too (API, imports)
        record(trial, Participant.objects.get(), outcome="recovered", resolved=None)


def test_site_staff_log_a_deviation_with_category_and_reason_the_monitor_reads_it(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.enrol()
    entry = {"subject_id": "001", "date": days_ago(2).isoformat(), "category": "procedures",
             "description": "the 6-minute walk was not done at day 28", "reason": "the treadmill room was closed"}
    refused = client_as("coordinator").post("/deviations/", entry | {"reason": ""})
    assert refused.status_code == 422 and 'data-field="reason"' in refused.content.decode()
    assert client_as("monitor").post("/deviations/", entry).status_code == 403
    assert client_as("coordinator").post("/deviations/", entry).status_code == 302
    [d] = _cut().deviations
    assert (d.category, d.source, d.reason) == ("Study procedures or assessments not done as required", "manual",
                                                "the treadmill room was closed")
    assert "the treadmill room was closed" in client_as("monitor").get("/deviations/").content.decode()


def test_an_sae_report_not_submitted_by_its_due_time_is_in_the_deviation_log(trial) -> None:  # type: ignore[no-untyped-def]
    p = trial.enrol()
    trial.infuse(p)
    sae = record(trial, p, term="Lung infection", grade=3, serious=True, seriousness=["hospitalisation"], onset=days_ago(12),
                 learned_at=at_days_ago(11))
    late = [d for d in _cut().deviations if d.category == "SAE reported late"]
    assert late and all(d.subject_id == "001" and sae.ae_id in d.description for d in late)

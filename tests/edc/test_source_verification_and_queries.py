"""The monitor monitors: source data verification per form and per field (a changed value un-verifies itself, a save
with the same value does not), queries on a data point raised from the form itself, with their age, answered by the
site, closed or withdrawn by whoever raised them, and the monitoring-visit report."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from trialdesk.trial.errors import ConductError

from .conftest import days_ago

VITALS = {"vs_date": None, "sysbp": 120, "diabp": 80, "pulse": 70}


def _visit_with_vitals(trial: Any, users: dict[str, Any]) -> tuple[Any, Any, Any]:
    """A participant, their first visit after the infusion that has vital signs (done on its target day), and the form."""
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit, save_form

    p = trial.enrol()
    trial.infuse(p, ago=20)
    v = next(v for v in Visit.objects.filter(participant=p, day__gt=0).order_by("day") if "vital_signs" in v.forms)
    v = record_visit(users["coordinator"], v, done_on=v.target, version=v.version)
    entry = save_form(users["coordinator"], v, "vital_signs", VITALS | {"vs_date": v.target})
    return p, v, entry


def _url(v: Any, form: str = "vital_signs") -> str:
    return f"/participants/{v.participant.subject_id}/visits/{v.code}/{form}/"


def _change(users: dict[str, Any], v: Any, **values: Any) -> Any:
    from trialdesk.edc.visits.crf import definition
    from trialdesk.edc.visits.models import FormEntry
    from trialdesk.edc.visits.service import save_form

    e = FormEntry.objects.get(visit=v, form="vital_signs")
    return save_form(users["coordinator"], v, "vital_signs", e.data_values(definition("vital_signs")) | values,
                     reason="transcription corrected", version=e.version)


def test_the_monitor_verifies_fields_one_by_one_then_the_whole_form(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.service import form_sdv

    _p, v, entry = _visit_with_vitals(trial, users)
    monitor = client_as("monitor")
    page = monitor.get(_url(v)).content.decode()
    assert 'name="field" value="sysbp"' in page and 'data-sdv="not_verified"' in page
    r = monitor.post("/sdv/", {"model": "visits.FormEntry", "object_id": entry.pk, "field": ["sysbp", "diabp"], "next": _url(v)})
    assert r.status_code == 302 and r["Location"] == _url(v)
    entry.refresh_from_db()
    s = form_sdv(entry)
    assert (s.fields, s.verified, s.status, s.label) == (4, 2, "partly_verified", "2 of 4 fields verified")
    monitor.post("/sdv/", {"model": "visits.FormEntry", "object_id": entry.pk, "all": "1", "next": _url(v)})
    assert form_sdv(entry).status == "verified"
    visit_page = monitor.get(f"/participants/001/visits/{v.code}/").content.decode()
    assert 'data-sdv="verified"' in visit_page and "Source data verification" in visit_page


def test_a_changed_value_unverifies_itself_and_a_save_with_the_same_value_does_not(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit.models import AuditEntry
    from trialdesk.edc.audit.trail import verify
    from trialdesk.edc.quality.service import field_states, form_sdv, verify_fields

    _p, v, entry = _visit_with_vitals(trial, users)
    verify_fields(users["monitor"], entry)
    same = _change(users, v)  # saved again with every value as it was: nothing changed, nothing to verify again
    assert same.version == entry.version and form_sdv(same).status == "verified"
    changed = _change(users, v, sysbp=130)
    states = field_states(changed)
    assert states["sysbp"].state == "changed" and states["sysbp"].was == 120
    assert states["diabp"].state == "verified" and states["pulse"].state == "verified"
    assert form_sdv(changed).status == "changed_since_verified"
    # the trail holds the change and, beside it, that the verified value lapsed (old -> new)
    update = AuditEntry.objects.filter(model="visits.FormEntry", action="update").last()
    lapsed = AuditEntry.objects.get(action="unverify")
    assert lapsed.seq == update.seq + 1 and lapsed.changes == {"sysbp": [120, 130]} and lapsed.subject_id == "001"
    page = client_as("monitor").get(_url(v)).content.decode()
    assert "changed since verified" in page and "(was 120)" in page
    verify_fields(users["monitor"], changed, ["sysbp"])  # verified again at the new value
    assert form_sdv(changed).status == "verified"
    assert verify().ok


def test_monitors_change_no_data_and_only_monitors_verify(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.models import SourceVerification

    _p, v, entry = _visit_with_vitals(trial, users)
    assert client_as("monitor").post(_url(v), {"vs_date": v.target.isoformat(), "sysbp": "99"}).status_code == 403
    for role in ("coordinator", "data_manager", "pi"):
        assert client_as(role).post("/sdv/", {"model": "visits.FormEntry", "object_id": entry.pk, "all": "1"}).status_code == 403
    assert not SourceVerification.objects.exists()
    assert 'name="field"' not in client_as("coordinator").get(_url(v)).content.decode()


def test_a_field_with_no_value_has_nothing_to_verify(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.service import verify_fields

    _p, _v, entry = _visit_with_vitals(trial, users)
    with pytest.raises(ConductError, match="has no value"):
        verify_fields(users["monitor"], entry, ["temp"])


def test_sdv_progress_per_participant_and_for_the_site(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.dosing.models import Infusion
    from trialdesk.edc.quality.service import verify_fields, verify_source

    p, v, entry = _visit_with_vitals(trial, users)
    verify_fields(users["monitor"], entry, ["sysbp", "diabp"])
    verify_source(users["monitor"], p, Infusion.objects.get(participant=p))
    page = client_as("monitor").get("/sdv/progress/").content.decode()
    row = page.split('data-subject="001"')[1].split("</tr>")[0]
    assert "0 of 1" in row and "2 of 4" in row and "1 of 1" in row and "60 %" in row  # 3 of 5 (fields and infusions)
    site = page.split('id="sdv-site"')[1].split("</tr>")[0]
    assert "Mayo Clinic in Florida" in site and "2 of 4" in site
    _change(users, v, sysbp=131)
    row = client_as("monitor").get("/sdv/progress/").content.decode().split('data-subject="001"')[1].split("</tr>")[0]
    assert f'visits/{v.code}/vital_signs/' in row  # the form changed since verified, to review


# --- queries ---------------------------------------------------------------------------------------


def _raise(client: Any, v: Any, field: str = "sysbp", text: str = "Source says 118; please check.") -> Any:
    return client.post("/queries/", {"action": "raise", "subject_id": "001", "visit": v.code, "form": "vital_signs", "field": field,
                                     "text": text, "next": _url(v)})


def test_a_query_raised_beside_a_field_shows_on_that_field_until_closed(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.models import Query

    _p, v, _e = _visit_with_vitals(trial, users)
    monitor, coordinator = client_as("monitor"), client_as("coordinator")
    form_page = monitor.get(_url(v)).content.decode()
    assert 'name="field" value="sysbp"' in form_page and "Raise a query" in form_page
    r = _raise(monitor, v)
    assert r.status_code == 302 and r["Location"] == _url(v)
    q = Query.objects.get()
    assert (q.visit, q.form, q.field, q.raised_by.username) == (v, "vital_signs", "sysbp", "monitor")
    assert q.location() == f"{v.name} · Vital signs · Systolic blood pressure"
    # the site sees it on the field it is about, and answers it there
    page = coordinator.get(_url(v)).content.decode()
    sysbp_row = page.split('id="field-sysbp"')[1].split("</tr>")[0]
    assert "Source says 118" in sysbp_row and "Source says 118" not in page.split('id="field-diabp"')[1].split("</tr>")[0]
    coordinator.post("/queries/", {"action": "answer", "query": q.pk, "version": q.version, "answer": "Corrected to 118.",
                                   "next": _url(v)})
    q.refresh_from_db()
    assert q.status == "answered" and q.answered_at is not None
    assert "Corrected to 118." in monitor.get(_url(v)).content.decode()
    monitor.post("/queries/", {"action": "close", "query": q.pk, "version": q.version})
    q.refresh_from_db()
    assert q.status == "closed" and q.closed_at is not None
    assert "Source says 118" not in coordinator.get(_url(v)).content.decode()
    assert "Source says 118" in monitor.get("/queries/?status=closed").content.decode()


def test_a_field_the_form_does_not_have_is_refused(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.models import Query

    _p, v, _e = _visit_with_vitals(trial, users)
    _raise(client_as("monitor"), v, field="no_such_field")
    assert not Query.objects.exists()


def test_only_whoever_raised_a_query_closes_or_withdraws_it_and_a_withdrawal_needs_a_reason(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.service import answer_query, close_query, raise_query, withdraw_query

    p, v, _e = _visit_with_vitals(trial, users)
    q = raise_query(users["monitor"], p, text="check", visit=v, form="vital_signs", field="pulse")
    with pytest.raises(ConductError, match="only monitor, who raised"):
        withdraw_query(users["data_manager"], q, reason="duplicate", version=q.version)
    with pytest.raises(ConductError, match="reason"):
        withdraw_query(users["monitor"], q, reason="  ", version=q.version)
    q = answer_query(users["coordinator"], q, answer="as recorded", version=q.version)
    with pytest.raises(ConductError, match="only monitor, who raised"):
        close_query(users["data_manager"], q, version=q.version)
    q = withdraw_query(users["monitor"], q, reason="raised on the wrong visit", version=q.version)
    assert (q.status, q.withdrawn_reason, q.is_open) == ("withdrawn", "raised on the wrong visit", False)
    with pytest.raises(ConductError, match="withdrawn"):
        answer_query(users["coordinator"], q, answer="late", version=q.version)


def test_a_query_carries_its_age_in_days(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from trialdesk.edc.quality.models import Query
    from trialdesk.edc.quality.service import raise_query

    p, v, _e = _visit_with_vitals(trial, users)
    q = raise_query(users["monitor"], p, text="check", visit=v, form="vital_signs", field="pulse")
    assert q.days_open() == 0
    Query.objects.filter(pk=q.pk).update(created_at=timezone.now() - dt.timedelta(days=3))  # bookkeeping column, not audited
    q.refresh_from_db()
    assert q.days_open() == 3
    assert 'data-days-open="3"' in client_as("coordinator").get("/queries/").content.decode()


def test_a_query_typed_before_queries_were_attached_is_attached_to_its_visit_and_form(trial, users) -> None:  # type: ignore[no-untyped-def]
    import importlib

    from django.apps import apps

    from trialdesk.edc.audit.models import AuditEntry
    from trialdesk.edc.audit.trail import verify
    from trialdesk.edc.quality.models import Query
    from trialdesk.edc.quality.service import raise_query

    p, v, _e = _visit_with_vitals(trial, users)
    typed = raise_query(users["monitor"], p, text="check", target=f"{v.code}: vital_signs")
    other = raise_query(users["monitor"], p, text="check", target="infusion 1: weight_kg")
    migration = importlib.import_module("trialdesk.edc.quality.migrations.0003_queries_on_data_points_and_field_sdv")
    migration.attach_legacy_queries(apps, None)
    typed.refresh_from_db()
    other.refresh_from_db()
    assert (typed.visit, typed.form) == (v, "vital_signs") and (other.visit, other.form, other.location()) == (None, "",
                                                                                                              "infusion 1: weight_kg")
    assert AuditEntry.objects.filter(action="migrate", model="quality.Query", object_id=str(typed.pk), subject_id="001").exists()
    assert Query.objects.count() == 2 and verify().ok


# --- the monitoring-visit report -----------------------------------------------------------------


def test_the_monitoring_visit_report_lists_what_was_verified_raised_answered_and_closed(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.service import answer_query, close_query, raise_query, verify_fields, withdraw_query

    p, v, entry = _visit_with_vitals(trial, users)
    verify_fields(users["monitor"], entry, ["sysbp"])
    q1 = raise_query(users["monitor"], p, text="pulse against the ECG?", visit=v, form="vital_signs", field="pulse")
    q1 = answer_query(users["coordinator"], q1, answer="ECG says 70", version=q1.version)
    close_query(users["monitor"], q1, version=q1.version)
    q2 = raise_query(users["monitor"], p, text="diastolic?", visit=v, form="vital_signs", field="diabp")
    withdraw_query(users["monitor"], q2, reason="asked twice", version=q2.version)
    raise_query(users["monitor"], p, text="weight scale calibrated?", visit=v, form="vital_signs", field="pulse")
    today = days_ago(0).isoformat()
    page = client_as("monitor").get("/monitoring-report/", {"start": today, "end": today}).content.decode()
    assert 'media="print"' in page  # prints without the navigation and the controls
    verified = page.split('id="report-verified"')[1].split("</table>")[0]
    assert "Systolic blood pressure" in verified and "120" in verified and " E" in verified  # the time says its zone (EST/EDT)
    for key, text in (("raised", "pulse against the ECG?"), ("answered", "ECG says 70"), ("closed", "pulse against the ECG?"),
                      ("withdrawn", "asked twice"), ("open", "weight scale calibrated?")):
        assert text in page.split(f'id="report-{key}"')[1].split("</table>")[0], key
    assert "pulse against the ECG?" not in page.split('id="report-open"')[1].split("</table>")[0]
    # the day before: nothing happened yet
    before = days_ago(1).isoformat()
    page = client_as("monitor").get("/monitoring-report/", {"start": before, "end": before}).content.decode()
    assert "Nothing verified in this period." in page and "pulse against the ECG?" not in page
    assert client_as("coordinator").get("/monitoring-report/").status_code == 200
    assert client_as("dsmb").get("/monitoring-report/").status_code == 403
    pdf = client_as("monitor").get("/monitoring-report/pdf/", {"start": today, "end": today})
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert f'monitoring-report-NCT03929120-{today}-to-{today}.pdf' in pdf["Content-Disposition"]
    from trialdesk.edc.quality.progress import monitoring_activity
    from trialdesk.edc.quality.report_pdf import tables

    sections = {title.split(" (")[0]: rows for title, _columns, rows in tables(monitoring_activity(days_ago(0), days_ago(0)))}
    assert sections["Verified"][0][1:3] == [f"{v.name} · Vital signs · Systolic blood pressure", "120"]
    assert sections["Verified"][0][4].endswith(("EST", "EDT"))  # the PDF's times say their zone too
    assert [r[3] for r in sections["Queries still open at the end of the period"]] == ["weight scale calibrated?"]
    withdrawn = sections["Queries withdrawn"][0][5]
    assert withdrawn.startswith("Withdrawn") and withdrawn.endswith(": asked twice")


@pytest.mark.django_db(transaction=True)
def test_the_migration_attaches_typed_queries_on_a_database_that_had_them(trial, users) -> None:  # type: ignore[no-untyped-def]
    """Run for real: back to the schema before queries were attached, then forward again over the stored queries."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from trialdesk.edc.audit.trail import verify
    from trialdesk.edc.quality.models import Query
    from trialdesk.edc.quality.service import answer_query, raise_query

    p, v, _e = _visit_with_vitals(trial, users)
    q = raise_query(users["monitor"], p, text="check the pulse", target=f"{v.code}: vital_signs")
    answer_query(users["coordinator"], q, answer="checked", version=q.version)
    Query.objects.filter(pk=q.pk).update(answered_at=None)  # as stored before the column existed
    before = ("quality", "0002_protocol_deviation_log")
    latest = ("quality", "0003_queries_on_data_points_and_field_sdv")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([latest])
    q = Query.objects.get(pk=q.pk)
    assert (q.visit_id, q.form, q.status) == (v.pk, "vital_signs", "answered") and q.answered_at is not None
    assert verify().ok


def test_the_monitor_verifies_an_adverse_event_and_a_later_correction_needs_verifying_again(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import edit_adverse_event

    from .test_adverse_events import record

    p = trial.enrol()
    trial.infuse(p, ago=20)
    ae = record(trial, p)
    monitor = client_as("monitor")
    page = monitor.get(f"/adverse-events/{ae.pk}/").content.decode()
    assert 'data-sdv="not_verified"' in page and "Verify against the source" in page
    assert "Verify against the source" not in client_as("coordinator").get(f"/adverse-events/{ae.pk}/").content.decode()
    assert 'id="ae-sdv"' not in client_as("dsmb").get(f"/adverse-events/{ae.pk}/").content.decode()
    r = monitor.post("/sdv/", {"model": "adverse_events.AdverseEvent", "object_id": ae.pk, "next": f"/adverse-events/{ae.pk}/"})
    assert r["Location"] == f"/adverse-events/{ae.pk}/"
    assert 'data-sdv="verified"' in monitor.get(f"/adverse-events/{ae.pk}/").content.decode()
    row = monitor.get("/sdv/progress/").content.decode().split('data-subject="001"')[1].split("</tr>")[0]
    assert "1 of 1" in row
    ae = edit_adverse_event(users["coordinator"], ae, changes={"grade": 2}, reason="as it was", version=ae.version)  # the same grade
    assert 'data-sdv="verified"' in monitor.get(f"/adverse-events/{ae.pk}/").content.decode()
    edit_adverse_event(users["coordinator"], ae, changes={"grade": 1}, reason="graded from the clinic note", version=ae.version)
    assert 'data-sdv="not_verified"' in monitor.get(f"/adverse-events/{ae.pk}/").content.decode()

"""The audit trail tells the truth about time (true UTC, labelled) and shows each change as a person reads it:
field: old → new with the field's name and a coded value's label, the record's kind in words, the reason first."""

from __future__ import annotations

import datetime as dt

from trialdesk.edc.audit.models import AuditEntry

from .test_adverse_events import record


def test_the_audit_page_shows_true_utc_readable_fields_and_the_reason(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import edit_adverse_event

    p = trial.enrol()
    trial.infuse(p)
    ae = record(trial, p, relatedness="unlikely")
    edit_adverse_event(users["pi"], ae, changes={"relatedness": "possibly"}, reason="the investigator's review", version=ae.version)
    entry = AuditEntry.objects.filter(action="update", form="adverse_event").get()
    page = client_as("monitor").get("/audit/?subject_id=001").content.decode()
    assert entry.at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") in page  # the UTC column is UTC, not the site's clock
    assert "<b>relatedness to the study product</b>: Unlikely → Possibly" in page  # the field's name, the choices' labels
    assert "<b>Reason:</b> the investigator&#x27;s review" in page
    assert "adverse event " + str(ae.pk) in page and "adverse_events.AdverseEvent" not in page
    assert '<label for="f-subject">Subject id</label>' in page

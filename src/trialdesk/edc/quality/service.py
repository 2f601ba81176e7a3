"""Queries on a data point and source data verification (per form and per field).

A query points at a participant and, raised from a form, at the visit, the form and the field; the site answers it,
whoever raised it closes it or withdraws it with the reason. A monitor verifies a form's fields one by one (or all at
once): each mark keeps the value verified, so a later change of the value leaves the field "changed since verified"
(recorded in the audit trail beside the change) while a save with the same value changes nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from trialdesk.edc.audit import trail
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.quality.models import Query, SourceVerification
from trialdesk.trial.errors import ConductError

FORM_ENTRY = "visits.FormEntry"


def _check_point(participant: Participant, visit: Any, form: str, field: str) -> None:
    from trialdesk.edc.visits.crf import crf_form

    if visit is None:
        if form or field:
            raise ConductError("visit", "name the visit of the form queried")
        return
    if visit.participant_id != participant.pk:
        raise ConductError("visit", f"visit {visit.code} is not one of {participant.subject_id}'s visits")
    if form and form not in visit.forms:
        raise ConductError("form", f"form {form[:40]!r} is not due at visit {visit.code}; due: {', '.join(visit.forms)}")
    if field:
        if not form:
            raise ConductError("form", "name the form of the field queried")
        try:
            names = set(crf_form(form).fields)
        except KeyError:
            names = set()
        if field not in names:
            raise ConductError("field", f"the form {form!r} has no field {field[:40]!r}")


def raise_query(user: Any, participant: Participant, *, text: str, origin: str = "monitor", visit: Any = None, form: str = "",
                field: str = "", target: str = "") -> Query:
    """A query on a data point (participant; visit, form and field when raised from a form)."""
    if not text.strip():
        raise ConductError("text", "say what should be checked or corrected")
    _check_point(participant, visit, form, field)
    query = trail.create(Query(participant=participant, visit=visit, form=form, field=field, target=target, text=text.strip(),
                               origin=origin, raised_by=user), user)
    from trialdesk.edc.alerts import notify_query

    notify_query(query)  # e-mail to the site staff it is assigned to
    return query


def answer_query(user: Any, query: Query, *, answer: str, version: int) -> Query:
    if not query.is_open:
        raise ConductError("answer", f"the query is {query.get_status_display().lower()}; ask the monitor to raise a new one")
    if not answer.strip():
        raise ConductError("answer", "write the answer (what was checked, what was corrected)")
    return trail.update(query, user, changes={"answer": answer.strip(), "answered_by": user, "status": "answered",
                                              "answered_at": timezone.now()}, reason="query answered", version=version)


def _raiser_only(user: Any, query: Query, doing: str) -> None:
    if query.raised_by_id is not None and query.raised_by_id != getattr(user, "pk", None):
        raise ConductError("query", f"only {query.raised_by.get_username()}, who raised {query.query_id}, may {doing} it")


def close_query(user: Any, query: Query, *, version: int) -> Query:
    if query.status != "answered":
        raise ConductError("status", "only an answered query can be closed; wait for the site's answer")
    _raiser_only(user, query, "close")
    return trail.update(query, user, changes={"status": "closed", "closed_by": user, "closed_at": timezone.now()},
                        reason="query closed", version=version)


def withdraw_query(user: Any, query: Query, *, reason: str, version: int) -> Query:
    """Withdrawn by whoever raised it (raised in error, or the question no longer stands), with the reason."""
    if not query.is_open:
        raise ConductError("withdrawn_reason", f"the query is already {query.get_status_display().lower()}")
    _raiser_only(user, query, "withdraw")
    if not reason.strip():
        raise ConductError("withdrawn_reason", "give the reason the query is withdrawn")
    return trail.update(query, user, changes={"status": "withdrawn", "withdrawn_reason": reason.strip(), "closed_by": user,
                                              "closed_at": timezone.now()}, reason="query withdrawn", version=version)


def open_queries_by_field(participant: Participant, visit: Any, form: str) -> dict[str, list[Query]]:
    """The queries not closed on a form, by field ('' for the form as a whole)."""
    out: dict[str, list[Query]] = {}
    for q in Query.objects.filter(participant=participant, visit=visit, form=form, status__in=("open", "answered")).order_by("pk"):
        out.setdefault(q.field, []).append(q)
    return out


# --- source data verification -----------------------------------------------------------------------


def value_text(value: Any) -> str:
    """A stored form value as one text (the mark keeps it; the comparison reads it)."""
    return json.dumps(value, sort_keys=True)


def verify_source(user: Any, participant: Participant, record: Any, *, note: str = "") -> SourceVerification:
    """A whole record (an infusion, an AE) verified at its current version."""
    return trail.create(SourceVerification(participant=participant, model=record._meta.label, object_id=str(record.pk),
                                           record_version=record.version, verified_by=user, note=note), user)


def verify_fields(user: Any, entry: Any, fields: list[str] | None = None, *, note: str = "") -> list[SourceVerification]:
    """Mark fields of a visit form as verified against the source (``None``: every field with a value). A field already
    verified at its current value is not marked again; a field with no value has nothing to verify."""
    if entry.entered_in_error:
        raise ConductError("form", "this form was entered in error; there is nothing to verify")
    if entry.not_done_reason:
        raise ConductError("form", "this form was not done; there is nothing to verify")
    wanted = [f for f in entry.data] if fields is None else fields
    if not wanted:
        raise ConductError("fields", "choose the fields you verified")
    state = field_states(entry)
    out = []
    with transaction.atomic():
        for name in wanted:
            if name not in entry.data:
                raise ConductError(name, f"{name[:40]!r} has no value on this form; there is nothing to verify")
            if state[name].state == "verified":
                continue
            out.append(trail.create(SourceVerification(participant=entry.owner(), model=FORM_ENTRY, object_id=str(entry.pk),
                                                       record_version=entry.version, field=name,
                                                       value=value_text(entry.data[name]), verified_by=user, note=note), user))
    return out


@dataclass(frozen=True)
class FieldState:
    state: str  # "verified", "changed" (verified, then the value changed), "not_verified"
    mark: SourceVerification | None = None
    was: Any = None  # the value verified, when it has changed since

    @property
    def label(self) -> str:
        return {"verified": "verified", "changed": "changed since verified", "not_verified": "not verified"}[self.state]


def field_states(entry: Any, marks: list[SourceVerification] | None = None) -> dict[str, FieldState]:
    """Each field with a value: verified at its current value, changed since it was verified, or not verified."""
    if marks is None:
        marks = list(SourceVerification.objects.filter(model=FORM_ENTRY, object_id=str(entry.pk)).exclude(field="")
                     .select_related("verified_by").order_by("pk"))
    latest: dict[str, SourceVerification] = {}
    for m in marks:
        latest[m.field] = m
    out = {}
    for name, value in entry.data.items():
        m = latest.get(name)
        if m is None:
            out[name] = FieldState("not_verified")
        elif m.value == value_text(value):
            out[name] = FieldState("verified", m)
        else:
            out[name] = FieldState("changed", m, json.loads(m.value))
    return out


@dataclass(frozen=True)
class FormSdv:
    fields: int
    verified: int
    changed: int

    @property
    def status(self) -> str:
        if not self.fields:
            return "nothing_to_verify"
        if self.changed:
            return "changed_since_verified"
        if self.verified == self.fields:
            return "verified"
        return "partly_verified" if self.verified else "not_verified"

    @property
    def label(self) -> str:
        return {"nothing_to_verify": "nothing to verify", "changed_since_verified": "changed since verified",
                "verified": "verified", "partly_verified": f"{self.verified} of {self.fields} fields verified",
                "not_verified": "not verified"}[self.status]


def form_sdv(entry: Any, marks: list[SourceVerification] | None = None) -> FormSdv:
    if entry is None or entry.not_done_reason or entry.entered_in_error:
        return FormSdv(0, 0, 0)
    states = field_states(entry, marks).values()
    return FormSdv(len(states), sum(s.state == "verified" for s in states), sum(s.state == "changed" for s in states))


def lapse_verifications(user: Any, entry: Any, before: dict[str, Any]) -> None:
    """After a change of a verified form: each field whose verified value changed is recorded in the audit trail as no
    longer verified (the change itself is the form's own entry). Called inside the saving transaction."""
    states = field_states(entry)
    for name in sorted(set(before) | set(entry.data)):
        if before.get(name) == entry.data.get(name):
            continue
        s = states.get(name)
        mark = s.mark if s is not None else _last_mark(entry, name)
        if mark is None or (s is not None and s.state == "verified"):
            continue
        if mark.value != value_text(before.get(name)):
            continue  # it was not verified at the value it had before this change
        trail.append(user, "unverify", model=mark._meta.label, object_id=str(mark.pk), subject_id=entry.audit_subject(),
                     screening_id=entry.audit_screening(), form="sdv",
                     changes={name: [json.loads(mark.value), entry.data.get(name)]},
                     reason=f"{name} changed after it was verified; it needs verifying again")


def _last_mark(entry: Any, name: str) -> SourceVerification | None:
    return SourceVerification.objects.filter(model=FORM_ENTRY, object_id=str(entry.pk), field=name).order_by("pk").last()


def verified(record: Any) -> bool:
    """Verified at its current version (a later change needs verifying again)."""
    return SourceVerification.objects.filter(model=record._meta.label, object_id=str(record.pk), record_version=record.version,
                                             field="").exists()

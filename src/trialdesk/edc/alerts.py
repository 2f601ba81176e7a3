"""E-mail alerts through Django's mail backend (the console in the demo; set ``TRIALDESK_EMAIL_BACKEND``
and Django's ``EMAIL_HOST``... to send): a new self-referral to the staff who screen, and a new query to
the site staff it is assigned to. (A new SAE is e-mailed by :func:`trialdesk.edc.adverse_events.service.notify_sae`.)

An e-mail is not a secure channel: it names the record (referral number, subject id) and where to find it in the
trial desk, never a person's name, contact details or answers. Each alert sent is written to the audit trail; a
mail server that refuses does not undo what was stored (the record is there; the failure is logged)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from trialdesk.edc.audit import trail
from trialdesk.edc.permissions import allowed

log = logging.getLogger(__name__)


def _link(path: str) -> str:
    """The page's address, absolute when ``TRIALDESK_DESK_URL`` says where the trial desk is served."""
    base = getattr(settings, "TRIALDESK_DESK_URL", "").rstrip("/")
    return f"{base}{path}"


def _active(usernames: set[str] | None, action: str) -> list[Any]:
    from trialdesk.edc.accounts.models import User

    users = User.objects.filter(is_active=True).exclude(email="")
    if usernames is not None:
        users = users.filter(username__in=usernames)
    return [u for u in users.order_by("username") if allowed(u, action)]


def _send(subject: str, body: str, recipients: list[Any], record: Any, what: str) -> int:
    from trialdesk.edc.web import protocol

    if not recipients:
        return 0
    emails = sorted({u.email for u in recipients})

    try:
        send_mail(f"[{protocol().identification.nct_id}] {subject}", body, None, emails)
    except OSError:  # the record is stored; the mail server's refusal is logged, not the user's problem
        log.exception("the %s alert could not be sent", what)
        return 0
    trail.append(None, "notify", model=record._meta.label, object_id=str(record.pk), subject_id=record.audit_subject(),
                 screening_id=record.audit_screening(), form=record.FORM, changes={what: [None, ", ".join(emails)]})
    return len(emails)


def query_assignees(query: Any) -> list[Any]:
    """The site staff a query is assigned to: those who entered or changed the participant's data (from the audit
    trail); when nobody at the site did, every site account that answers queries."""
    from trialdesk.edc.audit.models import AuditEntry

    wrote = set(AuditEntry.objects.filter(subject_id=query.participant.subject_id, action__in=("create", "update"))
                .values_list("username", flat=True))
    return _active(wrote, "answer_query") or _active(None, "answer_query")


def notify_query(query: Any) -> int:
    """Tell the staff the query is assigned to that it waits for their answer."""
    p = query.participant
    body = "\n".join([f"A query was raised on subject {p.subject_id}, assigned to you (you entered data of {p.subject_id}).", "",
                      f"About: {query.location()}", f"Query: {query.text}", "",
                      f"Answer it in the trial desk: {_link('/queries/')}"])
    return _send(f"Query on subject {p.subject_id}: {query.location()}", body, query_assignees(query), query, "query_alert")


def notify_referral(referral: Any) -> int:
    """Tell the staff who screen that a person asked to be contacted (no name or contact details in the e-mail)."""
    body = "\n".join([f"A new self-referral, {referral.number}, arrived from the public study page.",
                      f"Preliminary answer shown to the person: {referral.get_verdict_display().lower()}.", "",
                      f"Their contact details and answers are in the screening log: {_link('/screening/#' + referral.number)}"])
    return _send(f"New self-referral {referral.number}", body, _active(None, "screen"), referral, "referral_alert")

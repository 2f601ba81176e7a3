"""Storing a confirmed self-referral: once, audited, and never twice for the same person.

A repeat is either the same confirm step sent again (a double click, the back button: same
``submission``) or the same person referring themselves again within ``REPEAT_DAYS`` (same
name and contact for the same protocol). Either way nothing new is stored and the person is
told which referral the team already has.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from trialdesk.edc.audit import trail
from trialdesk.edc.context import lock_audit_chain
from trialdesk.edc.referrals.models import Referral
from trialdesk.protocol.model import Protocol
from trialdesk.public.questionnaire import Answers, evaluate

REPEAT_DAYS = 30
CONSENT_TEXT = ("I agree that the study team may contact me by phone or email about this study, and that my name, contact details"
                " and answers are kept for that purpose.")


class PublicSubmitter:
    """Who the audit trail names for a self-referral: the public form, not a user account."""

    role = "public"

    def get_username(self) -> str:
        return "public self-referral"


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str
    email: str
    message: str


class Repeat(Exception):
    """This referral is already stored; ``existing`` is the one the team has."""

    def __init__(self, existing: Referral, same_submission: bool) -> None:
        self.existing = existing
        self.same_submission = same_submission
        when = timezone.localdate(existing.created_at)
        super().__init__(f"we already have your referral {existing.number} from {when:%d %B %Y}; nothing new was stored")


def fingerprint(protocol: Protocol, contact: Contact) -> str:
    name = " ".join(contact.name.casefold().split())
    phone = re.sub(r"\D", "", contact.phone)
    text = "\x1f".join((protocol.id, name, phone, contact.email.strip().casefold()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _next_number() -> str:
    lock_audit_chain()  # serialises numbering with every audited write
    last = Referral.objects.order_by("-number").values_list("number", flat=True).first()
    n = int(last.split("-")[1]) + 1 if last else 1
    return f"R-{n:04d}"


def _repeat_of(print_: str, submission: str) -> Repeat | None:
    same = Referral.objects.filter(submission=submission).first()
    if same is not None:
        return Repeat(same, same_submission=True)
    recent = Referral.objects.filter(fingerprint=print_, created_at__gte=timezone.now() - dt.timedelta(days=REPEAT_DAYS)).first()
    return Repeat(recent, same_submission=False) if recent is not None else None


def submit(protocol: Protocol, answers: Answers, contact: Contact, *, submission: str, consent: bool) -> Referral:
    """Store the referral the person confirmed, with the preliminary answer they were shown.

    Raises :class:`Repeat` (nothing stored) for a repeated submission, ValueError without consent.
    """
    if not consent:
        raise ValueError("a referral is stored only with the person's consent to be contacted")
    result = evaluate(protocol, answers)
    print_ = fingerprint(protocol, contact)
    try:
        with transaction.atomic():
            number = _next_number()
            repeat = _repeat_of(print_, submission)
            if repeat is not None:
                raise repeat
            referral = Referral(number=number, name=contact.name, phone=contact.phone, email=contact.email, message=contact.message,
                                answers=dict(answers.values), verdict=result.verdict, reasons=result.reasons, to_check=result.to_check,
                                protocol_id=protocol.id, protocol_version=protocol.version, consent_to_contact=True,
                                consent_text=CONSENT_TEXT, fingerprint=print_, submission=submission)
            trail.create(referral, PublicSubmitter())
    except IntegrityError:
        # the same confirm step arrived twice at once; the other one stored it
        repeat = _repeat_of(print_, submission)
        if repeat is None:
            raise
        raise repeat from None
    from trialdesk.edc.alerts import notify_referral

    notify_referral(referral)  # e-mail to the staff who screen: the number and where to find it, no name
    return referral


def summary(protocol: Protocol, answers: dict[str, Any]) -> list[tuple[str, str]]:
    """(question, answer in words) for each answered question, as the coordinator reads them."""
    from trialdesk.public.questionnaire import answer_label, questionnaire

    if protocol.self_referral is None:
        return [(k, str(v)) for k, v in answers.items()]
    return [(q.text, answer_label(q, answers[q.id])) for q in questionnaire(protocol).questions if q.id in answers]


@dataclass(frozen=True)
class Listed:
    referral: Referral
    answers: list[tuple[str, str]]


@dataclass(frozen=True)
class ReferralLog:
    """The 'Self-referrals' section of the screening log: newest first, answers in words."""

    items: list[Listed]
    statuses: list[tuple[str, str]]


def listed(protocol: Protocol, limit: int = 200) -> ReferralLog:
    from trialdesk.edc.referrals.models import STATUSES

    return ReferralLog([Listed(r, summary(protocol, r.answers)) for r in Referral.objects.all()[:limit]], list(STATUSES))

from __future__ import annotations

from typing import Any

from trialdesk.edc.audit import trail
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.quality.models import Query, SourceVerification
from trialdesk.trial.errors import ConductError


def raise_query(user: Any, participant: Participant, *, target: str, text: str, origin: str = "monitor") -> Query:
    if not text.strip():
        raise ConductError("text", "say what should be checked or corrected")
    query = trail.create(Query(participant=participant, target=target, text=text.strip(), origin=origin, raised_by=user), user)
    from trialdesk.edc.alerts import notify_query

    notify_query(query)  # e-mail to the site staff it is assigned to
    return query


def answer_query(user: Any, query: Query, *, answer: str, version: int) -> Query:
    if query.status == "closed":
        raise ConductError("answer", "the query is closed; ask the monitor to raise a new one")
    if not answer.strip():
        raise ConductError("answer", "write the answer (what was checked, what was corrected)")
    return trail.update(query, user, changes={"answer": answer.strip(), "answered_by": user, "status": "answered"},
                        reason="query answered", version=version)


def close_query(user: Any, query: Query, *, version: int) -> Query:
    if query.status != "answered":
        raise ConductError("status", "only an answered query can be closed; wait for the site's answer")
    return trail.update(query, user, changes={"status": "closed", "closed_by": user}, reason="query closed", version=version)


def verify_source(user: Any, participant: Participant, record: Any, *, note: str = "") -> SourceVerification:
    return trail.create(SourceVerification(participant=participant, model=record._meta.label, object_id=str(record.pk),
                                           record_version=record.version, verified_by=user, note=note), user)


def verified(record: Any) -> bool:
    """Verified at its current version (a later change needs verifying again)."""
    return SourceVerification.objects.filter(model=record._meta.label, object_id=str(record.pk), record_version=record.version).exists()

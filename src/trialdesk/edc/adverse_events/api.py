"""API routes for adverse events: the CTCAE term search the AE form uses as the user types."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError

from trialdesk.edc.adverse_events.models import AdverseEvent
from trialdesk.edc.api_answers import DENIED
from trialdesk.edc.permissions import allowed
from trialdesk.terminology.ctcae import catalogue

router = Router(tags=["adverse events"])


class CtcaeTermOut(Schema):
    term: str
    meddra_code: str
    soc: str
    grades: dict[int, str | None]
    definition: str | None


class AdverseEventOut(Schema):
    id: str
    subject_id: str
    term: str
    meddra_code: str
    soc: str
    grade: int
    onset: str
    serious: bool
    relatedness: str
    expected: bool | None  # the sponsor-investigator's assessment in force; None: not yet assessed
    outcome: str


@router.get("/ctcae/search", response={200: list[CtcaeTermOut], **DENIED})
def ctcae_search(request: HttpRequest, q: str = "", limit: int = 15) -> list[CtcaeTermOut]:
    """CTCAE v5.0 terms matching ``q`` (words by prefix, synonyms), best first, with each grade's definition."""
    return [CtcaeTermOut(term=t.term, meddra_code=t.meddra_code, soc=t.soc, grades=dict(t.grades), definition=t.definition)
            for t in catalogue().search(q, limit=max(1, min(limit, 50)))]


@router.get("/adverse-events", response={200: list[AdverseEventOut], **DENIED})
def list_adverse_events(request: HttpRequest) -> list[AdverseEventOut]:
    if not allowed(request.user, "view_ae"):
        raise HttpError(403, "your role may not view ae")
    from trialdesk.edc.safety.service import assessments_in_force

    assessed = assessments_in_force()
    return [AdverseEventOut(id=ae.ae_id, subject_id=ae.participant.subject_id, term=ae.term, meddra_code=ae.meddra_code, soc=ae.soc,
                            grade=ae.grade, onset=ae.onset.isoformat(), serious=ae.serious, relatedness=ae.relatedness,
                            expected=assessed[ae.pk].expected if ae.pk in assessed else None, outcome=ae.outcome)
            for ae in AdverseEvent.objects.select_related("participant")]

"""The REST API (OpenAPI schema at /api/openapi.json, docs at /api/docs).

It authenticates with the session (and CSRF) like the pages, asks the same permission
table, and calls the same services, so a refusal here is the core's refusal there."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError
from ninja.security import django_auth

from trialdesk.edc.audit import trail
from trialdesk.edc.participants import service as participants
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.permissions import allowed, deidentified
from trialdesk.edc.screening import service as screening
from trialdesk.edc.screening.models import ScreeningEntry
from trialdesk.trial.errors import ConductError

api = NinjaAPI(title="trialdesk EDC", version="1", auth=django_auth, urls_namespace="api",
               description="Screening, consent, enrolment and infusions for the trial in TRIALDESK_PROTOCOL.")


@api.exception_handler(ConductError)
def _refused(request: HttpRequest, exc: ConductError) -> Any:
    return api.create_response(request, {"field": exc.field, "detail": exc.message}, status=422)


def _need(request: HttpRequest, action: str) -> None:
    if not allowed(request.user, action):
        raise HttpError(403, f"your role may not {action.replace('_', ' ')}")


class Refusal(Schema):
    field: str
    detail: str


class ParticipantOut(Schema):
    subject_id: str
    sex: str
    status: str
    enrolled_on: dt.date
    infusions: int
    screening_number: str | None = None


class ScreenIn(Schema):
    given_name: str
    family_name: str
    mrn: str = ""
    birth_date: dt.date | None = None
    sex: str = "unknown"
    screened_on: dt.date


class ScreeningOut(Schema):
    number: str
    outcome: str
    engine_overall: str
    protocol_version: str
    data_as_of: dt.date


class ConsentIn(Schema):
    icf_version: str
    signed_at: dt.datetime
    obtained_by: str
    copy_given: bool


class EnrolIn(Schema):
    enrolled_on: dt.date
    planned_first_infusion: dt.date | None = None


class InfusionIn(Schema):
    date: dt.date
    started_at: dt.time
    stopped_at: dt.time | None = None
    weight_kg: float
    total_cells: float
    lot: str
    donor_id: str
    premedication: str = ""
    vitals: dict[str, dict[str, float]] = {}
    interrupted: bool = False
    interruptions: str = ""


class InfusionOut(Schema):
    subject_id: str
    number: int
    date: dt.date
    dose_per_kg: float


class VerifyOut(Schema):
    ok: bool
    checked: int
    broken_seq: int | None
    message: str


def _screening_out(e: ScreeningEntry) -> ScreeningOut:
    return ScreeningOut(number=e.number, outcome=e.outcome, engine_overall=e.engine_overall, protocol_version=e.protocol_version,
                        data_as_of=e.data_as_of)


@api.get("/participants", response=list[ParticipantOut])
def list_participants(request: HttpRequest) -> list[ParticipantOut]:
    _need(request, "view_participants")
    hide = deidentified(request.user)
    return [ParticipantOut(subject_id=p.subject_id, sex=p.screening.sex, status=p.status, enrolled_on=p.enrolled_on,
                           infusions=p.infusions.count(), screening_number=None if hide else p.screening.number)
            for p in Participant.objects.select_related("screening")]


@api.post("/screening", response={201: ScreeningOut, 422: Refusal})
def screen(request: HttpRequest, body: ScreenIn) -> Status[ScreeningOut]:
    _need(request, "screen")
    return Status(201, _screening_out(screening.screen_by_hand(request.user, **body.dict())))


@api.post("/screening/{number}/consent", response={201: dict[str, Any], 422: Refusal})
def consent(request: HttpRequest, number: str, body: ConsentIn) -> Status[dict[str, Any]]:
    _need(request, "record_consent")
    c = participants.record_consent(request.user, get_object_or_404(ScreeningEntry, number=number), **body.dict())
    return Status(201, {"screening": number, "icf_version": c.icf_version, "signed_at": c.signed_at.isoformat()})


@api.post("/screening/{number}/enrol", response={201: ParticipantOut, 422: Refusal})
def enrol(request: HttpRequest, number: str, body: EnrolIn) -> Status[ParticipantOut]:
    _need(request, "enrol")
    p = participants.enrol(request.user, get_object_or_404(ScreeningEntry, number=number), **body.dict())
    return Status(201, ParticipantOut(subject_id=p.subject_id, sex=p.sex, status=p.status, enrolled_on=p.enrolled_on, infusions=0,
                                      screening_number=number))


@api.post("/participants/{subject_id}/infusions", response={201: InfusionOut, 422: Refusal})
def infuse(request: HttpRequest, subject_id: str, body: InfusionIn) -> Status[InfusionOut]:
    from trialdesk.edc.dosing.service import record_infusion

    _need(request, "record_infusion")
    p = Participant.objects.filter(subject_id=subject_id).first()
    if p is None:
        raise ConductError("participant", f"there is no enrolled participant {subject_id!r}; only an enrolled participant may be infused")
    inf = record_infusion(request.user, p, number=p.infusions.count() + 1, **body.dict())
    return Status(201, InfusionOut(subject_id=subject_id, number=inf.number, date=inf.date, dose_per_kg=inf.dose_per_kg))


@api.get("/audit/verify", response=VerifyOut)
def verify(request: HttpRequest) -> VerifyOut:
    _need(request, "verify_audit")
    r = trail.verify()
    return VerifyOut(ok=r.ok, checked=r.checked, broken_seq=r.broken_seq, message=r.report())


@api.get("/trial-data")
def trial_data(request: HttpRequest, cutoff: dt.date) -> dict[str, Any]:
    """The de-identified data cut the safety rules and analyses read."""
    from trialdesk.edc.snapshot import trial_data as cut

    _need(request, "view_reports")
    return cut(cutoff).model_dump(mode="json")


from trialdesk.edc.adverse_events.api import router as _adverse_events  # noqa: E402  (after the routes above)

api.add_router("/", _adverse_events)

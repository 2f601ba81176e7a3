"""The REST API (OpenAPI schema at /api/openapi.json; no docs page: Swagger UI would load its scripts from a CDN).

It authenticates with the session (and CSRF) like the pages, asks the same permission
table, and calls the same services, so a refusal here is the core's refusal there.
Each operation's action is in ``permissions.API``; it is asked before the body is read, so a
role that may not write is told 403 whatever it sends (not 422 about the body)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError, ValidationError
from ninja.security import SessionAuth
from pydantic import BeforeValidator, Field, StrictBool, StringConstraints
from pydantic.types import Strict

from trialdesk.edc.api_answers import DENIED, MISSING
from trialdesk.edc.audit import trail
from trialdesk.edc.participants import service as participants
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.permissions import API, allowed, deidentified, may_open
from trialdesk.edc.screening import service as screening
from trialdesk.edc.screening.models import ScreeningEntry
from trialdesk.trial.errors import ConductError
from trialdesk.trial.records import TrialData


class TableAuth(SessionAuth):
    """The session's user, if the permission table lets them take this operation's action (else 403)."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user is None:
            return None
        match = request.resolver_match
        route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", match.route if match else "")
        action = API.get(f"{request.method} /{route}")
        if action is None:
            raise HttpError(403, f"{request.method} /{route} has no entry in trialdesk.edc.permissions.API")
        if not may_open(user, action):
            raise HttpError(403, f"your role may not {action.replace('_', ' ')}")
        return user


# docs_url=None: ninja's Swagger UI page loads its scripts from a CDN (unless ninja is an installed app, and then from
# /static/ninja/, which this site's static route does not serve); the Content Security Policy refuses both, and there
# is no internet at run time. Read the schema at /api/openapi.json with any OpenAPI viewer instead.
api = NinjaAPI(title="trialdesk EDC", version="1", auth=TableAuth(), urls_namespace="api", docs_url=None,
               description="Screening, consent, enrolment, cohort assignment and infusions for the trial in TRIALDESK_PROTOCOL.")


@api.exception_handler(ConductError)
def _refused(request: HttpRequest, exc: ConductError) -> Any:
    return api.create_response(request, {"field": exc.field, "detail": exc.message}, status=422)


@api.exception_handler(ValidationError)
def _malformed(request: HttpRequest, exc: ValidationError) -> Any:
    """A request the schema refuses, in the same shape as the core's refusals: the field, and what is wrong with it."""
    def where(error: dict[str, Any]) -> str:
        return ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")) or "request"

    errors = list(exc.errors)
    detail = "; ".join(f"{where(e)}: {e.get('msg', 'invalid')}" for e in errors)
    return api.create_response(request, {"field": where(errors[0]) if errors else "request", "detail": detail}, status=422)


def _need(request: HttpRequest, action: str) -> None:
    if not allowed(request.user, action):
        raise HttpError(403, f"your role may not {action.replace('_', ' ')}")




def _iso(kind: type[Any], example: str) -> BeforeValidator:
    """Dates and times only as ISO 8601 text: pydantic would also take a number as seconds since 1970."""

    def parse(value: Any) -> Any:
        if isinstance(value, kind) and (kind is not dt.date or not isinstance(value, dt.datetime)):
            return value
        if not isinstance(value, str):
            raise ValueError(f"give it as text in ISO 8601, e.g. {example}")
        try:
            return kind.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not in ISO 8601; write it as {example}") from None

    return BeforeValidator(parse)


IsoDate = Annotated[dt.date, _iso(dt.date, "2026-11-25")]
IsoDateTime = Annotated[dt.datetime, _iso(dt.datetime, "2026-11-25T09:30:00-05:00")]
IsoTime = Annotated[dt.time, _iso(dt.time, "09:30")]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]


def Text(max_length: int, *, required: bool = True) -> Any:  # a type, as the schema reads it
    """Text as long as its column, and not blank where the form requires it."""
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=1 if required else 0, max_length=max_length)]


class ParticipantOut(Schema):
    subject_id: str
    sex: str
    status: str
    enrolled_on: dt.date
    infusions: int
    screening_number: str | None = None


class ScreenIn(Schema):
    given_name: Text(100)  # type: ignore[valid-type]
    family_name: Text(100)  # type: ignore[valid-type]
    mrn: Text(40, required=False) = ""  # type: ignore[valid-type]
    birth_date: IsoDate | None = None
    sex: Literal["female", "male", "unknown"] = "unknown"
    screened_on: IsoDate


class ScreeningOut(Schema):
    number: str
    outcome: str
    engine_overall: str
    protocol_version: str
    data_as_of: dt.date


class ConsentIn(Schema):
    icf_version: Text(60)  # type: ignore[valid-type]
    signed_at: IsoDateTime
    obtained_by: Text(200)  # type: ignore[valid-type]
    copy_given: StrictBool


class EnrolIn(Schema):
    enrolled_on: IsoDate
    planned_first_infusion: IsoDate | None = None


class InfusionIn(Schema):
    date: IsoDate
    started_at: IsoTime
    stopped_at: IsoTime | None = None
    weight_kg: Number
    total_cells: Number
    lot: Text(60)  # type: ignore[valid-type]
    donor_id: Text(60)  # type: ignore[valid-type]
    premedication: Text(4000, required=False) = ""  # type: ignore[valid-type]
    vitals: dict[Literal["before", "during", "after"], dict[Literal["sbp", "dbp", "pulse", "temp", "spo2"], Number]] = {}
    interrupted: StrictBool = False
    interruptions: Text(4000, required=False) = ""  # type: ignore[valid-type]


class CohortIn(Schema):
    cohort: Text(32)  # type: ignore[valid-type]


class CohortOut(Schema):
    subject_id: str
    cohort: str
    assigned_on: dt.date


class InfusionOut(Schema):
    subject_id: str
    number: int
    date: dt.date
    #: the dose as the protocol states it (per kg, per m² or total), in ``dose_unit``, the protocol's unit in ASCII
    dose: float
    dose_unit: str
    dose_basis: str


class VerifyOut(Schema):
    ok: bool
    checked: int
    broken_seq: int | None
    message: str


def _screening_out(e: ScreeningEntry) -> ScreeningOut:
    return ScreeningOut(number=e.number, outcome=e.outcome, engine_overall=e.engine_overall, protocol_version=e.protocol_version,
                        data_as_of=e.data_as_of)


@api.get("/participants", response={200: list[ParticipantOut], **DENIED})
def list_participants(request: HttpRequest) -> list[ParticipantOut]:
    _need(request, "view_participants")
    hide = deidentified(request.user)
    return [ParticipantOut(subject_id=p.subject_id, sex=p.screening.sex, status=p.status, enrolled_on=p.enrolled_on,
                           infusions=p.infusions.count(), screening_number=None if hide else p.screening.number)
            for p in Participant.objects.select_related("screening")]


@api.post("/screening", response={201: ScreeningOut, **DENIED})
def screen(request: HttpRequest, body: ScreenIn) -> Status[ScreeningOut]:
    _need(request, "screen")
    return Status(201, _screening_out(screening.screen_by_hand(request.user, **body.dict())))


@api.post("/screening/{number}/consent", response={201: dict[str, Any], **DENIED, **MISSING})
def consent(request: HttpRequest, number: str, body: ConsentIn) -> Status[dict[str, Any]]:
    _need(request, "record_consent")
    c = participants.record_consent(request.user, get_object_or_404(ScreeningEntry, number=number), **body.dict())
    return Status(201, {"screening": number, "icf_version": c.icf_version, "signed_at": c.signed_at.isoformat()})


@api.post("/screening/{number}/enrol", response={201: ParticipantOut, **DENIED, **MISSING})
def enrol(request: HttpRequest, number: str, body: EnrolIn) -> Status[ParticipantOut]:
    _need(request, "enrol")
    p = participants.enrol(request.user, get_object_or_404(ScreeningEntry, number=number), **body.dict())
    return Status(201, ParticipantOut(subject_id=p.subject_id, sex=p.sex, status=p.status, enrolled_on=p.enrolled_on, infusions=0,
                                      screening_number=number))


def _participant(subject_id: str, only: str) -> Participant:
    """The enrolled participant, or a refusal naming the subject id (at most 40 characters of it)."""
    p: Participant | None = Participant.objects.filter(subject_id=subject_id).first()
    if p is None:
        raise ConductError("participant", f"there is no enrolled participant {subject_id[:40]!r}; only an enrolled participant {only}")
    return p


@api.post("/participants/{subject_id}/cohort", response={201: CohortOut, **DENIED})
def assign_cohort(request: HttpRequest, subject_id: str, body: CohortIn) -> Status[CohortOut]:
    """Assign an enrolled participant to a dose cohort that is open and has a place (a protocol with dose finding)."""
    from trialdesk.edc.dosing.service import assign_cohort as assign

    _need(request, "enrol")
    a = assign(request.user, _participant(subject_id, "is assigned a cohort"), cohort=body.cohort)
    return Status(201, CohortOut(subject_id=subject_id, cohort=a.cohort, assigned_on=a.assigned_on))


@api.post("/participants/{subject_id}/infusions", response={201: InfusionOut, **DENIED})
def infuse(request: HttpRequest, subject_id: str, body: InfusionIn) -> Status[InfusionOut]:
    from trialdesk.edc.dosing.service import record_infusion

    _need(request, "record_infusion")
    # the number is the next one, counted under the service's lock
    inf = record_infusion(request.user, _participant(subject_id, "may be infused"), **body.dict())
    from trialdesk.edc.web import protocol
    from trialdesk.trial.dose import PER_KG_IN_MILLIONS, plain_unit
    from trialdesk.trial.dose import amount as dose_amount

    spec = protocol().study_intervention.dose_spec or PER_KG_IN_MILLIONS
    return Status(201, InfusionOut(subject_id=subject_id, number=inf.number, date=inf.date,
                                   dose=round(dose_amount(spec, inf.total_cells, weight_kg=inf.weight_kg), 4),
                                   dose_unit=plain_unit(spec.unit).removeprefix("×").strip(), dose_basis=spec.basis))


@api.get("/audit/verify", response={200: VerifyOut, **DENIED})
def verify(request: HttpRequest) -> VerifyOut:
    _need(request, "verify_audit")
    r = trail.verify()
    return VerifyOut(ok=r.ok, checked=r.checked, broken_seq=r.broken_seq, message=r.report())


@api.get("/trial-data", response={200: TrialData, **DENIED})
def trial_data(request: HttpRequest, cutoff: IsoDate) -> TrialData:
    """The de-identified data cut the safety rules and analyses read."""
    from trialdesk.edc.snapshot import trial_data as cut

    _need(request, "view_reports")
    data = cut(cutoff)
    if deidentified(request.user):
        # screening numbers lead back to the identified screening log: a role that sees subject ids only gets labels
        label = {s.screening_id: f"screened-{n}" for n, s in enumerate(data.screening, 1)}
        data = data.model_copy(update={
            "screening": [s.model_copy(update={"screening_id": label[s.screening_id]}) for s in data.screening],
            "participants": [p.model_copy(update={"screening_id": label.get(p.screening_id or "")}) for p in data.participants]})
    return data


from trialdesk.edc.adverse_events.api import router as _adverse_events  # noqa: E402  (after the routes above)

api.add_router("/", _adverse_events)

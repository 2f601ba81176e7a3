"""The dashboard: what each role has to do today."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trialdesk.edc.participants.models import Participant, Pause
from trialdesk.edc.permissions import allowed
from trialdesk.edc.quality.models import Query
from trialdesk.edc.screening.models import EligibilitySignoff, ScreeningEntry
from trialdesk.edc.visits.models import Visit
from trialdesk.edc.visits.service import flag
from trialdesk.edc.web import protocol, today


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    p = protocol()
    ctx: dict[str, object] = {
        "enrolled": Participant.objects.count(), "target": p.enrolment.target,
        "pauses": Pause.objects.filter(lifted_on__isnull=True),
        "open_queries": Query.objects.exclude(status="closed").count(),
    }
    if allowed(user, "view_identified"):
        signed = EligibilitySignoff.objects.values_list("screening_id", flat=True)
        ctx["to_sign"] = ScreeningEntry.objects.filter(outcome="pending").exclude(pk__in=signed)
        ctx["screening_count"] = ScreeningEntry.objects.count()
        ctx["ready_to_consent"] = ScreeningEntry.objects.filter(outcome="eligible")
    if allowed(user, "view_participants"):
        visits = Visit.objects.filter(participant__status="on_study", done_on__isnull=True).select_related("participant")
        flagged = [(v, flag(v)) for v in visits]
        ctx["due"] = [(v, f) for v, f in flagged if f == "due"]
        ctx["missed"] = [(v, f) for v, f in flagged if f == "missed"]
    return render(request, "edc/dashboard.html", ctx | {"today": today()})

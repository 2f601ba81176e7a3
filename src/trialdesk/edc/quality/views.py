from __future__ import annotations

from django.apps import apps
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from trialdesk.edc.participants.models import Participant
from trialdesk.edc.permissions import allowed
from trialdesk.edc.quality import service
from trialdesk.edc.quality.models import Query
from trialdesk.edc.web import requires
from trialdesk.trial.errors import ConductError


@requires("view_audit")
def queries(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "raise":
                if not allowed(request.user, "raise_query"):
                    return HttpResponse(status=403)
                p = get_object_or_404(Participant, subject_id=request.POST.get("subject_id"))
                service.raise_query(request.user, p, target=request.POST.get("target", ""), text=request.POST.get("text", ""),
                                    origin="monitor" if request.user.role == "monitor" else "data_manager")
            else:
                q = get_object_or_404(Query, pk=request.POST.get("query"))
                version = int(request.POST.get("version", q.version))
                if action == "answer":
                    if not allowed(request.user, "answer_query"):
                        return HttpResponse(status=403)
                    service.answer_query(request.user, q, answer=request.POST.get("answer", ""), version=version)
                elif action == "close":
                    if not allowed(request.user, "close_query"):
                        return HttpResponse(status=403)
                    service.close_query(request.user, q, version=version)
        except ConductError as e:
            messages.error(request, e.message)
        return redirect(request.POST.get("next") or "queries")
    return render(request, "edc/queries.html", {"queries": Query.objects.select_related("participant"),
                                                "participants": Participant.objects.all()})


@requires("verify_source")
def sdv(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        model = apps.get_model(request.POST["model"])
        record = get_object_or_404(model, pk=request.POST["object_id"])
        p = record.casebook() or record
        service.verify_source(request.user, p, record, note=request.POST.get("note", ""))
        messages.success(request, "Source data verified.")
        return redirect("participant_detail", subject_id=p.subject_id)
    return redirect("participants")

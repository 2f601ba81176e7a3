from __future__ import annotations

from typing import Any

from django import forms
from django.apps import apps
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from trialdesk.edc.participants.models import Participant
from trialdesk.edc.permissions import allowed
from trialdesk.edc.quality import service
from trialdesk.edc.quality.models import Query
from trialdesk.edc.records import TrialRecord
from trialdesk.edc.web import record_id, requires, safe_next
from trialdesk.trial.deviations import CATEGORIES, MANUAL
from trialdesk.trial.errors import ConductError


@requires("view_audit")
def queries(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "raise":
                if not allowed(request.user, "raise_query"):
                    return HttpResponse(status=403)
                subject = request.POST.get("subject_id", "")
                p = Participant.objects.filter(subject_id=subject).first()
                if p is None:
                    raise ConductError("subject_id", f"there is no participant {subject[:40]!r}; choose one from the list")
                service.raise_query(request.user, p, target=request.POST.get("target", ""), text=request.POST.get("text", ""),
                                    origin="monitor" if request.user.role == "monitor" else "data_manager")
            else:
                q = Query.objects.filter(pk=record_id(request.POST.get("query"), "query")).first()
                if q is None:
                    raise ConductError("query", "there is no query with that number; reload the page")
                version = record_id(request.POST.get("version", q.version), "version")
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
        return redirect(safe_next(request, "queries"))
    return render(request, "edc/queries.html", {"queries": Query.objects.select_related("participant"),
                                                "participants": Participant.objects.all()})


def _source_record(label: str, object_id: Any) -> tuple[Participant, TrialRecord]:
    """The trial record a monitor verifies, and the participant whose casebook holds it; anything else is refused."""
    refusal = ConductError("model", f"{label[:40]!r} cannot be source-verified; verify an infusion, a visit form or an adverse event")
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        raise refusal from None
    if not issubclass(model, TrialRecord):
        raise refusal
    record = model.objects.filter(pk=record_id(object_id, "record")).first()
    if record is None:
        raise ConductError("object_id", "there is no such record; reload the page")
    participant = record if isinstance(record, Participant) else record.casebook()
    if not isinstance(participant, Participant):
        raise refusal
    return participant, record


@requires("verify_source")
def sdv(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        try:
            p, record = _source_record(request.POST.get("model", ""), request.POST.get("object_id"))
            service.verify_source(request.user, p, record, note=request.POST.get("note", ""))
        except ConductError as e:
            messages.error(request, e.message)
            return redirect("participants")
        messages.success(request, "Source data verified.")
        return redirect("participant_detail", subject_id=p.subject_id)
    return redirect("participants")


class DeviationForm(forms.Form):
    subject_id = forms.ChoiceField(label="Participant", required=False)
    date = forms.DateField(label="Date of the deviation", widget=forms.DateInput(attrs={"type": "date"}))
    category = forms.ChoiceField(choices=[("", "—")] + [(c, CATEGORIES[c]) for c in MANUAL])
    description = forms.CharField(label="What happened", widget=forms.Textarea(attrs={"rows": 2}))
    reason = forms.CharField(label="Why (root cause)", widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["subject_id"].choices = [("", "— the site, no one participant —")] + [  # type: ignore[attr-defined]
            (p.subject_id, p.subject_id) for p in Participant.objects.all()]


@requires("view_forms")
def deviations(request: HttpRequest) -> HttpResponse:
    """The protocol-deviation log: automatic entries (out of window, late SAE reports) and those entered by site staff."""
    from trialdesk.edc.adverse_events.service import cut
    from trialdesk.edc.quality.deviations import record_deviation
    from trialdesk.edc.web import refuse, today

    form = DeviationForm(request.POST or None)
    if request.method == "POST":
        if not allowed(request.user, "record_deviation"):
            return HttpResponse(status=403)
        if form.is_valid():
            d = form.cleaned_data
            p = Participant.objects.filter(subject_id=d["subject_id"]).first() if d["subject_id"] else None
            try:
                record_deviation(request.user, participant=p, date=d["date"], category=d["category"], description=d["description"],
                                 reason=d["reason"])
            except ConductError as e:
                refuse(form, e)
            else:
                messages.success(request, "Protocol deviation logged.")
                return redirect("deviations")
    rows = sorted(cut(today()).deviations, key=lambda d: (d.date, d.id), reverse=True)
    return render(request, "edc/deviations.html", {"rows": rows, "form": form}, status=422 if form.errors else 200)

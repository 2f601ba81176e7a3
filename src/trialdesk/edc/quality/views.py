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


def _raise(request: HttpRequest) -> None:
    from trialdesk.edc.visits.models import Visit

    subject = request.POST.get("subject_id", "")
    p = Participant.objects.filter(subject_id=subject).first()
    if p is None:
        raise ConductError("subject_id", f"there is no participant {subject[:40]!r}; choose one from the list")
    code = request.POST.get("visit", "")
    visit = Visit.objects.filter(participant=p, code=code).first() if code else None
    if code and visit is None:
        raise ConductError("visit", f"{p.subject_id} has no visit {code[:20]!r}")
    service.raise_query(request.user, p, text=request.POST.get("text", ""), visit=visit, form=request.POST.get("form", ""),
                        field=request.POST.get("field", ""), origin="monitor" if request.user.role == "monitor" else "data_manager")


DONE = {"answer": "answered", "close": "closed", "withdraw": "withdrawn"}
#: query status filter -> the statuses it shows
SHOWN = {"open": ("open", "answered"), "closed": ("closed", "withdrawn"), "all": ("open", "answered", "closed", "withdrawn")}


@requires("view_audit")
def queries(request: HttpRequest) -> HttpResponse:
    """Every query with where it points, its age and its state; raised from a form's field (or here, on a participant),
    answered by the site, closed or withdrawn (with the reason) by whoever raised it."""
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "raise":
                if not allowed(request.user, "raise_query"):
                    return HttpResponse(status=403)
                _raise(request)
                messages.success(request, "Query raised.")
            else:
                q = Query.objects.filter(pk=record_id(request.POST.get("query"), "query")).first()
                if q is None:
                    raise ConductError("query", "there is no query with that number; reload the page")
                version = record_id(request.POST.get("version", q.version), "version")
                if action == "answer":
                    if not allowed(request.user, "answer_query"):
                        return HttpResponse(status=403)
                    service.answer_query(request.user, q, answer=request.POST.get("answer", ""), version=version)
                elif action in ("close", "withdraw"):
                    if not allowed(request.user, "close_query"):
                        return HttpResponse(status=403)
                    if action == "close":
                        service.close_query(request.user, q, version=version)
                    else:
                        service.withdraw_query(request.user, q, reason=request.POST.get("withdrawn_reason", ""), version=version)
                else:
                    raise ConductError("action", "choose raise, answer, close or withdraw")
                messages.success(request, f"{q.query_id} {DONE[action]}.")
        except ConductError as e:
            messages.error(request, e.message)
        return redirect(safe_next(request, "queries"))
    shown = request.GET.get("status", "open")
    shown = shown if shown in SHOWN else "open"
    rows = (Query.objects.select_related("participant", "visit", "raised_by").filter(status__in=SHOWN[shown])
            .order_by("created_at", "pk"))
    return render(request, "edc/queries.html", {"queries": rows, "participants": Participant.objects.all(), "shown": shown,
                                                "title": "Queries"})


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
    """A monitor's verification: a whole record (an infusion), or a visit form's fields (the ones ticked, or all)."""
    if request.method == "POST":
        try:
            p, record = _source_record(request.POST.get("model", ""), request.POST.get("object_id"))
            if record._meta.label == service.FORM_ENTRY:
                fields = None if request.POST.get("all") else request.POST.getlist("field")
                done = service.verify_fields(request.user, record, fields, note=request.POST.get("note", ""))
                messages.success(request, f"{len(done)} field{'' if len(done) == 1 else 's'} verified against the source.")
            else:
                service.verify_source(request.user, p, record, note=request.POST.get("note", ""))
                messages.success(request, "Source data verified.")
        except ConductError as e:
            messages.error(request, e.message)
            return redirect(safe_next(request, "participants"))
        if request.POST.get("next"):
            return redirect(safe_next(request, "participants"))
        return redirect("participant_detail", subject_id=p.subject_id)
    return redirect("sdv_progress")


@requires("view_forms")
def sdv_progress(request: HttpRequest) -> HttpResponse:
    """SDV progress per participant and for the site: forms and fields verified, and those changed since verified."""
    from trialdesk.edc.quality.progress import progress

    rows, site = progress()
    return render(request, "edc/sdv_progress.html", {"rows": rows, "site": site, "title": "Source data verification"})


@requires("view_forms")
def monitoring_report(request: HttpRequest) -> HttpResponse:
    """What a monitoring visit did over a date range (site dates): fields and records verified, queries raised, answered,
    closed and withdrawn. Prints on its own (the print stylesheet leaves out the navigation and the controls)."""
    from trialdesk.edc.quality.progress import monitoring_activity
    from trialdesk.edc.web import today

    form = ReportRange(request.GET or {"start": today(), "end": today()})
    from django.utils import timezone

    report = monitoring_activity(form.cleaned_data["start"], form.cleaned_data["end"]) if form.is_valid() else None
    context: dict[str, Any] = {"form": form, "report": report, "title": "Monitoring visit report",
                               "zone": timezone.get_current_timezone_name()}
    if report is not None:
        import json

        context["verified"] = [(m, report.what(m), json.loads(m.value) if m.value else "(the whole record)") for m in report.verified]
        context["sections"] = [("Queries raised", "raised", report.raised), ("Queries answered", "answered", report.answered),
                               ("Queries closed", "closed", report.closed), ("Queries withdrawn", "withdrawn", report.withdrawn),
                               ("Queries still open at the end of the period", "open", report.still_open)]
    return render(request, "edc/monitoring_report.html", context, status=200 if report is not None else 422)


@requires("view_forms")
def monitoring_report_pdf(request: HttpRequest) -> HttpResponse:
    """The monitoring-visit report of a date range as PDF (the same content as the page)."""
    from trialdesk.edc.quality.progress import monitoring_activity
    from trialdesk.edc.quality.report_pdf import render_pdf
    from trialdesk.edc.web import protocol, today

    form = ReportRange(request.GET or {"start": today(), "end": today()})
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        return HttpResponse(f"Give the period as start and end dates (YYYY-MM-DD): {problems}", status=422,
                            content_type="text/plain; charset=utf-8")
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    nct = protocol().identification.nct_id
    response = HttpResponse(render_pdf(monitoring_activity(start, end), trial=nct), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="monitoring-report-{nct}-{start}-to-{end}.pdf"'
    return response


class ReportRange(forms.Form):
    start = forms.DateField(label="From (site date)", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (site date)", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        d = super().clean() or {}
        if d.get("start") and d.get("end") and d["start"] > d["end"]:
            self.add_error("end", "the end is before the start")
        return d


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

"""The safety area of the trial desk: the safety dashboard, the DSMB report and the DSMB's decisions, pauses,
death reports, and the expectedness assessment of an adverse event (its own page, beside the AE entry form,
which it does not change). The URLs are unchanged (/safety/..., /pauses/, /participants/<id>/death/); the
models stay with adverse events and participants, and the services with them, taking the protocol, the
site's clock and the audit lock from :mod:`trialdesk.edc.context`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from trialdesk.edc.adverse_events import service as ae_service
from trialdesk.edc.adverse_events.models import AUTOPSY, DECISION_KINDS, RELATEDNESS, AdverseEvent, DsmbDecision
from trialdesk.edc.participants import service as participant_service
from trialdesk.edc.participants.models import Participant, Pause
from trialdesk.edc.permissions import allowed
from trialdesk.edc.safety import service
from trialdesk.edc.web import allow_inline_styles, protocol, record_id, refuse, requires, today
from trialdesk.safety.dsmb_pdf import render_pdf
from trialdesk.safety.dsmb_report import build_report, render_html
from trialdesk.trial.errors import ConductError

DATE = forms.DateInput(attrs={"type": "date"})
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class ExpectednessForm(forms.Form):
    expected = forms.TypedChoiceField(
        label="Assessment against the reference safety information (21 CFR 312.32(a))",
        choices=[("yes", "Expected: listed at the specificity and severity observed"),
                 ("no", "Unexpected: not listed, or not at the specificity or severity observed")],
        coerce=lambda v: v == "yes", widget=forms.RadioSelect, required=False, empty_value=None)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False,
                             help_text="required when you differ from the suggestion, or change an earlier assessment")


@requires("view_ae")
def expectedness(request: HttpRequest, pk: int) -> HttpResponse:
    ae = get_object_or_404(AdverseEvent.objects.select_related("participant__screening"), pk=pk)
    form = ExpectednessForm(request.POST or None)  # never an initial value: the assessment is the person's
    status = 200
    if request.method == "POST":
        if not allowed(request.user, "assess_expectedness"):
            raise PermissionDenied("your role may not assess expectedness")
        if form.is_valid():
            try:
                service.assess_expectedness(request.user, ae, expected=form.cleaned_data["expected"], reason=form.cleaned_data["reason"])
            except ConductError as e:
                refuse(form, e)
                status = 422
            else:
                messages.success(request, f"Expectedness of {ae.ae_id} recorded; the reason is in the audit trail.")
                return redirect("ae_detail", pk=pk)
        else:
            status = 422
    history = list(ae.expectedness_assessments.select_related("assessed_by").order_by("assessed_at", "pk"))
    return render(request, "safety/expectedness.html", {
        "ae": ae, "form": form, "suggestion": service.suggestion_for(ae), "current": service.current_assessment(ae),
        "history": history, "stale": bool(history) and service.current_assessment(ae) is None}, status=status)


# --- the safety dashboard and the DSMB report -----------------------------------------------------


class ReportForm(forms.Form):
    ae = forms.IntegerField(widget=forms.HiddenInput)
    rule_id = forms.CharField(widget=forms.HiddenInput)
    submitted_at = forms.DateTimeField(label="Submitted (date and time)", widget=DATETIME)


def _cutoff(request: HttpRequest) -> dt.date:
    text = request.GET.get("cutoff", "")
    try:
        return min(dt.date.fromisoformat(text), today()) if text else today()
    except ValueError:
        return today()


@requires("view_safety_dashboard")
def dashboard(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if not allowed(request.user, "record_ae"):
            raise PermissionDenied("your role may not record ae")
        form = ReportForm(request.POST)
        if form.is_valid():
            ae = get_object_or_404(AdverseEvent, pk=form.cleaned_data["ae"])
            try:
                ae_service.record_report(request.user, ae, rule_id=form.cleaned_data["rule_id"],
                                      submitted_at=form.cleaned_data["submitted_at"])
            except ConductError as e:
                messages.error(request, e.message)
            else:
                messages.success(request, f"Report {form.cleaned_data['rule_id']} for {ae.ae_id} recorded as submitted.")
        else:
            messages.error(request, "give the date and time the report was submitted")
        return redirect("safety_dashboard")
    data = ae_service.cut()
    status = ae_service.safety_status(data)
    aes = {ae.ae_id: ae for ae in AdverseEvent.objects.filter(serious=True).select_related("participant")}
    due = [{"r": r, "ae": aes.get(r.ae_id)} for r in ae_service.reports_due(data)]
    unassessed = [aes[a.id] for a in data.adverse_events if a.serious and a.related and a.expected is None and a.id in aes]
    from trialdesk.safety.suggestions import hy_law_cases, ungradable_values

    return render(request, "safety/dashboard.html", {
        "hy_law": hy_law_cases(data), "ungradable": ungradable_values(data),
        "aggregate": status.aggregate, "unassessed": unassessed,
        "due": [d for d in due if d["r"].status != "submitted"], "submitted": [d for d in due if d["r"].status == "submitted"],
        "status": status, "pauses": Pause.objects.filter(lifted_on__isnull=True), "now": timezone.localtime(),
        "deaths_due": ae_service.deaths_due(),
        "suggestions": len(ae_service.open_suggestions(data)) if allowed(request.user, "record_ae") else None,
        "report_form_initial": timezone.localtime().replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M")})


def _report(request: HttpRequest) -> Any:
    data = ae_service.cut(_cutoff(request))
    return build_report(data, protocol(), ae_service.safety_status(data), ae_service.recorded_decisions())


@requires("view_dsmb_report")
def dsmb_report(request: HttpRequest) -> HttpResponse:
    return allow_inline_styles(HttpResponse(render_html(_report(request))))


@requires("view_dsmb_report")
def dsmb_report_pdf(request: HttpRequest) -> HttpResponse:
    report = _report(request)
    response = HttpResponse(render_pdf(report), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="dsmb-report-{report.nct_id}-{report.cutoff}.pdf"'
    return response


# --- death report --------------------------------------------------------------------------------


EMPTY = [("", "—")]  # a judgement starts empty: nothing is assumed


class DeathReportForm(forms.Form):
    adverse_event = forms.ChoiceField(label="The fatal (grade 5) adverse event", required=False)  # the core names what is missing
    date_of_death = forms.DateField(widget=DATE)
    causes = forms.CharField(label="Cause(s) of death", widget=forms.Textarea(attrs={"rows": 3}), required=False,
                             help_text="one per line, immediate cause first")
    autopsy = forms.ChoiceField(label="Autopsy performed", choices=EMPTY + AUTOPSY)
    relatedness = forms.ChoiceField(label="Relation to the study product", choices=EMPTY + RELATEDNESS)
    narrative = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False)

    def __init__(self, *args: Any, participant: Participant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fatal = AdverseEvent.objects.filter(participant=participant, grade=5)
        self.fields["adverse_event"].choices = [("", "— none recorded: record a grade 5 AE first —" if not fatal else "—")] + [  # type: ignore[attr-defined]
            (str(ae.pk), f"{ae.ae_id}: {ae.term} (onset {ae.onset})") for ae in fatal]


@requires("view_participants")
def death_report(request: HttpRequest, subject_id: str) -> HttpResponse:
    """Whoever sees the participant sees a recorded report; recording or correcting one is ``record_death``."""
    p = get_object_or_404(Participant.objects.select_related("screening"), subject_id=subject_id)
    existing = ae_service.death_report_of(p)
    if (request.method == "POST" or existing is None) and not allowed(request.user, "record_death"):
        raise PermissionDenied("your role may not record death")
    if existing is not None:
        return _death_report_page(request, p, existing)
    fatal = AdverseEvent.objects.filter(participant=p, grade=5).first()
    initial = {"adverse_event": str(fatal.pk) if fatal else "", "date_of_death": fatal.onset if fatal else today(),
               "relatedness": fatal.relatedness if fatal else None}
    form = DeathReportForm(request.POST or None, participant=p, initial=initial)
    if request.method == "POST" and form.is_valid():
        d = dict(form.cleaned_data)
        ae = AdverseEvent.objects.filter(participant=p, pk=d.pop("adverse_event") or 0).first()
        try:
            ae_service.record_death(request.user, p, adverse_event=ae, **d)
        except ConductError as e:
            refuse(form, e if e.field != "ae_id" else ConductError("adverse_event", e.message))
        else:
            messages.success(request, f"Death report recorded; {subject_id} is off study. No further visits or infusions.")
            return redirect("participant_detail", subject_id=subject_id)
    return render(request, "edc/form.html", {"form": form, "title": f"Death report — subject {subject_id}", "submit": "Record death",
                                             "back": f"/participants/{subject_id}/"}, status=422 if form.errors else 200)


class CorrectDeathReportForm(forms.Form):
    date_of_death = forms.DateField(widget=DATE)
    causes = forms.CharField(label="Cause(s) of death", widget=forms.Textarea(attrs={"rows": 3}), required=False)
    autopsy = forms.ChoiceField(label="Autopsy performed", choices=EMPTY + AUTOPSY)
    relatedness = forms.ChoiceField(label="Relation to the study product", choices=EMPTY + RELATEDNESS)
    narrative = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False)
    reason = forms.CharField(label="Reason for change", widget=forms.Textarea(attrs={"rows": 2}), required=False)
    version = forms.IntegerField(widget=forms.HiddenInput)


def _death_report_page(request: HttpRequest, p: Participant, report: Any) -> HttpResponse:
    """The recorded report; an investigator may correct it (with a reason, audited)."""
    initial = {name: getattr(report, name) for name in ("date_of_death", "causes", "autopsy", "relatedness", "narrative")}
    form = CorrectDeathReportForm(request.POST or None, initial={**initial, "version": report.version})
    if request.method == "POST" and form.is_valid():
        d = dict(form.cleaned_data)
        version, reason = d.pop("version"), d.pop("reason")
        try:
            ae_service.correct_death_report(request.user, report, changes=d, reason=reason, version=version)
        except ConductError as e:  # StaleEdit too
            refuse(form, e)
        else:
            messages.success(request, "Death report corrected.")
            return redirect("death_report", subject_id=p.subject_id)
    return render(request, "safety/death_report.html", {"p": p, "report": report, "form": form},
                  status=422 if form.errors else 200)


# --- DSMB decisions ------------------------------------------------------------------------------


class DsmbDecisionForm(forms.Form):
    kind = forms.ChoiceField(label="Decision", choices=DECISION_KINDS, widget=forms.RadioSelect)
    report_cutoff = forms.DateField(label="Data cut-off of the report reviewed", widget=DATE)
    decided_on = forms.DateField(label="Decided on", widget=DATE)
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    modifications = forms.CharField(label="Modifications required (for 'continue with modifications')",
                                    widget=forms.Textarea(attrs={"rows": 2}), required=False)
    printed_name = forms.CharField(label="Your full name (signature)", max_length=200, required=False)
    password = forms.CharField(label="Your password (signature)", widget=forms.PasswordInput, required=False)


@requires("view_reports")
def dsmb_decisions(request: HttpRequest) -> HttpResponse:
    form = DsmbDecisionForm(request.POST or None, initial={"decided_on": today(), "report_cutoff": today()})
    if request.method == "POST":
        if not allowed(request.user, "record_dsmb_decision"):
            raise PermissionDenied("your role may not record dsmb decision")
        if form.is_valid():
            try:
                decision = ae_service.record_dsmb_decision(request.user, **form.cleaned_data)
            except ConductError as e:
                refuse(form, e)
            else:
                messages.success(request, f"DSMB decision recorded and signed: {decision.get_kind_display()}.")
                return redirect("dsmb_decisions")
    rows = [{"d": d, "signature": d.current_signature()} for d in DsmbDecision.objects.all()]
    cohorts = None
    if protocol().dose_finding is not None:  # a dose-finding trial: each cohort's state and the escalation rule's table
        from trialdesk.edc.dosing.models import CohortAssignment
        from trialdesk.trial.cohort_gate import cohort_rows, rule_table

        title, columns, table = rule_table(protocol())
        cohorts = {"rows": cohort_rows(protocol(), ae_service.cut(), CohortAssignment.in_force(), ae_service.recorded_decisions(), today()),
                   "rule_title": title, "rule_columns": columns, "rule_rows": table}
    return render(request, "safety/dsmb_decisions.html", {
        "form": form, "decisions": rows, "cohorts": cohorts, "pauses": Pause.objects.filter(lifted_on__isnull=True).order_by("since"),
        "stopped": any(p.core().final for p in Pause.objects.filter(lifted_on__isnull=True))}, status=422 if form.errors else 200)


# --- pauses --------------------------------------------------------------------------------------


class PauseForm(forms.Form):
    rule_id = forms.ChoiceField(label="Stopping rule")
    since = forms.DateField(widget=DATE)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["rule_id"].choices = [(r.id, f"{r.id}: {r.description}") for r in protocol().safety.stopping_rules]  # type: ignore[attr-defined]


@requires("view_reports")
def pauses(request: HttpRequest) -> HttpResponse:
    form = PauseForm(request.POST or None, initial={"since": today()})
    if request.method == "POST":
        if "lift" in request.POST:
            if not allowed(request.user, "lift_pause"):
                return HttpResponse(status=403)
            try:
                pause = Pause.objects.filter(pk=record_id(request.POST["lift"], "pause")).first()
                if pause is None:
                    raise ConductError("lift", "there is no pause with that number; reload the page")
                participant_service.lift_pause(request.user, pause, on=today(), note=request.POST.get("note", ""))
            except ConductError as e:
                messages.error(request, e.message)
            return redirect("pauses")
        if not allowed(request.user, "pause_trial"):
            return HttpResponse(status=403)
        if form.is_valid():
            d = form.cleaned_data
            try:
                participant_service.record_pause(request.user, rule_id=d["rule_id"], action="", since=d["since"],
                                                 description=d["description"])
            except ConductError as e:
                refuse(form, e)
            else:
                return redirect("pauses")
    return render(request, "safety/pauses.html", {"form": form, "pauses": Pause.objects.order_by("-since")})

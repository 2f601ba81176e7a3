"""The adverse-event pages, the safety dashboard, the DSMB report and decisions, death reports and
the MedWatch 3500A summary."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from trialdesk.edc.adverse_events import service
from trialdesk.edc.adverse_events.models import (
    ACTIONS,
    AUTOPSY,
    DECISION_KINDS,
    OUTCOMES,
    RELATEDNESS,
    SERIOUSNESS,
    AdverseEvent,
    DsmbDecision,
)
from trialdesk.edc.audit.trail import StaleEdit
from trialdesk.edc.participants.models import Participant, Pause
from trialdesk.edc.permissions import allowed, deidentified
from trialdesk.edc.web import allow_inline_styles, protocol, refuse, requires, today
from trialdesk.safety.dsmb_pdf import render_pdf
from trialdesk.safety.dsmb_report import build_report, render_html
from trialdesk.safety.medwatch import render_html as medwatch_html
from trialdesk.safety.medwatch_pdf import render_pdf as medwatch_pdf
from trialdesk.terminology.ctcae import CtcaeTerm, catalogue
from trialdesk.trial.errors import ConductError

DATE = forms.DateInput(attrs={"type": "date"})
#: a clinical judgement starts unanswered: the first option of every such list is this empty one, and the field is required
EMPTY = [("", "—")]
YES_NO = [("", "—"), ("yes", "Yes"), ("no", "No")]
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class AdverseEventForm(forms.Form):
    subject_id = forms.ChoiceField(label="Participant")
    term = forms.CharField(label="CTCAE v5.0 term", max_length=200,
                           help_text="type a few letters of the term or an everyday word; the MedDRA code and SOC follow from the term",
                           widget=forms.TextInput(attrs={"list": "ctcae-terms", "autocomplete": "off", "data-ctcae-search": "1"}))
    grade = forms.TypedChoiceField(choices=[("", "—")] + [(g, f"Grade {g}") for g in range(1, 6)], coerce=int, empty_value=None)
    description = forms.CharField(label="Verbatim description", widget=forms.Textarea(attrs={"rows": 2}), required=False)
    onset = forms.DateField(widget=DATE)
    resolved = forms.DateField(label="Resolved on", widget=DATE, required=False)
    serious = forms.TypedChoiceField(label="Serious (21 CFR 312.32)", choices=YES_NO, coerce=lambda v: v == "yes", empty_value=None)
    seriousness = forms.MultipleChoiceField(label="Seriousness criteria", choices=SERIOUSNESS, widget=forms.CheckboxSelectMultiple,
                                            required=False)
    relatedness = forms.ChoiceField(label="Relatedness to the MSC infusion", choices=EMPTY + RELATEDNESS)
    outcome = forms.ChoiceField(choices=EMPTY + OUTCOMES)
    action_taken = forms.ChoiceField(label="Action taken", choices=EMPTY + ACTIONS)
    learned_at = forms.DateTimeField(label="Site learned of it (date and time)", widget=DATETIME, required=False,
                                     help_text="required for a serious event: it starts the reporting clocks")
    suggested_from = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["subject_id"].choices = [("", "—")] + [(p.subject_id, p.subject_id) for p in Participant.objects.all()]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        """The cross-field checks of the core, shown with the fields' own errors (all at once)."""
        from trialdesk.trial.crf_checks import ae_outcome_problems

        data = super().clean() or {}
        for name, message in ae_outcome_problems(data.get("outcome"), data.get("resolved")):
            self.add_error(name, message)
        return data


class EditAdverseEventForm(AdverseEventForm):
    version = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label="Reason for change", widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["subject_id"].disabled = True


class FollowUpForm(forms.Form):
    received_at = forms.DateTimeField(label="Information received (date and time)", widget=DATETIME)
    information = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


class ReportForm(forms.Form):
    ae = forms.IntegerField(widget=forms.HiddenInput)
    rule_id = forms.CharField(widget=forms.HiddenInput)
    submitted_at = forms.DateTimeField(label="Submitted (date and time)", widget=DATETIME)


def _term(text: str) -> CtcaeTerm | None:
    return catalogue().get(text) if text else None


def _form_page(request: HttpRequest, form: forms.Form, title: str, **extra: Any) -> HttpResponse:
    term = _term(str(form["term"].value() or ""))
    return render(request, "adverse_events/ae_form.html", {"form": form, "title": title, "term": term,
                                                          "grades": sorted(term.grades.items()) if term else [], **extra})


@requires("view_ae")
def ae_list(request: HttpRequest) -> HttpResponse:
    aes = AdverseEvent.objects.select_related("participant")
    subject = request.GET.get("subject", "")
    if subject:
        aes = aes.filter(participant__subject_id=subject)
    return render(request, "adverse_events/ae_list.html", {"aes": with_attribution(list(aes)), "subject": subject})


def with_attribution(aes: list[AdverseEvent]) -> list[AdverseEvent]:
    """Each AE with ``.attribution``: the infusion it follows, from :mod:`trialdesk.safety.attribution`."""
    att = service.attributions_of(aes)
    for ae in aes:
        ae.attribution = att.get(ae.ae_id)  # type: ignore[attr-defined]
    return aes


@requires("record_ae")
def ae_new(request: HttpRequest) -> HttpResponse:
    initial = {k: v for k, v in request.GET.items() if k in ("subject_id", "term", "grade", "onset", "suggested_from")}
    form = AdverseEventForm(request.POST or None, initial={"learned_at": timezone.localtime().replace(second=0, microsecond=0), **initial})
    if request.method == "POST" and form.is_valid():
        d = dict(form.cleaned_data)
        participant = get_object_or_404(Participant, subject_id=d.pop("subject_id"))
        try:
            ae = service.record_adverse_event(request.user, participant, **d)
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, f"{ae.ae_id} recorded: {ae.term}, grade {ae.grade}" + (" (SERIOUS)" if ae.serious else "") + ".")
            return redirect("ae_detail", pk=ae.pk)
    return _form_page(request, form, "Record an adverse event", back="/adverse-events/")


@requires("view_ae")
def ae_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ae = get_object_or_404(AdverseEvent.with_voided.select_related("participant"), pk=pk)  # one entered in error is shown so
    if ae.entered_in_error and request.method == "POST":
        raise PermissionDenied(f"{ae.ae_id} is marked entered in error; record a new event instead")
    form = FollowUpForm(request.POST or None, initial={"received_at": timezone.localtime().replace(second=0, microsecond=0)})
    if request.method == "POST":
        if not allowed(request.user, "record_ae"):
            raise PermissionDenied("your role may not record ae")
        if form.is_valid():
            try:
                service.add_follow_up(request.user, ae, **form.cleaned_data)
            except ConductError as e:
                refuse(form, e)
            else:
                messages.success(request, "Follow-up information recorded.")
                return redirect("ae_detail", pk=pk)
    due = [r for r in service.reports_due() if r.ae_id == ae.ae_id] if ae.serious else []
    term = _term(ae.term)
    with_attribution([ae])
    death = service.death_report_of(ae.participant)
    return render(request, "adverse_events/ae_detail.html", {
        "ae": ae, "death_report": death if death and death.adverse_event_id == ae.pk else None,
        "death_due": ae.grade == 5 and death is None,
        "form": form, "due": due, "follow_ups": ae.follow_ups.all(), "reports": ae.reports.all(),
        "grade_definition": term.grades.get(ae.grade) if term else "", "hide_text": deidentified(request.user)})


@requires("record_ae")
def ae_edit(request: HttpRequest, pk: int) -> HttpResponse:
    ae = get_object_or_404(AdverseEvent.objects.select_related("participant"), pk=pk)
    initial: dict[str, Any] = {name: getattr(ae, name) for name in service.FIELDS}
    initial.update(subject_id=ae.participant.subject_id, version=ae.version, serious="yes" if ae.serious else "no",
                   learned_at=timezone.localtime(ae.learned_at) if ae.learned_at else None)
    form = EditAdverseEventForm(request.POST or None, initial=initial)
    current = None
    if request.method == "POST" and form.is_valid():
        d = dict(form.cleaned_data)
        version, reason = d.pop("version"), d.pop("reason")
        d.pop("subject_id")
        try:
            service.edit_adverse_event(request.user, ae, changes=d, reason=reason, version=version)
        except StaleEdit as e:
            refuse(form, e)
            current = {name: getattr(e.current, name) for name in service.FIELDS}
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, f"{ae.ae_id} updated.")
            return redirect("ae_detail", pk=pk)
    return _form_page(request, form, f"Update {ae.ae_id} — subject {ae.participant.subject_id}", current=current,
                      back=f"/adverse-events/{pk}/")


@requires("record_ae")
def suggestions(request: HttpRequest) -> HttpResponse:
    errors: dict[str, str] = {}
    if request.method == "POST":
        key = request.POST.get("key", "")
        try:
            service.dismiss_suggestion(request.user, key, reason=request.POST.get("reason", ""))
        except ConductError as e:
            errors[key] = e.message
        else:
            messages.success(request, "Suggestion dismissed; the reason is in the audit trail.")
            return redirect("ae_suggestions")
    rows = [{"s": o.suggestion, "key": o.key, "error": errors.get(o.key, "")} for o in service.open_suggestions()]
    return render(request, "adverse_events/suggestions.html", {"rows": rows}, status=422 if errors else 200)


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
                service.record_report(request.user, ae, rule_id=form.cleaned_data["rule_id"],
                                      submitted_at=form.cleaned_data["submitted_at"])
            except ConductError as e:
                messages.error(request, e.message)
            else:
                messages.success(request, f"Report {form.cleaned_data['rule_id']} for {ae.ae_id} recorded as submitted.")
        else:
            messages.error(request, "give the date and time the report was submitted")
        return redirect("safety_dashboard")
    data = service.cut()
    status = service.safety_status(data)
    aes = {ae.ae_id: ae for ae in AdverseEvent.objects.filter(serious=True)}
    due = [{"r": r, "ae": aes.get(r.ae_id)} for r in service.reports_due(data)]
    return render(request, "adverse_events/dashboard.html", {
        "due": [d for d in due if d["r"].status != "submitted"], "submitted": [d for d in due if d["r"].status == "submitted"],
        "status": status, "pauses": Pause.objects.filter(lifted_on__isnull=True), "now": timezone.localtime(),
        "deaths_due": service.deaths_due(),
        "suggestions": len(service.open_suggestions(data)) if allowed(request.user, "record_ae") else None,
        "report_form_initial": timezone.localtime().replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M")})


def _report(request: HttpRequest) -> Any:
    data = service.cut(_cutoff(request))
    return build_report(data, protocol(), service.safety_status(data), service.recorded_decisions())


@requires("view_dsmb_report")
def dsmb_report(request: HttpRequest) -> HttpResponse:
    return allow_inline_styles(HttpResponse(render_html(_report(request))))


@requires("view_dsmb_report")
def dsmb_report_pdf(request: HttpRequest) -> HttpResponse:
    report = _report(request)
    response = HttpResponse(render_pdf(report), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="dsmb-report-{report.nct_id}-{report.cutoff}.pdf"'
    return response


# --- MedWatch 3500A summary ----------------------------------------------------------------------


def _medwatch(request: HttpRequest, pk: int, fmt: str) -> Any:
    ae = get_object_or_404(AdverseEvent.objects.select_related("participant__screening"), pk=pk)
    try:
        return ae, service.medwatch(request.user, ae, fmt=fmt)
    except ConductError as e:
        messages.error(request, e.message)
        return ae, None


@requires("print_medwatch")
def ae_medwatch(request: HttpRequest, pk: int) -> HttpResponse:
    _, form = _medwatch(request, pk, "html")
    if form is None:
        return redirect("ae_detail", pk=pk)
    return allow_inline_styles(HttpResponse(medwatch_html(form)))


@requires("print_medwatch")
def ae_medwatch_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    ae, form = _medwatch(request, pk, "pdf")
    if form is None:
        return redirect("ae_detail", pk=pk)
    response = HttpResponse(medwatch_pdf(form), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="medwatch-3500a-{form.nct_id}-{ae.ae_id}-{form.report_date}.pdf"'
    return response


# --- death report --------------------------------------------------------------------------------


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
    existing = service.death_report_of(p)
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
            service.record_death(request.user, p, adverse_event=ae, **d)
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
            service.correct_death_report(request.user, report, changes=d, reason=reason, version=version)
        except ConductError as e:  # StaleEdit too
            refuse(form, e)
        else:
            messages.success(request, "Death report corrected.")
            return redirect("death_report", subject_id=p.subject_id)
    return render(request, "adverse_events/death_report.html", {"p": p, "report": report, "form": form},
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
                decision = service.record_dsmb_decision(request.user, **form.cleaned_data)
            except ConductError as e:
                refuse(form, e)
            else:
                messages.success(request, f"DSMB decision recorded and signed: {decision.get_kind_display()}.")
                return redirect("dsmb_decisions")
    rows = [{"d": d, "signature": d.current_signature()} for d in DsmbDecision.objects.all()]
    return render(request, "adverse_events/dsmb_decisions.html", {
        "form": form, "decisions": rows, "pauses": Pause.objects.filter(lifted_on__isnull=True).order_by("since"),
        "stopped": any(p.core().final for p in Pause.objects.filter(lifted_on__isnull=True))}, status=422 if form.errors else 200)

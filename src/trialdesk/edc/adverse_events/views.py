"""The adverse-event pages, the safety dashboard, the DSMB report and decisions, death reports and
the MedWatch 3500A summary."""

from __future__ import annotations

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
    OUTCOMES,
    RELATEDNESS,
    SERIOUSNESS,
    AdverseEvent,
)
from trialdesk.edc.audit.trail import StaleEdit
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.permissions import allowed, deidentified
from trialdesk.edc.web import allow_inline_styles, protocol, refuse, requires
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
    verbatim_term = forms.CharField(label="Event as reported", max_length=200, required=False,
                                    help_text="the event in the investigator's own words, before choosing the CTCAE term "
                                              "(exported as SDTM AETERM; left empty, the CTCAE term is exported)")
    term = forms.CharField(label="CTCAE v5.0 term", max_length=200,
                           help_text="type a few letters of the term or an everyday word; the MedDRA code and SOC follow from the term",
                           widget=forms.TextInput(attrs={"list": "ctcae-terms", "autocomplete": "off", "data-ctcae-search": "1"}))
    grade = forms.TypedChoiceField(choices=[("", "—")] + [(g, f"Grade {g}") for g in range(1, 6)], coerce=int, empty_value=None)
    description = forms.CharField(label="Description", widget=forms.Textarea(attrs={"rows": 2}), required=False)
    onset = forms.DateField(widget=DATE)
    resolved = forms.DateField(label="Resolved on", widget=DATE, required=False)
    serious = forms.TypedChoiceField(label="Serious (21 CFR 312.32)", choices=YES_NO, coerce=lambda v: v == "yes", empty_value=None)
    seriousness = forms.MultipleChoiceField(label="Seriousness criteria", choices=SERIOUSNESS, widget=forms.CheckboxSelectMultiple,
                                            required=False)
    relatedness = forms.ChoiceField(label="Relatedness to the study product", choices=EMPTY + RELATEDNESS)
    outcome = forms.ChoiceField(choices=EMPTY + OUTCOMES)
    action_taken = forms.ChoiceField(label="Action taken", choices=EMPTY + ACTIONS)
    learned_at = forms.DateTimeField(label="Site learned of it (date and time)", widget=DATETIME, required=False,
                                     help_text="required for a serious event: it starts the reporting clocks")
    suggested_from = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["subject_id"].choices = [("", "—")] + [(p.subject_id, p.subject_id) for p in Participant.objects.all()]  # type: ignore[attr-defined]
        self.fields["relatedness"].label = f"Relatedness to {product_name()}"

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


def product_name() -> str:
    """The study product as the protocol names it (its investigational intervention), for the relatedness question."""
    return protocol().study_intervention.name


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
    from trialdesk.edc.safety.service import assessments_in_force

    assessed = assessments_in_force()
    rows = with_attribution(list(aes))
    for ae in rows:
        ae.expectedness = assessed.get(ae.pk)  # type: ignore[attr-defined]
    return render(request, "adverse_events/ae_list.html", {"aes": rows, "subject": subject})


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
    from trialdesk.edc.safety.service import current_assessment
    from trialdesk.safety.sae_clock import report_history

    due = report_history(ae.ae_id, service.reports_due()) if ae.serious else []
    term = _term(ae.term)
    with_attribution([ae])
    death = service.death_report_of(ae.participant)
    return render(request, "adverse_events/ae_detail.html", {
        "ae": ae, "death_report": death if death and death.adverse_event_id == ae.pk else None,
        "death_due": ae.grade == 5 and death is None,
        "form": form, "due": due, "follow_ups": ae.follow_ups.all(), "reports": ae.reports.all(), "expectedness": current_assessment(ae),
        "grade_definition": term.grades.get(ae.grade) if term else "", "hide_text": deidentified(request.user),
        "sdv_verified": _verified(ae), "product": product_name()})


def _verified(ae: AdverseEvent) -> bool:
    """Source-verified at its current version (the whole record; a later change needs verifying again)."""
    from trialdesk.edc.quality.service import verified

    return verified(ae)


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
    from trialdesk.safety.suggestions import ungradable_values

    data = service.cut()
    rows = [{"s": o.suggestion, "key": o.key, "error": errors.get(o.key, "")} for o in service.open_suggestions(data)]
    return render(request, "adverse_events/suggestions.html", {"rows": rows, "ungradable": ungradable_values(data)},
                  status=422 if errors else 200)


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

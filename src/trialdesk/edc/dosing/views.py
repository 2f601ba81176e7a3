from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from trialdesk.edc.audit.trail import StaleEdit
from trialdesk.edc.dosing import service
from trialdesk.edc.dosing.models import CohortAssignment, Infusion
from trialdesk.edc.dosing.service import PHASES, VITALS
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.web import protocol, refuse, requires, today
from trialdesk.trial.dose import allowed_text
from trialdesk.trial.dosing import plain_weight, weight_text
from trialdesk.trial.errors import ConductError

DATE = forms.DateInput(attrs={"type": "date"})
TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


class InfusionForm(forms.Form):
    date = forms.DateField(widget=DATE)
    started_at = forms.TimeField(label="Start time", widget=TIME)
    stopped_at = forms.TimeField(label="Stop time", widget=TIME, required=False)
    weight_kg = forms.FloatField(label="Weight (kg)", help_text="measured on the day; 20–250 kg")
    total_cells = forms.FloatField(label="Total cells infused", help_text="e.g. 52500000; the dose is computed as the protocol states it")
    lot = forms.CharField(label="Product lot", max_length=60)
    donor_id = forms.CharField(label="Donor id", max_length=60)
    premedication = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    interrupted = forms.TypedChoiceField(label="Infusion interrupted", choices=[("", "—"), ("yes", "Yes"), ("no", "No")],
                                         coerce=lambda v: v == "yes", empty_value=None)
    interruptions = forms.CharField(label="Interruptions (when, why, how long)", widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for phase in PHASES:
            for code, label, low, high in VITALS:
                self.fields[f"{phase}_{code}"] = forms.FloatField(label=f"{phase.capitalize()}: {label}", required=False,
                                                                  min_value=low, max_value=high)

    def record(self) -> dict[str, Any]:
        d = dict(self.cleaned_data)
        vitals = {phase: {code: d.pop(f"{phase}_{code}") for code, *_ in VITALS if d.get(f"{phase}_{code}") is not None}
                  for phase in PHASES}
        for phase in PHASES:
            for code, *_ in VITALS:
                d.pop(f"{phase}_{code}", None)
        d["vitals"] = vitals
        return d


class EditInfusionForm(InfusionForm):
    version = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label="Reason for change", widget=forms.Textarea(attrs={"rows": 2}), required=False)


def _lead(p: Participant) -> str:
    spec = protocol().study_intervention.dose_spec
    dose = allowed_text(spec) if spec else "as in the protocol"
    how = {"per_kg": "total cells and weight", "per_m2": "total cells and body surface area"}.get(spec.basis if spec else "", "total cells")
    said = f"Protocol {dose}" if spec and spec.levels else f"Protocol dose {dose}"  # 'Protocol dose levels DL1 20, ...'
    return f"Subject {p.subject_id}.{_cohort_said(p)} {said}; the dose is computed from {how}."


def _cohort_said(p: Participant) -> str:
    """In a dose-finding trial, the participant's cohort and its dose level (or that none is assigned yet)."""
    if protocol().dose_finding is None:
        return ""
    a = CohortAssignment.objects.filter(participant=p).first()
    if a is None:
        return " No cohort assigned yet: assign one on the participant's page before the first infusion."
    return f" Cohort {a.cohort}: {cohort_dose_text(a.cohort)}."


def cohort_dose_text(cohort_id: str) -> str:
    """A cohort's dose level as pages show it: 'DL1 (20 × 10⁶ cells)'."""
    from trialdesk.trial.dose import dose_text

    p = protocol()
    spec = p.study_intervention.dose_spec
    assert spec is not None and p.dose_finding is not None
    level = next(lv for lv in spec.levels if lv.id == p.dose_finding.cohort(cohort_id).dose_level)
    return f"{level.id} ({level.label or dose_text(spec, level.amount)})"


@requires("enrol")
def assign_cohort(request: HttpRequest, subject_id: str) -> HttpResponse:
    """The coordinator assigns the participant to one of the cohorts offered (open, with a place); the core refuses others."""
    p = get_object_or_404(Participant, subject_id=subject_id)
    if request.method == "POST":
        try:
            a = service.assign_cohort(request.user, p, cohort=request.POST.get("cohort", ""))
        except ConductError as e:
            messages.error(request, f"Not assigned: {e.message}")
        else:
            messages.success(request, f"{subject_id} assigned to cohort {a.cohort}: {cohort_dose_text(a.cohort)}.")
    return redirect("participant_detail", subject_id=subject_id)


@requires("record_infusion")
def new_infusion(request: HttpRequest, subject_id: str) -> HttpResponse:
    p = get_object_or_404(Participant, subject_id=subject_id)
    number = p.infusions.count() + 1
    form = InfusionForm(request.POST or None, initial={"date": today()})
    if request.method == "POST" and form.is_valid():
        try:
            inf = service.record_infusion(request.user, p, number=number, **form.record())
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, f"Infusion {number} recorded: {inf.dose_text} at {weight_text(inf.weight_kg)}.")
            return redirect("participant_detail", subject_id=subject_id)
    return render(request, "edc/form.html", {"form": form, "title": f"Infusion {number} — subject {subject_id}",
            "submit": "Record infusion",
                                             "lead": _lead(p)})


@requires("record_infusion")
def edit_infusion(request: HttpRequest, subject_id: str, number: int) -> HttpResponse:
    inf = get_object_or_404(Infusion, participant__subject_id=subject_id, number=number)
    initial: dict[str, Any] = {f: getattr(inf, f) for f in service.FIELDS if f != "vitals"}
    for phase, values in (inf.vitals or {}).items():
        for code, v in values.items():
            initial[f"{phase}_{code}"] = v
    initial["version"] = inf.version
    initial["interrupted"] = "yes" if inf.interrupted else "no"
    initial["weight_kg"] = plain_weight(inf.weight_kg)
    form = EditInfusionForm(request.POST or None, initial=initial)
    current = None
    if request.method == "POST" and form.is_valid():
        d = form.record()
        version, reason = d.pop("version"), d.pop("reason")
        if d.get("weight_kg") == plain_weight(inf.weight_kg):
            d["weight_kg"] = inf.weight_kg  # the weight as the form showed it, taken back unchanged: not an edit
        try:
            service.edit_infusion(request.user, inf, changes=d, reason=reason, version=version)
        except StaleEdit as e:
            refuse(form, e)
            current = {f: getattr(e.current, f) for f in service.FIELDS}
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, "Infusion record corrected.")
            return redirect("participant_detail", subject_id=subject_id)
    lead = f"{_lead(inf.participant)} Recorded: {weight_text(inf.weight_kg)}, {inf.dose_text}."
    return render(request, "edc/form.html", {"form": form, "title": f"Correct infusion {number} — subject {subject_id}",
                                             "submit": "Save", "lead": lead, "current": current})

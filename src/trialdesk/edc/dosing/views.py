from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from trialdesk.edc.audit.trail import StaleEdit
from trialdesk.edc.dosing import service
from trialdesk.edc.dosing.models import Infusion
from trialdesk.edc.dosing.service import PHASES, VITALS
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.web import protocol, refuse, requires, today
from trialdesk.trial.dosing import dose_text, plain_weight, weight_text
from trialdesk.trial.errors import ConductError

DATE = forms.DateInput(attrs={"type": "date"})
TIME = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


class InfusionForm(forms.Form):
    date = forms.DateField(widget=DATE)
    started_at = forms.TimeField(label="Start time", widget=TIME)
    stopped_at = forms.TimeField(label="Stop time", widget=TIME, required=False)
    weight_kg = forms.FloatField(label="Weight (kg)", help_text="measured on the day; 20–250 kg")
    total_cells = forms.FloatField(label="Total cells infused", help_text="e.g. 52500000; the dose per kg is computed")
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
    rng = protocol().study_intervention.dose
    dose = f"{rng.min / 1e6:g}–{rng.max / 1e6:g} × 10⁶ {rng.unit}" if rng else "as in the protocol"
    return f"Subject {p.subject_id}. Protocol dose {dose}; the dose per kg is computed from total cells and weight."


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
            messages.success(request, f"Infusion {number} recorded: {dose_text(inf.dose_per_kg)} at {weight_text(inf.weight_kg)}.")
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
    lead = f"{_lead(inf.participant)} Recorded: {weight_text(inf.weight_kg)}, {dose_text(inf.dose_per_kg)}."
    return render(request, "edc/form.html", {"form": form, "title": f"Correct infusion {number} — subject {subject_id}",
                                             "submit": "Save", "lead": lead, "current": current})

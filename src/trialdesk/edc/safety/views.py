"""The safety area of the trial desk: the expectedness assessment of an adverse event (its own page,
beside the AE entry form, which it does not change)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from trialdesk.edc.adverse_events.models import AdverseEvent
from trialdesk.edc.permissions import allowed
from trialdesk.edc.safety import service
from trialdesk.edc.web import refuse, requires
from trialdesk.trial.errors import ConductError


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
    history = list(ae.expectedness_assessments.select_related("assessed_by").order_by("assessed_at", "pk"))
    return render(request, "safety/expectedness.html", {
        "ae": ae, "form": form, "suggestion": service.suggestion_for(ae), "current": service.current_assessment(ae),
        "history": history, "stale": bool(history) and service.current_assessment(ae) is None}, status=status)

"""The "Results and exports" page and its downloads (POST, so each one is a deliberate, audited act)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from trialdesk.edc.exports import service
from trialdesk.edc.permissions import allowed
from trialdesk.edc.web import requires, today

DATE = forms.DateInput(attrs={"type": "date"})


class ExportForm(forms.Form):
    cutoff = forms.DateField(label="Data cut", widget=DATE, help_text="everything recorded up to and including this date")
    frequency_threshold = forms.FloatField(label="Other-AE frequency threshold (%)", min_value=0, max_value=5, initial=0, required=False,
                                           help_text="ClinicalTrials.gov only: other (not serious) AEs are listed above this frequency;"
                                                     " at most 5 % (42 CFR 11.48)")
    identified = forms.BooleanField(label="Identified (with dates)", required=False,
                                    help_text="SDTM and the flat export by form only; de-identified (study days, no dates, no free-text"
                                              " reasons) unless ticked. Audited.")
    export_anyway = forms.BooleanField(label="Export anyway", required=False,
                                       help_text="export although the checks above failed; the file says so and the audit trail records it")

    def clean_cutoff(self) -> dt.date:
        cutoff: dt.date = self.cleaned_data["cutoff"]
        if cutoff > today():
            raise forms.ValidationError(f"the data cut cannot be after today ({today()})")
        return cutoff


def _cutoff(request: HttpRequest) -> dt.date:
    try:
        return min(dt.date.fromisoformat(request.GET.get("cutoff", "")), today())
    except ValueError:
        return today()


def _page(request: HttpRequest, form: ExportForm, cutoff: dt.date, *, status: int = 200, refused: list[str] | None = None,
          kind: str = "", error: str = "") -> HttpResponse:
    if not allowed(request.user, "export_identified"):
        form.fields.pop("identified", None)
    ctx: dict[str, Any] = {"form": form, "check": service.readiness(cutoff), "kinds": service.KINDS, "refused": refused or [],
                           "refused_kind": service.KINDS[kind].label if kind in service.KINDS else "", "error": error}
    return render(request, "exports/exports.html", ctx, status=status)


@requires("export_results")
def exports_page(request: HttpRequest) -> HttpResponse:
    cutoff = _cutoff(request)
    return _page(request, ExportForm(initial={"cutoff": cutoff, "frequency_threshold": 0}), cutoff)


@requires("export_results")
@require_POST
def download(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in service.KINDS:
        raise Http404(f"no export called {kind!r}")
    form = ExportForm(request.POST)
    if not form.is_valid():
        return _page(request, form, today(), status=400, kind=kind)
    cutoff: dt.date = form.cleaned_data["cutoff"]
    try:
        built = service.export(request.user, kind, cutoff, identified=form.cleaned_data["identified"],
                               export_anyway=form.cleaned_data["export_anyway"], threshold=form.cleaned_data["frequency_threshold"] or 0.0)
    except service.ExportRefused as exc:
        return _page(request, form, cutoff, status=409, refused=exc.problems, kind=kind)
    except ValueError as exc:  # the core's refusals: a threshold out of range, a form the schedule names but nobody defined...
        return _page(request, form, cutoff, status=400, kind=kind, error=str(exc))
    response = HttpResponse(built.content, content_type=built.content_type)
    response["Content-Disposition"] = f'attachment; filename="{built.filename}"'
    response["Cache-Control"] = "no-store"
    return response

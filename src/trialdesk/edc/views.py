"""The dashboard: what each role has to do today."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from trialdesk.edc.audit.trail import StaleEdit
from trialdesk.edc.participants.models import Participant, Pause
from trialdesk.edc.permissions import allowed
from trialdesk.edc.quality.models import Query
from trialdesk.edc.screening.models import EligibilitySignoff, ScreeningEntry
from trialdesk.edc.visits.models import Visit
from trialdesk.edc.visits.service import flag
from trialdesk.edc.web import protocol, refuse, requires, today
from trialdesk.trial.errors import ConductError


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    p = protocol()
    ctx: dict[str, object] = {
        "enrolled": Participant.objects.count(), "target": p.enrolment.target,
        "pauses": Pause.objects.filter(lifted_on__isnull=True),
        "open_queries": Query.objects.filter(status="open").count(),  # an answered query waits for its closer, not for the site
    }
    if allowed(user, "view_identified"):
        signed = EligibilitySignoff.objects.values_list("screening_id", flat=True)
        ctx["to_sign"] = ScreeningEntry.objects.filter(outcome="pending").exclude(pk__in=signed)
        ctx["screening_count"] = ScreeningEntry.objects.count()
        eligible = ScreeningEntry.objects.filter(outcome="eligible", participant__isnull=True).prefetch_related("consents")
        ctx["to_consent"] = [e for e in eligible if not any(c.withdrawn_at is None for c in e.consents.all())]
        ctx["to_enrol"] = [e for e in eligible if any(c.withdrawn_at is None for c in e.consents.all())]
        ctx["target_reached"] = Participant.objects.count() >= p.enrolment.target
    if allowed(user, "view_participants"):
        visits = Visit.objects.filter(participant__status="on_study", done_on__isnull=True).select_related("participant")
        ctx["missed"] = [v for v in visits if flag(v) == "missed"]
    from trialdesk.edc.workday.service import work_of_the_day

    ctx["work"] = work_of_the_day(user, today())
    return render(request, "edc/dashboard.html", ctx | {"today": today()})


# --- entered in error -------------------------------------------------------------------------------


class EnteredInErrorForm(forms.Form):
    error_reason = forms.CharField(label="Why was it entered in error?", widget=forms.Textarea(attrs={"rows": 2}),
                                   help_text="e.g. entered for the wrong participant; a duplicate of AE-12")
    version = forms.IntegerField(widget=forms.HiddenInput)


def _entered_in_error(request: HttpRequest, obj: Any, *, what: str, back: str) -> HttpResponse:
    from trialdesk.edc.voiding import mark_entered_in_error

    form = EnteredInErrorForm(request.POST or None, initial={"version": obj.version})
    if request.method == "POST" and form.is_valid():
        try:
            mark_entered_in_error(request.user, obj, reason=form.cleaned_data["error_reason"], version=form.cleaned_data["version"])
        except StaleEdit as e:
            refuse(form, e)
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, f"{what} marked entered in error; it stays in the audit trail and leaves every count and report.")
            return redirect(back)
    return render(request, "edc/form.html", {
        "form": form, "title": f"Mark {what} entered in error", "submit": "Mark entered in error", "back": back,
        "lead": "The record is kept (struck out, with your reason, in the audit trail) and leaves every count, report, stopping"
                " rule and data cut. To correct a value, edit the record instead."}, status=422 if form.errors else 200)


@requires("record_ae")
def ae_entered_in_error(request: HttpRequest, pk: int) -> HttpResponse:
    from trialdesk.edc.adverse_events.models import AdverseEvent

    ae = get_object_or_404(AdverseEvent.objects.select_related("participant"), pk=pk)
    return _entered_in_error(request, ae, what=ae.ae_id, back=f"/adverse-events/{pk}/")


@requires("record_infusion")
def infusion_entered_in_error(request: HttpRequest, subject_id: str, number: int) -> HttpResponse:
    from trialdesk.edc.dosing.models import Infusion

    inf = get_object_or_404(Infusion.objects.select_related("participant"), participant__subject_id=subject_id, number=number)
    return _entered_in_error(request, inf, what=f"infusion {number} of {subject_id}", back=f"/participants/{subject_id}/")


@requires("enrol")
def cohort_entered_in_error(request: HttpRequest, subject_id: str) -> HttpResponse:
    from trialdesk.edc.dosing.models import CohortAssignment

    back = f"/participants/{subject_id}/"
    a = CohortAssignment.objects.select_related("participant").filter(participant__subject_id=subject_id).first()
    if a is None:  # never assigned (or a protocol without cohorts), or already marked: nothing to mark, whatever was posted
        return render(request, "edc/form.html", {"title": f"The cohort assignment of {subject_id}", "readonly": [], "back": back,
                                                 "lead": "No cohort assignment is in force: there is nothing to mark entered in error."},
                      status=404 if request.method == "POST" else 200)
    return _entered_in_error(request, a, what=f"the assignment of {subject_id} to cohort {a.cohort}", back=back)


@requires("record_visit")
def crf_entered_in_error(request: HttpRequest, subject_id: str, code: str, form_id: str) -> HttpResponse:
    from trialdesk.edc.visits.models import FormEntry

    back = f"/participants/{subject_id}/visits/{code}/"
    entry = FormEntry.objects.select_related("visit__participant").filter(visit__participant__subject_id=subject_id, visit__code=code,
                                                                          form=form_id).first()
    if entry is None:  # nothing in force on this form (never entered, or already marked)
        if request.method == "POST":
            raise Http404("nothing is entered on this form")
        return render(request, "edc/form.html", {"title": f"The {form_id.replace('_', ' ')} form of {subject_id} at visit {code}",
                                                 "lead": "Nothing is entered on this form: there is nothing to mark entered in error.",
                                                 "readonly": [], "back": back})
    return _entered_in_error(request, entry, what=f"the {form_id.replace('_', ' ')} form of {subject_id} at {entry.visit.name}",
                             back=back)

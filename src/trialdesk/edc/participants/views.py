from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from trialdesk.edc.participants import service
from trialdesk.edc.participants.models import Participant, Pause
from trialdesk.edc.quality.service import verified
from trialdesk.edc.screening.models import ScreeningEntry
from trialdesk.edc.visits.service import flag
from trialdesk.edc.web import protocol, refuse, requires, today
from trialdesk.trial.errors import ConductError

DATE = forms.DateInput(attrs={"type": "date"})
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class ConsentForm(forms.Form):
    icf_version = forms.CharField(label="ICF version", max_length=60)
    signed_at = forms.DateTimeField(label="Signed (date and time)", widget=DATETIME)
    obtained_by = forms.CharField(max_length=200)
    copy_given = forms.BooleanField(label="A copy of the signed form was given to the participant", required=False)


class EnrolForm(forms.Form):
    enrolled_on = forms.DateField(widget=DATE)
    planned_first_infusion = forms.DateField(widget=DATE, required=False)


class WithdrawForm(forms.Form):
    withdrawn_at = forms.DateTimeField(label="Withdrawn (date and time)", widget=DATETIME)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class OffStudyForm(forms.Form):
    off_study_on = forms.DateField(widget=DATE)
    off_study_reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    version = forms.IntegerField(widget=forms.HiddenInput)


class CompletionForm(forms.Form):
    """The investigator's confirmation that the participant completed the protocol's follow-up."""

    completed_on = forms.DateField(label="Completed on (on or after the last scheduled visit)", widget=DATE)
    confirm = forms.BooleanField(label="I confirm the participant completed the protocol's follow-up: the study ends for them"
                                       " and no further visits or infusions are recorded")
    version = forms.IntegerField(widget=forms.HiddenInput)


def last_visit_done(p: Participant) -> bool:
    """The last scheduled visit has its date: the study can be completed (the service checks again)."""
    last = p.visits.order_by("-day").first()
    return last is not None and last.done_on is not None


def _screening_form_page(request: HttpRequest, entry: ScreeningEntry, form: forms.Form, title: str) -> HttpResponse:
    return render(request, "edc/form.html", {"form": form, "title": title, "submit": "Save",
                                             "back": f"/screening/{entry.number}/"})


@requires("record_consent")
def consent(request: HttpRequest, number: str) -> HttpResponse:
    entry = get_object_or_404(ScreeningEntry, number=number)
    form = ConsentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            service.record_consent(request.user, entry, **form.cleaned_data)
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, "Consent recorded.")
            return redirect("screening_detail", number=number)
    return _screening_form_page(request, entry, form, f"Informed consent — {entry.number}")


@requires("enrol")
def enrol(request: HttpRequest, number: str) -> HttpResponse:
    entry = get_object_or_404(ScreeningEntry, number=number)
    form = EnrolForm(request.POST or None, initial={"enrolled_on": today()})
    if request.method == "POST" and form.is_valid():
        try:
            p = service.enrol(request.user, entry, **form.cleaned_data)
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, f"Enrolled as subject {p.subject_id}.")
            return redirect("participant_detail", subject_id=p.subject_id)
    return _screening_form_page(request, entry, form, f"Enrol {entry.number}")


@requires("view_participants")
def participant_list(request: HttpRequest) -> HttpResponse:
    ps = Participant.objects.select_related("screening").prefetch_related("infusions", "visits")
    rows = []
    for p in ps:
        flags = [flag(v) for v in p.visits.all()]
        rows.append({"p": p, "infusions": len(p.infusions.all()), "missed": flags.count("missed"),
                     "out_of_window": flags.count("out_of_window")})
    return render(request, "edc/participant_list.html", {"rows": rows, "target": protocol().enrolment.target,
            "pauses": Pause.objects.all()})


@requires("view_participants")
def participant_detail(request: HttpRequest, subject_id: str) -> HttpResponse:
    p = get_object_or_404(Participant.objects.select_related("screening"), subject_id=subject_id)
    from trialdesk.edc.visits.service import form_rows

    visits = []
    for v in p.visits.prefetch_related("entries"):
        rows = form_rows(v)
        visits.append({"v": v, "flag": flag(v), "total": len(rows),
                       "complete": sum(r["status"] in ("complete", "not_done") for r in rows)})
    infusions = [{"i": i, "verified": verified(i)} for i in p.infusions.all()]
    plan = protocol().infusion_plan
    return render(request, "edc/participant_detail.html", {
        "p": p, "consent": p.current_consent(), "visits": visits, "infusions": infusions,
        "next_infusion": len(infusions) + 1 if plan and len(infusions) < plan.count else None,
        "queries": p.queries.all(), **_safety(p),
        "withdraw_form": WithdrawForm(initial={"withdrawn_at": timezone.localtime().replace(second=0, microsecond=0)}),
        "off_form": OffStudyForm(initial={"off_study_on": today(), "version": p.version}),
        "may_complete": p.status == "on_study" and not p.locked and last_visit_done(p),
        "cohort": _cohort(p),
    })


def _cohort(p: Participant) -> dict[str, object] | None:
    """In a dose-finding trial: the participant's cohort assignment, or the cohorts the desk offers (open, with a place)."""
    if protocol().dose_finding is None:
        return None
    from trialdesk.edc.dosing.models import CohortAssignment
    from trialdesk.edc.dosing.service import cohort_choices, cohort_states
    from trialdesk.edc.dosing.views import cohort_dose_text

    a = CohortAssignment.objects.filter(participant=p).first()
    if a is not None:
        return {"assignment": a, "dose": cohort_dose_text(a.cohort)}
    may_assign = p.status == "on_study" and not p.infusions.exists()
    choices = cohort_choices() if may_assign else []
    return {"assignment": None, "choices": choices, "may_assign": may_assign, "states": [] if choices else cohort_states()}


def _safety(p: Participant) -> dict[str, object]:
    """The participant's AEs with the infusion each is attributed to, and the death report (or that one is due)."""
    from trialdesk.edc.adverse_events.service import death_report_of, died_on
    from trialdesk.edc.adverse_events.views import with_attribution

    aes = with_attribution(list(p.adverse_events.select_related("participant")))
    return {"adverse_events": aes, "death_report": death_report_of(p), "died_on": died_on(p)}


@requires("withdraw_consent")
def withdraw(request: HttpRequest, subject_id: str) -> HttpResponse:
    p = get_object_or_404(Participant, subject_id=subject_id)
    form = WithdrawForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            service.withdraw(request.user, p, at=form.cleaned_data["withdrawn_at"], reason=form.cleaned_data["reason"])
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, "Withdrawal of consent recorded; no further study procedures.")
            return redirect("participant_detail", subject_id=subject_id)
    return render(request, "edc/form.html", {"form": form, "title": f"Withdrawal of consent — {subject_id}", "submit": "Record withdrawal"})


@requires("mark_off_study")
def off_study(request: HttpRequest, subject_id: str) -> HttpResponse:
    p = get_object_or_404(Participant, subject_id=subject_id)
    if request.GET.get("complete") == "1":
        return _complete(request, p)
    form = OffStudyForm(request.POST or None, initial={"off_study_on": today(), "version": p.version})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            service.take_off_study(request.user, p, on=d["off_study_on"], reason=d["off_study_reason"], version=d["version"])
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, f"{subject_id} is off study.")
            return redirect("participant_detail", subject_id=subject_id)
    return render(request, "edc/form.html", {"form": form, "title": f"Off study — {subject_id}", "submit": "Save"})


def _complete(request: HttpRequest, p: Participant) -> HttpResponse:
    """Study completion, on the off-study page (same permission): a confirmation, then the audited change."""
    last = p.visits.order_by("-day").first()
    form = CompletionForm(request.POST or None, initial={"completed_on": last.done_on if last else today(), "version": p.version})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            service.complete_study(request.user, p, on=d["completed_on"], version=d["version"])
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, f"{p.subject_id} completed the study.")
            return redirect("participant_detail", subject_id=p.subject_id)
    done = f" ({last.name} done {last.done_on})" if last is not None and last.done_on else ""
    return render(request, "edc/form.html", {
        "form": form, "title": f"Study completion — {p.subject_id}", "submit": "Record completion",
        "back": f"/participants/{p.subject_id}/",
        "lead": f"Record that {p.subject_id} completed the protocol's follow-up{done}. This takes the participant off study as completed;"
                " it is audited and cannot be undone here."})


@requires("lock_casebook")
def lock(request: HttpRequest, subject_id: str) -> HttpResponse:
    p = get_object_or_404(Participant, subject_id=subject_id)
    if request.method == "POST":
        locking = request.POST.get("lock") == "1"
        try:
            service.set_lock(request.user, p, locked=locking, reason=request.POST.get("reason", ""))
        except ConductError as e:
            messages.error(request, e.message)
        else:
            messages.success(request, f"Casebook {'locked' if locking else 'unlocked'}.")
    return redirect("participant_detail", subject_id=subject_id)

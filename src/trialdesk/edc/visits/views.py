from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from trialdesk.edc.audit.trail import StaleEdit
from trialdesk.edc.permissions import allowed
from trialdesk.edc.visits import service
from trialdesk.edc.visits.crf import crf_form, definition
from trialdesk.edc.visits.models import ROUTES, FormEntry, Visit
from trialdesk.edc.web import read_only_rows, refuse, requires
from trialdesk.trial.errors import ConductError


class VisitDateForm(forms.Form):
    done_on = forms.DateField(label="Visit date", widget=forms.DateInput(attrs={"type": "date"}))
    version = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label="Reason for change (when correcting)", required=False)
    out_of_window_reason = forms.CharField(label="If outside the visit window: the reason", required=False,
                                           help_text="logged as a protocol deviation")


@requires("view_forms")
def visit(request: HttpRequest, subject_id: str, code: str) -> HttpResponse:
    v = get_object_or_404(Visit.objects.select_related("participant"), participant__subject_id=subject_id, code=code)
    form = VisitDateForm(request.POST or None, initial={"done_on": v.done_on or v.target, "version": v.version})
    if request.method == "POST":
        if not allowed(request.user, "record_visit"):
            return HttpResponse(status=403)
        if form.is_valid():
            d = form.cleaned_data
            try:
                v = service.record_visit(request.user, v, done_on=d["done_on"], reason=d["reason"], version=d["version"],
                                         out_of_window_reason=d["out_of_window_reason"])
            except ConductError as e:
                refuse(form, e)
            else:
                messages.success(request, "Visit date saved" + (" — out of window, logged as a protocol deviation."
                                                                if v.out_of_window else "."))
                return redirect("visit", subject_id=subject_id, code=code)
    elsewhere = [f for f in v.forms if f in ("infusion", "adverse_events")]
    from trialdesk.edc.quality.service import form_sdv

    rows = service.form_rows(v)
    for r in rows:  # source data verification of each form entered
        r["sdv"] = form_sdv(r["entry"]) if r["entry"] is not None else None
    checked = [r["sdv"] for r in rows if r["sdv"] is not None and r["sdv"].fields]
    visit_sdv = ("" if not checked else "verified" if all(s.status == "verified" for s in checked)
                 else "changed since verified" if any(s.changed for s in checked) else "not fully verified")
    return render(request, "edc/visit.html", {"v": v, "flag": service.flag(v), "form": form, "forms_due": rows,
                                              "elsewhere": elsewhere, "visit_sdv": visit_sdv})


def _title(form_id: str) -> str:
    try:
        return definition(form_id).title
    except KeyError:
        return form_id.replace("_", " ")


#: fields of the form page that are not the form's own values
_CONTROLS = ("version", "reason", "out_of_window_reason")


def _crf_page(request: HttpRequest, v: Visit, form_id: str, form: forms.Form, existing: FormEntry | None, *, readonly: bool,
              current: dict[str, object] | None = None) -> HttpResponse:
    """The form with, beside each field, its laboratory flag, its source data verification and its open queries."""
    from trialdesk.edc.labs.service import flags_for
    from trialdesk.edc.quality.service import field_states, form_sdv, open_queries_by_field

    subject_id = v.participant.subject_id
    states = field_states(existing) if existing is not None else {}
    queries = open_queries_by_field(v.participant, v, form_id)
    flags = flags_for(v.participant, form_id, existing.data if existing is not None else {})
    texts = dict(zip([b.name for b in form.visible_fields()], [t for _, t in read_only_rows(form)], strict=True)) if readonly else {}
    rows = []
    for bound in form.visible_fields():
        if bound.name in _CONTROLS:
            continue
        if not readonly:
            bound.field.widget.attrs["form"] = "crf-form"
        rows.append({"name": bound.name, "label": bound.label, "bound": bound, "widget": bound if not readonly else None,
                     "errors": bound.errors if not readonly else [], "text": texts.get(bound.name, ""),
                     "sdv": states.get(bound.name), "queries": queries.get(bound.name, []), "flag": flags.get(bound.name)})
    extra = []
    for name in _CONTROLS[1:]:
        if name in form.fields and not readonly:
            form.fields[name].widget.attrs["form"] = "crf-form"
            extra.append(form[name])
    title = f"{_title(form_id)} — {subject_id}, {v.name}"
    return render(request, "edc/crf.html", {
        "form": form, "rows": rows, "extra_fields": extra, "readonly": readonly, "entry": existing, "title": title,
        "sdv": form_sdv(existing) if existing is not None else None, "form_queries": queries.get("", []), "current": current,
        "subject_id": subject_id, "visit_code": v.code, "form_id": form_id, "entry_or_visit": True, "flags_shown": form_id == "laboratory",
        "back": f"/participants/{subject_id}/visits/{v.code}/", "next": request.path,
    }, status=422 if form.errors else 200)


@requires("view_forms")
def crf(request: HttpRequest, subject_id: str, code: str, form_id: str) -> HttpResponse:
    """Every role that reads forms reads this one (a monitor verifies its fields and raises queries on them); entering or
    changing it is ``record_visit``."""
    v = get_object_or_404(Visit.objects.select_related("participant"), participant__subject_id=subject_id, code=code)
    if form_id not in v.forms:
        raise Http404(f"form {form_id!r} is not due at visit {code}")
    existing = FormEntry.objects.filter(visit=v, form=form_id).first()
    if not allowed(request.user, "record_visit"):
        if request.method == "POST":
            raise PermissionDenied("your role may not record visit")
        shown = crf_form(form_id, initial=existing.data if existing else {})
        return _crf_page(request, v, form_id, shown, existing, readonly=True)
    form = crf_form(form_id, request.POST or None, initial=existing.data if existing else None)
    form.fields["version"] = forms.IntegerField(widget=forms.HiddenInput, required=False, initial=existing.version if existing else None)
    if existing is not None:
        form.fields["reason"] = forms.CharField(label="Reason for change", required=False)
    form.fields["out_of_window_reason"] = forms.CharField(
        label=f"If the date is outside the visit window ({v.earliest} to {v.latest}): the reason", required=False,
        help_text="logged as a protocol deviation")
    current = None
    if request.method == "POST" and form.is_valid():
        d = dict(form.cleaned_data)
        version, reason, late = d.pop("version", None), d.pop("reason", ""), d.pop("out_of_window_reason", "")
        try:
            saved = service.save_form(request.user, v, form_id, d, reason=reason, version=version, out_of_window_reason=late)
        except StaleEdit as e:
            refuse(form, e)
            current = e.current.data
        except ConductError as e:
            refuse(form, e)
        else:
            from trialdesk.edc.labs.service import flags_for

            flagged = [f"{f.label} {'high' if f.code == 'H' else 'low'} ({f.range})"
                       for f in flags_for(v.participant, form_id, saved.data).values() if f.code]
            messages.success(request, f"{_title(form_id)} saved." + (f" Outside the reference range: {', '.join(flagged)}."
                                                                     if flagged else ""))
            return redirect("visit", subject_id=subject_id, code=code)
    return _crf_page(request, v, form_id, form, existing, readonly=False, current=current)


DATE = forms.DateInput(attrs={"type": "date"})


class MedicationForm(forms.Form):
    medication = forms.CharField(label="Medication (as written)", max_length=200)
    indication = forms.CharField(max_length=200, required=False)
    dose = forms.FloatField(required=False, min_value=0)
    dose_unit = forms.CharField(label="Dose unit", max_length=20, required=False)
    route = forms.ChoiceField(choices=[("", "—"), *ROUTES], required=False)
    frequency = forms.CharField(max_length=60, required=False)
    start_date = forms.DateField(label="Start date", widget=DATE, required=False)
    end_date = forms.DateField(label="End date", widget=DATE, required=False)
    ongoing = forms.BooleanField(label="Ongoing", required=False)


class HistoryForm(forms.Form):
    term = forms.CharField(label="Condition (as written)", max_length=200)
    icd10cm_code = forms.CharField(label="ICD-10-CM code", max_length=10, required=False)
    start_date = forms.DateField(label="Start date", widget=DATE, required=False)
    end_date = forms.DateField(label="End date", widget=DATE, required=False)
    ongoing = forms.BooleanField(label="Ongoing", required=False)


def _history_page(request: HttpRequest, subject_id: str, kind: str) -> HttpResponse:
    from trialdesk.edc.participants.models import Participant
    from trialdesk.edc.visits import history

    p = get_object_or_404(Participant, subject_id=subject_id)
    form: forms.Form = (MedicationForm if kind == "cm" else HistoryForm)(request.POST or None)
    if request.method == "POST":
        if not allowed(request.user, "record_visit"):
            raise PermissionDenied("your role may not record visit")
        if form.is_valid():
            try:
                history.add(request.user, p, kind, form.cleaned_data)
            except ConductError as e:
                refuse(form, e)
            else:
                messages.success(request, "Saved.")
                return redirect(request.path)
    rows = p.medications.all() if kind == "cm" else p.medical_history.all()
    title = "Concomitant medications" if kind == "cm" else "Medical history"
    return render(request, "edc/history.html", {"p": p, "rows": rows, "form": form, "kind": kind, "title": title},
                  status=422 if form.errors else 200)


@requires("record_visit")
def crf_not_done(request: HttpRequest, subject_id: str, code: str, form_id: str) -> HttpResponse:
    """Record that a visit form was not done, with the reason (POST from the visit page)."""
    v = get_object_or_404(Visit.objects.select_related("participant"), participant__subject_id=subject_id, code=code)
    if request.method == "POST":
        try:
            service.mark_not_done(request.user, v, form_id, reason=request.POST.get("not_done_reason", ""))
        except ConductError as e:
            messages.error(request, f"{_title(form_id)}: {e.message}")
        else:
            messages.success(request, f"{_title(form_id)} recorded as not done.")
    return redirect("visit", subject_id=subject_id, code=code)


@requires("view_forms")
def missing_forms(request: HttpRequest) -> HttpResponse:
    """Every visit form not started or incomplete at a visit that took place, per participant and visit."""
    from trialdesk.edc.web import today

    rows = service.missing_forms(today())
    return render(request, "edc/missing_forms.html", {"rows": rows})


@requires("view_forms")
def medications(request: HttpRequest, subject_id: str) -> HttpResponse:
    """The participant's concomitant medications; adding one is ``record_visit``."""
    return _history_page(request, subject_id, "cm")


@requires("view_forms")
def medical_history(request: HttpRequest, subject_id: str) -> HttpResponse:
    """The participant's medical history; adding a condition is ``record_visit``."""
    return _history_page(request, subject_id, "mh")


class UnscheduledVisitForm(forms.Form):
    done_on = forms.DateField(label="Visit date", widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(label="Why the participant is seen outside the schedule", widget=forms.Textarea(attrs={"rows": 2}),
                             max_length=1000, help_text="e.g. new cough and fever; repeat of an abnormal ALT")
    forms = forms.MultipleChoiceField(label="Forms done at the visit", widget=forms.CheckboxSelectMultiple, choices=[])


@requires("record_visit")
def unscheduled_visit(request: HttpRequest, subject_id: str) -> HttpResponse:
    """Add an unscheduled visit (its date, the reason and its forms); its forms are then entered as at any visit."""
    from trialdesk.edc.participants.models import Participant
    from trialdesk.edc.visits.unscheduled import add_unscheduled_visit, visit_forms

    p = get_object_or_404(Participant, subject_id=subject_id)
    form = UnscheduledVisitForm(request.POST or None)
    form.fields["forms"].choices = visit_forms()
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            v = add_unscheduled_visit(request.user, p, done_on=d["done_on"], reason=d["reason"], forms=d["forms"])
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, f"{v.name} added; enter its forms below.")
            return redirect("visit", subject_id=subject_id, code=v.code)
    return render(request, "edc/form.html", {
        "form": form, "title": f"Unscheduled visit — {subject_id}", "submit": "Add the visit", "back": f"/participants/{subject_id}/",
        "lead": "A visit the schedule does not have: its date, why it happened and the forms done at it. It is never counted as"
                " missed or out of window; a form chosen and never started is not counted missing."},
        status=422 if form.errors else 200)

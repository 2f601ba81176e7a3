"""The printable casebook, the principal investigator's signature over it, and the participant's timeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe

from trialdesk.edc.casebook import service
from trialdesk.edc.casebook.timeline import Mark, study_day, svg
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.permissions import allowed, deidentified
from trialdesk.edc.web import refuse, requires, today
from trialdesk.trial.errors import ConductError


class SignForm(forms.Form):
    printed_name = forms.CharField(label="Your full name (printed on the signature)", max_length=200)
    password = forms.CharField(label="Your password (to sign)", widget=forms.PasswordInput, max_length=200)


def _forms_of(p: Participant) -> list[dict[str, Any]]:
    """Each visit with its forms' values, labelled as on the forms."""
    from trialdesk.edc.visits.crf import catalogue
    from trialdesk.edc.visits.service import form_rows

    cat = catalogue()
    out = []
    for v in p.visits.prefetch_related("entries").order_by("day", "code"):
        forms_ = []
        for row in form_rows(v):
            e = row["entry"]
            fields = []
            if e is not None and row["id"] in cat.ids:
                for f in cat.form(row["id"]).fields:
                    if f.name in e.data:
                        value = e.data[f.name]
                        if f.type == "choice":
                            value = {c.code: c.label for c in f.choices}.get(value, value)
                        elif f.type == "yesno":
                            value = "Yes" if value else "No"
                        fields.append((f.label + (f" ({f.unit})" if f.unit else ""), value))
            forms_.append({"title": row["title"], "label": row["label"], "fields": fields,
                           "not_done": e.not_done_reason if e is not None else ""})
        out.append({"v": v, "forms": forms_})
    return out


def _casebook_page(request: HttpRequest, p: Participant, form: SignForm, status: int = 200) -> HttpResponse:
    from trialdesk.edc.participants.views import _safety

    return render(request, "edc/casebook.html", {
        "p": p, "consent": p.current_consent(), "infusions": p.infusions.all(), "visits": _forms_of(p),
        "medications": p.medications.all(), "history": p.medical_history.all(), "queries": p.queries.all(),
        "state": service.signature_state(p), "sign_form": form, "printed_at": dt.datetime.now(dt.UTC), **_safety(p),
    }, status=status)


@requires("view_forms")
def casebook(request: HttpRequest, subject_id: str) -> HttpResponse:
    """Every record of the participant on one page, for print; the PI's signature and the lock's state."""
    p = get_object_or_404(Participant.objects.select_related("screening"), subject_id=subject_id)
    return _casebook_page(request, p, SignForm(initial={"printed_name": request.user.get_full_name()}))


@requires("sign_casebook")
def sign(request: HttpRequest, subject_id: str) -> HttpResponse:
    """The principal investigator signs the casebook; a refusal is shown at the signature form."""
    p = get_object_or_404(Participant.objects.select_related("screening"), subject_id=subject_id)
    if request.method != "POST":
        return redirect("casebook", subject_id=subject_id)
    form = SignForm(request.POST)
    if form.is_valid():
        try:
            service.sign(request.user, p, password=form.cleaned_data["password"], printed_name=form.cleaned_data["printed_name"])
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, f"You signed the casebook of {subject_id}; the data manager may now lock it.")
            return redirect("casebook", subject_id=subject_id)
    return _casebook_page(request, p, form, status=422)


# --- the timeline ----------------------------------------------------------------------------------


def timeline_marks(p: Participant, user: Any) -> tuple[list[Mark], dt.date]:
    """The participant's events as marks on study days (day 0: the first infusion, else the enrolment)."""
    from trialdesk.edc.participants.templatetags.desk import first_infusion_date, site_text
    from trialdesk.edc.visits.service import flag

    day0 = first_infusion_date(p) or p.enrolled_on
    hidden = deidentified(user)
    forms_ok = allowed(user, "view_forms")

    def when(*dates: dt.date | dt.datetime | None) -> str:
        return "" if hidden else " to ".join(site_text(d) for d in dates if d is not None)

    consent = p.current_consent()
    signed_on = consent.core().signed_on
    marks = [Mark(0, study_day(signed_on, day0), study_day(signed_on, day0), "consent",
                  f"consent signed (day {study_day(signed_on, day0)})", when=when(consent.signed_at)),
             Mark(0, study_day(p.enrolled_on, day0), study_day(p.enrolled_on, day0), "consent",
                  f"enrolled (day {study_day(p.enrolled_on, day0)})", href=f"/participants/{p.subject_id}/", when=when(p.enrolled_on))]
    for i in p.infusions.all():
        d = study_day(i.date, day0)
        marks.append(Mark(1, d, d, "infusion", f"infusion {i.number} (day {d}), {i.dose_text}", href=f"/participants/{p.subject_id}/",
                          when=when(i.date)))
    for v in p.visits.all():
        href = f"/participants/{p.subject_id}/visits/{v.code}/" if forms_ok else ""
        a, b = study_day(v.earliest, day0), study_day(v.latest, day0)
        if not v.unscheduled:  # an unscheduled visit's window is its date
            marks.append(Mark(2, a, b, "window", f"{v.name}: window day {a} to day {b}", href=href, when=when(v.earliest, v.latest)))
        if v.done_on is not None:
            d = study_day(v.done_on, day0)
            marks.append(Mark(2, d, d, "visit", f"{v.name} done (day {d})", href=href, when=when(v.done_on)))
        elif flag(v) == "missed":
            marks.append(Mark(2, b, b, "missed", f"{v.name} missed (window closed day {b})", href=href))
    for ae in p.adverse_events.all():
        a = study_day(ae.onset, day0)
        until = p.off_study_on if p.status != "on_study" and p.off_study_on else today()  # an open AE runs to the study's end
        b = study_day(ae.resolved, day0) if ae.resolved else study_day(until, day0)
        resolved = f"resolved day {b}" if ae.resolved else "not resolved"
        marks.append(Mark(3, a, b, "sae" if ae.serious else "ae",
                          f"{ae.ae_id} {ae.term}, grade {ae.grade}{', serious' if ae.serious else ''}: onset day {a}, {resolved}",
                          href=f"/adverse-events/{ae.pk}/", when=when(ae.onset, ae.resolved)))
    return marks, day0


@requires("view_participants")
def timeline(request: HttpRequest, subject_id: str) -> HttpResponse:
    p = get_object_or_404(Participant.objects.select_related("screening"), subject_id=subject_id)
    marks, day0 = timeline_marks(p, request.user)
    on_study = p.status == "on_study"  # a participant whose study ended is drawn to its end, not to today
    picture = svg(marks, today_day=study_day(today(), day0) if on_study else None,
                  title=f"Timeline of subject {p.subject_id} in study days")
    return render(request, "edc/timeline.html", {"p": p, "svg": mark_safe(picture),  # built from escaped text
                                                 "marks": sorted(marks, key=lambda m: (m.start, m.lane))})

from __future__ import annotations

import tempfile
from pathlib import Path

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from trialdesk.edc.audit import trail
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.participants.service import current_consent
from trialdesk.edc.screening import service
from trialdesk.edc.screening.models import EligibilitySignoff, ScreeningEntry
from trialdesk.edc.signatures.service import signatures_of
from trialdesk.edc.web import protocol, refuse, requires, today
from trialdesk.sources.fhir import FhirError
from trialdesk.trial.errors import ConductError
from trialdesk.trial.signoff import open_criteria

DATE = forms.DateInput(attrs={"type": "date"})


class PersonForm(forms.Form):
    given_name = forms.CharField(max_length=100)
    family_name = forms.CharField(max_length=100)
    mrn = forms.CharField(label="MRN", max_length=40, required=False)
    birth_date = forms.DateField(widget=DATE, required=False)
    sex = forms.ChoiceField(choices=[("female", "Female"), ("male", "Male"), ("unknown", "Unknown")])
    screened_on = forms.DateField(widget=DATE)


class EditPersonForm(PersonForm):
    version = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label="Reason for change", widget=forms.Textarea(attrs={"rows": 2}), required=False)


class UploadForm(forms.Form):
    file = forms.FileField()
    as_of = forms.DateField(label="Data as of", widget=DATE)
    screened_on = forms.DateField(widget=DATE)


@requires("view_identified")
def screening_list(request: HttpRequest) -> HttpResponse:
    form = PersonForm(request.POST or None, initial={"screened_on": today()})
    if request.method == "POST":
        if not _may(request, "screen"):
            return HttpResponse(status=403)
        if form.is_valid():
            try:
                entry = service.screen_by_hand(request.user, **form.cleaned_data)
            except ConductError as e:
                refuse(form, e)
            else:
                messages.success(request, f"{entry.number} added to the screening log.")
                return redirect("screening_detail", number=entry.number)
    entries = ScreeningEntry.objects.select_related("previous").prefetch_related("rescreens")
    from trialdesk.edc.referrals.service import listed

    return render(request, "edc/screening_list.html", {"entries": entries, "form": form, "referrals": listed(protocol()),
                                                       "upload": UploadForm(initial={"as_of": today(), "screened_on": today()})})


def _may(request: HttpRequest, action: str) -> bool:
    from trialdesk.edc.permissions import allowed

    return allowed(request.user, action)


@requires("screen")
def upload(request: HttpRequest, kind: str) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None, initial={"as_of": today(), "screened_on": today()})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        f = d["file"]
        try:
            if kind == "candidates":
                entries = service.import_candidates(request.user, f.read().decode("utf-8-sig"), as_of=d["as_of"],
                        screened_on=d["screened_on"])
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / (Path(f.name).name or "upload.json")
                    path.write_bytes(f.read())
                    try:
                        entries = service.screen_fhir(request.user, path, as_of=d["as_of"], screened_on=d["screened_on"], label=f.name)
                    except FhirError as e:  # its message names the temporary copy; the user knows the file by its own name
                        raise ConductError("file", str(e).replace(str(path), Path(f.name).name)) from None
        except ConductError as e:
            refuse(form, e)
        except UnicodeDecodeError:
            form.add_error("file", "the file is not UTF-8 text; upload the candidates.csv that 'trialdesk screen' wrote")

        else:
            messages.success(request, f"{len(entries)} screening entr{'y' if len(entries) == 1 else 'ies'} added.")
            return redirect("screening_detail", number=entries[0].number) if len(entries) == 1 else redirect("screening_list")
    title = "Import pre-screen candidates (candidates.csv)" if kind == "candidates" else "Screen from a FHIR record"
    return render(request, "edc/form.html", {"form": form, "title": title, "multipart": True, "submit": "Import"})


@requires("view_identified")
def detail(request: HttpRequest, number: str) -> HttpResponse:
    entry = get_object_or_404(ScreeningEntry, number=number)
    signoff = EligibilitySignoff.objects.filter(screening=entry).first()
    sigs = signatures_of(signoff) if signoff else []
    from trialdesk.edc.participants.views import ConsentForm, EnrolForm

    return render(request, "edc/screening_detail.html", {
        "entry": entry, "signoff": signoff, "signatures": sigs, "signature": next((s for s in reversed(sigs) if s.valid), None),
        "discrepancies": service.record_discrepancies(entry), "consent": current_consent(entry),
        "participant": getattr(entry, "participant", None),
        "target_reached": Participant.objects.count() >= protocol().enrolment.target,
        "consent_form": ConsentForm(initial={"signed_at": timezone.localtime().replace(second=0, microsecond=0),
                                             "obtained_by": request.user.get_full_name()}),
        "enrol_form": EnrolForm(initial={"enrolled_on": today()}),
    })


class SignoffForm(forms.Form):
    def __init__(self, entry: ScreeningEntry, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        p = protocol()
        seen = set()
        for item in entry.snapshot.get("attestations", []):
            if item["id"] in seen:
                continue
            seen.add(item["id"])
            self.fields[f"answer_{item['id']}"] = forms.ChoiceField(
                label=f"{item['criterion_id']} — {item['question']}", choices=[("", "—"), ("yes", "Yes"), ("no", "No")],
                widget=forms.RadioSelect)
        texts = {c.id: c.text for c in p.eligibility.criteria}
        for cid in open_criteria(p, entry.snapshot):
            self.fields[f"decision_{cid}"] = forms.ChoiceField(
                label=f"{cid} — {texts.get(cid, '')}", choices=[("met", "Met"), ("not_met", "Not met")], widget=forms.RadioSelect)
        self.fields["note"] = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
        self.fields["printed_name"] = forms.CharField(label="Printed name", max_length=200)
        self.fields["password"] = forms.CharField(label="Password (re-enter to sign)", widget=forms.PasswordInput)


@requires("sign_eligibility")
def sign_off(request: HttpRequest, number: str) -> HttpResponse:
    entry = get_object_or_404(ScreeningEntry, number=number)
    form = SignoffForm(entry, request.POST or None, initial={"printed_name": request.user.get_full_name()})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        answers = {k.removeprefix("answer_"): v == "yes" for k, v in d.items() if k.startswith("answer_")}
        decisions = {k.removeprefix("decision_"): v for k, v in d.items() if k.startswith("decision_")}
        try:
            signoff = service.sign_off(request.user, entry, answers=answers, decisions=decisions, password=d["password"],
                                       printed_name=d["printed_name"], note=d["note"])
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, f"Eligibility signed: {signoff.overall.replace('_', ' ')}.")
            return redirect("screening_detail", number=number)
    return render(request, "edc/form.html", {
        "form": form, "title": f"Eligibility sign-off — {entry.number}", "submit": "Sign",
        "lead": f"Meaning of this signature: “{service.SIGN_MEANING}”. Answer every attestation and decide each criterion"
                " the data left open; your password re-entry is your signature (21 CFR 11.200).",
        "worksheet": entry.snapshot})


@requires("screen")
def edit_person(request: HttpRequest, number: str) -> HttpResponse:
    entry = get_object_or_404(ScreeningEntry, number=number)
    fields = ("given_name", "family_name", "mrn", "birth_date", "sex", "screened_on")
    form = EditPersonForm(request.POST or None, initial={**{f: getattr(entry, f) for f in fields}, "version": entry.version})
    current = None
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            trail.update(entry, request.user, changes={f: d[f] for f in fields}, reason=d["reason"], version=d["version"])
        except trail.StaleEdit as e:
            refuse(form, e)
            current = e.current
        except ConductError as e:
            refuse(form, e)
        else:
            messages.success(request, "Saved.")
            return redirect("screening_detail", number=number)
    return render(request, "edc/form.html", {"form": form, "title": f"Edit {entry.number}", "submit": "Save",
                                             "current": {f: getattr(current, f) for f in fields} if current else None,
                                             "lead": "An edit needs a reason; a change to signed data voids the signature."})


@requires("screen")
def rescreen(request: HttpRequest, number: str) -> HttpResponse:
    entry = get_object_or_404(ScreeningEntry, number=number)
    if request.method != "POST":
        return redirect("screening_detail", number=number)
    try:
        new = service.rescreen(request.user, entry, screened_on=today())
    except ConductError as e:
        messages.error(request, e.message)
        return redirect("screening_detail", number=number)
    messages.success(request, f"Re-screened as {new.number} (linked to {entry.number}).")
    return redirect("screening_detail", number=new.number)

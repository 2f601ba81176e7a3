from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

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


#: how the answer to a criterion reads: an inclusion is met or not; an exclusion excludes or does not (never "not met")
INCLUSION_CHOICES = {"met": "Met", "not_met": "Not met"}
EXCLUSION_CHOICES = {"met": "Excludes", "not_met": "Does not exclude"}


class SignoffForm(forms.Form):
    """One block per criterion, in the protocol's order and in its own words: what the data settled (read), or the
    investigator's answer (an exclusion as "Excludes / Does not exclude"), with the attestation questions a composite
    criterion holds beneath it. Field names stay ``answer_<attestation>`` and ``decision_<criterion>``."""

    def __init__(self, entry: ScreeningEntry, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        from trialdesk.criteria.language import Attestation

        p = protocol()
        to_decide = set(open_criteria(p, entry.snapshot))
        by_criterion: dict[str, list[dict[str, str]]] = {}
        seen: set[str] = set()
        for item in entry.snapshot.get("attestations", []):
            if item["id"] not in seen:
                seen.add(item["id"])
                by_criterion.setdefault(item["criterion_id"], []).append(item)
        self.blocks: list[dict[str, Any]] = []
        for row in entry.snapshot.get("criteria", []):
            cid = row["id"]
            try:
                c = p.eligibility.criterion(cid)
            except KeyError:
                continue
            choices = INCLUSION_CHOICES if c.is_inclusion else EXCLUSION_CHOICES
            decided = row["status"] in ("met", "not_met")
            lone = c.computable.id if isinstance(c.computable, Attestation) else None
            fields: list[str] = []
            if lone is not None and lone in seen and not decided:
                # the criterion is this one question: asked once, in the criterion's own words
                self.fields[f"answer_{lone}"] = forms.ChoiceField(
                    label=c.text, choices=[("yes", choices["met"]), ("no", choices["not_met"])], widget=forms.RadioSelect)
                fields.append(f"answer_{lone}")
            else:
                for item in by_criterion.get(cid, []):
                    self.fields[f"answer_{item['id']}"] = forms.ChoiceField(
                        label=item["question"], choices=[("yes", "Yes"), ("no", "No")], widget=forms.RadioSelect)
                    fields.append(f"answer_{item['id']}")
                if cid in to_decide:
                    self.fields[f"decision_{cid}"] = forms.ChoiceField(
                        label=f"Your decision on {cid}", choices=list(choices.items()), widget=forms.RadioSelect)
                    fields.append(f"decision_{cid}")
            self.blocks.append({"id": cid, "role": "Inclusion" if c.is_inclusion else "Exclusion", "text": c.text,
                                "settled": choices[row["status"]] if decided else "", "fields": fields})
        self.fields["note"] = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
        self.fields["printed_name"] = forms.CharField(label="Printed name", max_length=200)
        self.fields["password"] = forms.CharField(label="Password (re-enter to sign)", widget=forms.PasswordInput)

    def criterion_blocks(self) -> list[dict[str, Any]]:
        """The blocks with their bound fields, for the template."""
        return [b | {"bound": [self[name] for name in b["fields"]]} for b in self.blocks]


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
    return render(request, "edc/eligibility_signoff.html", {
        "form": form, "entry": entry, "blocks": form.criterion_blocks(), "meaning": service.SIGN_MEANING,
        "worksheet": entry.snapshot}, status=422 if form.errors else 200)


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

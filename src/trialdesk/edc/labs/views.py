from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from trialdesk.edc.labs import importing, service
from trialdesk.edc.labs.models import ReferenceRange
from trialdesk.edc.permissions import allowed
from trialdesk.edc.web import protocol, refuse, requires
from trialdesk.trial.errors import ConductError


class RangeForm(forms.Form):
    site = forms.ChoiceField(label="Site")
    laboratory = forms.CharField(label="Laboratory", max_length=120)
    analyte = forms.ChoiceField(label="Analyte")
    lower = forms.FloatField(label="Lower limit of normal", required=False)
    upper = forms.FloatField(label="Upper limit of normal", required=False)
    effective_from = forms.DateField(label="In force from (the laboratory's date)", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].choices = [(loc.facility, loc.facility) for loc in protocol().locations]  # type: ignore[attr-defined]
        self.fields["analyte"].choices = [("", "—")] + [  # type: ignore[attr-defined]
            (name, f"{f.label} ({f.unit})") for name, f in service.analytes().items()]


@requires("view_forms")
def ranges(request: HttpRequest) -> HttpResponse:
    """The laboratories' reference ranges, every version with the date it took effect; adding one is ``manage_lab_ranges``."""
    form = RangeForm(request.POST or None)
    if request.method == "POST":
        if not allowed(request.user, "manage_lab_ranges"):
            raise PermissionDenied("your role may not manage lab ranges")
        if form.is_valid():
            d = form.cleaned_data
            unit = service.analytes()[d["analyte"]].unit or ""
            try:
                service.add_range(request.user, site=d["site"], laboratory=d["laboratory"], analyte=d["analyte"], unit=unit,
                                  lower=d["lower"], upper=d["upper"], effective_from=d["effective_from"])
            except ConductError as e:
                refuse(form, e)
            else:
                messages.success(request, "Reference range saved.")
                return redirect("lab_ranges")
    labels = {name: f.label for name, f in service.analytes().items()}
    rows = [{"r": r, "label": labels.get(r.analyte, r.analyte)} for r in ReferenceRange.objects.select_related("entered_by")]
    return render(request, "edc/lab_ranges.html", {"rows": rows, "form": form, "title": "Laboratory reference ranges"},
                  status=422 if form.errors else 200)


class ImportForm(forms.Form):
    kind = forms.ChoiceField(label="File", choices=[("csv", "CSV in the documented layout"), ("fhir", "FHIR Bundle of Observations")])
    file = forms.FileField(label="File to import")
    laboratory = forms.CharField(label="Laboratory (when the file does not name it)", max_length=120, required=False)


#: the session key of the import being previewed (its text, never stored in the trial data until committed)
PENDING = "lab_import"
MAX_BYTES = 5_000_000


@requires("record_visit")
def lab_import(request: HttpRequest) -> HttpResponse:
    """Upload → preview (every row's fate; nothing stored) → store all of it or nothing."""
    form = ImportForm(request.POST or None, request.FILES or None)
    pending = request.session.get(PENDING)
    if request.method == "POST" and request.POST.get("action") == "commit":
        if not pending:
            messages.error(request, "There is no import to store; upload the file again.")
            return redirect("lab_import")
        try:
            rows = importing.rows_of(pending["kind"], pending["text"], pending["laboratory"])
            done = importing.commit(request.user, rows, pending["name"])
        except ConductError as e:
            messages.error(request, e.message)
            return redirect("lab_import")
        del request.session[PENDING]
        flagged = sum(r.flag in ("H", "L") for r in done.storing)
        messages.success(request, f"{len(done.storing)} results stored on {len(done.groups)} laboratory form(s)"
                                  f" ({flagged} outside the reference range).")
        return redirect("lab_import")
    if request.method == "POST" and request.POST.get("action") == "cancel":
        request.session.pop(PENDING, None)
        return redirect("lab_import")
    plan = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > MAX_BYTES:
                raise ConductError("file", f"the file is {upload.size:,} bytes; at most {MAX_BYTES:,} are read at once — split it")
            try:
                text = upload.read().decode("utf-8")
            except UnicodeDecodeError as e:
                raise ConductError("file", f"byte {e.start} is not UTF-8; save the file as UTF-8") from None
            kind, lab = form.cleaned_data["kind"], form.cleaned_data["laboratory"].strip()
            plan = importing.plan(importing.rows_of(kind, text, lab))
        except ConductError as e:
            refuse(form, e)
        else:
            request.session[PENDING] = {"kind": kind, "text": text, "laboratory": lab, "name": upload.name[:100]}
    elif pending and request.method == "GET":
        try:
            plan = importing.plan(importing.rows_of(pending["kind"], pending["text"], pending["laboratory"]))
        except ConductError:
            request.session.pop(PENDING, None)
    return render(request, "edc/lab_import.html", {
        "form": form, "plan": plan, "counts": importing.summary(plan.rows) if plan else None,
        "pending": request.session.get(PENDING), "title": "Laboratory import"}, status=422 if form.errors else 200)

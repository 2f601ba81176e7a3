"""Django forms built from the case report forms defined as data (the served protocol's forms.yaml).

Laboratory results also carry the reporting laboratory's reference range (lower and upper
limit, in the field's unit), which grading and eligibility (E8) read."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from trialdesk.protocol.forms import Form, FormCatalogue, FormField

RANGED_FORMS = ("laboratory",)


def catalogue() -> FormCatalogue:
    """The forms of the protocol the desk serves (its folder's forms.yaml, else the package's; parsed once per file state)."""
    from trialdesk.edc.web import forms as served_forms

    return served_forms()


def definition(form_id: str) -> Form:
    return catalogue().form(form_id)


def _label(f: FormField) -> str:
    return f"{f.label} ({f.unit})" if f.unit else f.label


def _field(f: FormField) -> forms.Field:
    common: dict[str, Any] = {"label": _label(f), "required": f.required}
    if f.type == "integer":
        return forms.IntegerField(min_value=f.min, max_value=f.max, **common)
    if f.type == "float":
        return forms.FloatField(min_value=f.min, max_value=f.max, **common)
    if f.type == "date":
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if f.type == "datetime":
        return forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), **common)
    if f.type == "choice":
        return forms.ChoiceField(choices=[("", "—")] + [(c.code, c.label) for c in f.choices], **common)
    if f.type == "yesno":
        return forms.TypedChoiceField(choices=[("", "—"), ("yes", "Yes"), ("no", "No")], coerce=lambda v: v == "yes",
                                      empty_value=None, **common)
    return forms.CharField(max_length=500, **common)


def crf_form(form_id: str, data: Any = None, initial: dict[str, Any] | None = None) -> forms.Form:
    definition_ = definition(form_id)
    form = forms.Form(data=data, initial=_to_initial(initial or {}))
    for f in definition_.fields:
        form.fields[f.name] = _field(f)
        if form_id in RANGED_FORMS and f.type in ("float", "integer"):
            form.fields[f"{f.name}_lln"] = forms.FloatField(label=f"{f.label}: lower limit of normal ({f.unit})",
                    required=False, min_value=0)
            form.fields[f"{f.name}_uln"] = forms.FloatField(label=f"{f.label}: upper limit of normal ({f.unit})",
                    required=False, min_value=0)
    return form


def _to_initial(saved: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in saved.items():
        out[k] = "yes" if v is True else "no" if v is False else v
    return out


def to_json(cleaned: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in cleaned.items():
        if v is None or v == "":
            continue
        out[k] = v.isoformat() if isinstance(v, dt.date | dt.datetime) else v
    return out


def range_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """A lower limit above the upper one is a transcription error."""
    out = []
    for k, v in data.items():
        if k.endswith("_lln"):
            upper = data.get(k[:-4] + "_uln")
            if upper is not None and v > upper:
                out.append((k, f"the lower limit {v} is above the upper limit {upper}"))
    return out

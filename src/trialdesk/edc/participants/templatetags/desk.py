"""How the desk shows a participant's dates: to a role that sees identified data, the site's calendar
date (and, for an instant, the site's time with its zone); to a de-identified role (DSMB, sponsor), the
study day only — day 0 is the participant's first infusion, as in the DSMB report — never a calendar
date or a time. ``{% when value participant %}`` in a template."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import dateformat, timezone

register = template.Library()


def first_infusion_date(participant: Any) -> dt.date | None:
    """The participant's day 0 (cached on the object for the page)."""
    if participant is None:
        return None
    if not hasattr(participant, "_day0"):
        first = participant.infusions.order_by("number").first()
        participant._day0 = first.date if first is not None else None
    return participant._day0  # type: ignore[no-any-return]


def study_day_text(value: dt.date | dt.datetime | None, participant: Any) -> str:
    if value is None:
        return "—"
    day = timezone.localtime(value).date() if isinstance(value, dt.datetime) else value
    day0 = first_infusion_date(participant)
    if day0 is None:
        return "before the first infusion"
    return f"day {(day - day0).days}"


def site_text(value: dt.date | dt.datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        return dateformat.format(timezone.localtime(value), "Y-m-d H:i T")
    return value.isoformat()


@register.simple_tag(takes_context=True)
def when(context: Any, value: dt.date | dt.datetime | None, participant: Any = None) -> str:
    """A participant's date as this reader may see it (see the module)."""
    if context.get("deidentified", True):
        return study_day_text(value, participant)
    return site_text(value)


#: codes whose plain words are not simply the code with spaces
_WORDS = {"met": "met", "not_met": "not met", "needs_review": "needs review", "not_eligible": "not eligible",
          "pause_enrolment_and_dosing": "pause enrolment and dosing", "due_soon": "due soon"}


@register.filter
def words(code: object) -> str:
    """A status code as a person reads it (``out_of_window`` -> "out of window"); never the raw code on a page."""
    text = str(code or "")
    return _WORDS.get(text, text.replace("_", " "))


@register.filter
def utc(value: dt.datetime | None) -> str:
    """An instant in true UTC, labelled so (the audit trail's clock)."""
    if value is None:
        return "—"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@register.simple_tag
def field_name(model_label: str, name: str) -> str:
    """A field of an audited record as a person names it (its verbose name), not the column's name."""
    from django.apps import apps
    from django.core.exceptions import FieldDoesNotExist

    try:
        field = apps.get_model(model_label)._meta.get_field(name)
    except (LookupError, ValueError, FieldDoesNotExist):  # a field since removed, or an unknown model: the name, in words
        return name.replace("_", " ")
    return str(getattr(field, "verbose_name", name)).replace("_", " ")


@register.simple_tag
def record_name(model_label: str) -> str:
    """An audited record's kind as a person names it (its verbose name), not the internal model name."""
    from django.apps import apps

    try:
        return str(apps.get_model(model_label)._meta.verbose_name)
    except (LookupError, ValueError):
        return model_label.rsplit(".", 1)[-1]


def _readable_json(text: str) -> str:
    """A stored JSON object or list (an eligibility decision's statuses, seriousness criteria) as words: "E1: not met;
    E2: met", never the raw codes; any other text as it is."""
    import json

    if text[:1] not in ("{", "["):
        return text
    try:
        data = json.loads(text)
    except ValueError:
        return text

    def one(v: object) -> str:
        return words(v) if isinstance(v, str) and v.isidentifier() and v.islower() else json.dumps(v, ensure_ascii=False) \
            if isinstance(v, dict | list) else str(v)

    if isinstance(data, dict):
        return "; ".join(f"{k}: {one(v)}" for k, v in data.items()) or "none"
    if isinstance(data, list):
        return ", ".join(one(v) for v in data) or "none"
    return text


@register.simple_tag
def field_value(model_label: str, name: str, value: object) -> str:
    """A value of an audited field as a person reads it: a coded choice by its label, a linked record (a user, a
    participant) by its name, not its id; empty as ∅; long text cut at 80 characters."""
    from django.apps import apps
    from django.core.exceptions import FieldDoesNotExist

    if value in (None, ""):
        return "∅"
    text = _readable_json(str(value))
    try:
        field = apps.get_model(model_label)._meta.get_field(name)
    except (LookupError, ValueError, FieldDoesNotExist):
        return text[:80]
    choices = dict((str(k), str(v)) for k, v in (getattr(field, "flatchoices", None) or []))
    if text in choices:
        return choices[text]
    if getattr(field, "is_relation", False) and getattr(field, "related_model", None) is not None:
        related = field.related_model._base_manager.filter(pk=text).first()  # type: ignore[union-attr]
        if related is not None:
            full = getattr(related, "get_full_name", None)
            return (full() if callable(full) and full() else str(related))[:80]
    if "_" in text and " " not in text and text.islower() and name in ("category", "source", "status", "outcome", "action"):
        return text.replace("_", " ")
    return text[:79] + "…" if len(text) > 80 else text


@register.simple_tag(takes_context=True)
def nav(context: Any, href: str, label: str) -> str:
    """A navigation link, marked as the current page (``aria-current``) when the page opened is it or below it."""
    from django.utils.html import format_html

    request = context.get("request")
    path = getattr(request, "path", "") or ""
    current = path == href if href == "/" else path.startswith(href)
    if current:
        return format_html('<a href="{}" aria-current="page">{}</a>', href, label)
    return format_html('<a href="{}">{}</a>', href, label)


@register.filter
def criterion_words(status: object, criterion_id: str) -> str:
    """A criterion's status as the investigator reads it: an inclusion is met or not met; an exclusion excludes or
    does not exclude (no double negative); a status the data left open in words."""
    from trialdesk.edc.web import protocol

    try:
        inclusion = protocol().eligibility.criterion(str(criterion_id)).is_inclusion
    except KeyError:
        return words(status)
    if status in ("met", "not_met") and not inclusion:
        return "excludes" if status == "met" else "does not exclude"
    return words(status)

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

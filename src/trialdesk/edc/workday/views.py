"""The visit calendar and the search."""

from __future__ import annotations

import datetime as dt
from itertools import groupby

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trialdesk.edc.web import requires, today
from trialdesk.edc.workday import service

#: the calendar's choices of how far ahead to look
SPANS = (1, 7, 28, 91)


@requires("view_forms")
def calendar(request: HttpRequest) -> HttpResponse:
    """Visits to do with their windows, by week: every visit whose window is open on some day of the span."""
    try:
        days = int(request.GET.get("days", "28"))
    except ValueError:
        days = 28
    days = days if days in SPANS else 28
    start = today()
    visits = service.visits_in_window(start, days)
    monday = start - dt.timedelta(days=start.weekday())

    def week_of(v: object) -> dt.date:
        first = max(v.earliest, start)  # type: ignore[attr-defined]
        return first - dt.timedelta(days=first.weekday())

    weeks = [(week, list(vs)) for week, vs in groupby(sorted(visits, key=lambda v: (week_of(v), v.target)), key=week_of)]
    return render(request, "edc/calendar.html", {"weeks": weeks, "days": days, "spans": SPANS, "count": len(visits),
                                                 "until": start + dt.timedelta(days=days - 1), "this_monday": monday})


@requires("view_participants")
def search(request: HttpRequest) -> HttpResponse:
    """By subject id; by name, MRN or screening number for the roles that see identified data."""
    q = request.GET.get("q", "")
    return render(request, "edc/search.html", {"q": q.strip()[:60], "hits": service.search(request.user, q)})

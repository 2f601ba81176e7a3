"""A participant's timeline as a server-rendered SVG: consent, enrolment, infusions, visits (window and
date done) and adverse events (onset to resolution, serious ones marked) on one axis of study days
(day 0 is the first infusion, as in the DSMB report). A reader who sees identified data gets the site's
calendar date of each mark in its tooltip; a de-identified reader gets study days only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils.html import escape

LANES = ("Consent and enrolment", "Infusions", "Visits", "Adverse events")
WIDTH, LEFT, RIGHT, ROW, TOP = 1000, 170, 20, 44, 34
COLOURS = {"consent": "#1f5f99", "infusion": "#6a3d9a", "visit": "#1d7a46", "window": "#cfe3d6", "missed": "#b42318",
           "ae": "#9a6700", "sae": "#b42318"}


@dataclass(frozen=True)
class Mark:
    lane: int
    start: int  # study day
    end: int  # study day (== start for a point)
    kind: str  # a key of COLOURS
    label: str  # what it is, in words (shown in the tooltip)
    href: str = ""
    when: str = ""  # the calendar dates, for readers who see them; '' otherwise


def study_day(d: dt.date, day0: dt.date) -> int:
    return (d - day0).days


def svg(marks: list[Mark], *, today_day: int | None, title: str) -> str:
    """The timeline (an accessible SVG: a title, one <title> per mark, lane names as text)."""
    days = [m.start for m in marks] + [m.end for m in marks] + ([today_day] if today_day is not None else [])
    lo, hi = (min(days), max(days)) if days else (0, 1)
    if hi == lo:
        hi = lo + 1
    span = hi - lo
    plot = WIDTH - LEFT - RIGHT

    def x(day: int) -> float:
        return round(LEFT + (day - lo) / span * plot, 1)

    height = TOP + ROW * len(LANES) + 30
    out = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
           f'aria-labelledby="timeline-title"><title id="timeline-title">{escape(title)}</title>']
    for i, lane in enumerate(LANES):
        y = TOP + ROW * i
        out.append(f'<text x="8" y="{y + 22}" font-size="13" fill="#1d2733">{escape(lane)}</text>'
                   f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y + 18}" y2="{y + 18}" stroke="#dfe4ea"/>')
    # the axis: study days, about ten ticks
    step = max(1, round(span / 10 / 7) * 7) if span > 20 else max(1, span // 5 or 1)
    first = lo - lo % step if lo % step else lo
    axis_y = TOP + ROW * len(LANES) + 4
    for d in range(first, hi + 1, step):
        if d < lo:
            continue
        out.append(f'<line x1="{x(d)}" x2="{x(d)}" y1="{TOP - 6}" y2="{axis_y}" stroke="#eef1f4"/>'
                   f'<text x="{x(d)}" y="{axis_y + 16}" font-size="11" fill="#4d5966" text-anchor="middle">day {d}</text>')
    if today_day is not None:
        out.append(f'<line x1="{x(today_day)}" x2="{x(today_day)}" y1="{TOP - 10}" y2="{axis_y}" stroke="#1d2733" '
                   f'stroke-dasharray="4 3"/><text x="{x(today_day)}" y="{TOP - 14}" font-size="11" fill="#1d2733" '
                   f'text-anchor="{"end" if x(today_day) > WIDTH - 80 else "middle"}">today (day {today_day})</text>')
    for m in marks:
        y = TOP + ROW * m.lane + 18
        tip = escape(m.label + (f" — {m.when}" if m.when else ""))
        colour = COLOURS[m.kind]
        if m.end > m.start:
            shape = (f'<rect x="{x(m.start)}" y="{y - 7}" width="{max(x(m.end) - x(m.start), 3)}" height="14" rx="3" '
                     f'fill="{colour}" fill-opacity="{0.45 if m.kind == "window" else 0.85}"><title>{tip}</title></rect>')
        else:
            shape = f'<circle cx="{x(m.start)}" cy="{y}" r="6" fill="{colour}"><title>{tip}</title></circle>'
        out.append(f'<a href="{escape(m.href)}">{shape}</a>' if m.href else shape)
    out.append("</svg>")
    return "".join(out)

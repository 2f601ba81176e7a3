"""The words a reader sees on a page: HTML text with tags dropped and white space folded."""

from __future__ import annotations

import re
from html.parser import HTMLParser


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return fold(" ".join(parser.parts))


def fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def expected_on_study_page(protocol) -> list[str]:  # type: ignore[no-untyped-def]
    """Everything the protocol file says that the study page must show, word for word."""
    p = protocol
    out = [p.identification.nct_id, p.identification.brief_title, p.description.brief_summary, p.sponsorship.lead_sponsor.name,
           *p.conditions, *(c.text for c in p.eligibility.criteria), *(a.label for a in p.arms), *(a.description for a in p.arms),
           *(i.name for i in p.interventions)]
    for o in p.outcomes.primary:
        out += [o.measure, o.time_frame, *([o.description] if o.description else [])]
    for loc in p.locations:
        out += [loc.facility, loc.city, loc.country, *([loc.contact_line] if loc.contact_line else [])]
    if p.description.plain_language_summary:
        out.append(p.description.plain_language_summary)
    return [fold(s) for s in out]

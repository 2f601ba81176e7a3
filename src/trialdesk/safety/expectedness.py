"""Expectedness against the reference safety information (21 CFR 312.32(a)), as a suggestion with its reason.

21 CFR 312.32(a): an adverse event or suspected adverse reaction is *unexpected* "if it is not listed
in the investigator brochure or is not listed at the specificity or severity that has been observed".
The protocol file holds the brochure's list (``safety.reference_safety_information``): a CTCAE term,
the highest grade listed, and optionally a setting (within so many hours of an infusion).

The assessment itself is the sponsor-investigator's call, recorded on the AE with who made it
(``AdverseEvent.expected`` and ``expectedness_assessed_by``); it is never pre-filled.
:func:`suggest_expectedness` gives what the list says, with the reason, for that person to confirm or
overrule (with a reason, audited by the trial desk).

Readings:

- The term is compared case-insensitively with the CTCAE term of the entry; a term not listed is
  unexpected (the list names no other specificity, e.g. "Thromboembolic event" is not "Hypoxia").
- A grade above ``highest_expected_grade`` is unexpected (more severe than listed).
- *Within H hours of an infusion*: AE onsets are calendar dates, so an onset counts as within the
  setting when its date lies from the date of an infusion up to the site date of that infusion's start
  plus H hours (the start of the infusion day when the start time was not recorded). With H = 24 an
  onset on the infusion day or the day after is within; two days after is not. An onset before any
  infusion is outside every setting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from trialdesk.protocol.model import Protocol, ReferenceSafetyEntry
from trialdesk.safety.site_time import site_zone
from trialdesk.trial.records import AdverseEvent, Infusion

__all__ = ["ExpectednessSuggestion", "listed_entry", "suggest_expectedness", "within_hours_of_infusion"]


@dataclass(frozen=True)
class ExpectednessSuggestion:
    """What the reference safety information says of an event: ``expected`` and why."""

    ae_id: str
    expected: bool
    reason: str
    entry: ReferenceSafetyEntry | None  # the listed entry of the term, when there is one

    @property
    def label(self) -> str:
        return "expected" if self.expected else "unexpected"


def _start(infusion: Infusion, tz: ZoneInfo) -> dt.datetime:
    if infusion.started_at is not None and infusion.started_at.tzinfo is not None:
        return infusion.started_at.astimezone(tz)
    return dt.datetime.combine(infusion.date, dt.time.min, tzinfo=tz)


def within_hours_of_infusion(onset: dt.date, infusions: Sequence[Infusion], hours: int, tz: ZoneInfo) -> Infusion | None:
    """The latest infusion whose setting (its date to its start + ``hours``, site dates) holds ``onset``; None if none."""
    for infusion in sorted(infusions, key=lambda i: (i.date, i.number), reverse=True):
        last_day = (_start(infusion, tz) + dt.timedelta(hours=hours)).date()
        if infusion.date <= onset <= last_day:
            return infusion
    return None


def listed_entry(term: str, protocol: Protocol) -> ReferenceSafetyEntry | None:
    wanted = term.strip().casefold()
    return next((e for e in protocol.safety.reference_safety_information if e.term.strip().casefold() == wanted), None)


def suggest_expectedness(ae: AdverseEvent, infusions: Sequence[Infusion], protocol: Protocol,
                         tz: ZoneInfo | None = None) -> ExpectednessSuggestion:
    """What the protocol's reference safety information says of ``ae`` (``infusions``: the participant's, any order)."""
    tz = tz or site_zone(protocol)
    entry = listed_entry(ae.term, protocol)
    if entry is None:
        return ExpectednessSuggestion(ae.id, False, f"{ae.term!r} is not listed in the reference safety information"
                                                    " (21 CFR 312.32(a): not listed, so unexpected)", None)
    if ae.grade > entry.highest_expected_grade:
        return ExpectednessSuggestion(
            ae.id, False, f"{entry.term} is listed up to grade {entry.highest_expected_grade}; grade {ae.grade} is more severe than"
                          f" listed (21 CFR 312.32(a): not listed at the severity observed). Source: {entry.citation}", entry)
    if entry.within_hours_of_infusion is not None:
        own = [i for i in infusions if i.subject_id == ae.subject_id]
        hit = within_hours_of_infusion(ae.onset, own, entry.within_hours_of_infusion, tz)
        if hit is None:
            before = [i for i in own if i.date <= ae.onset]
            where = (f"onset {ae.onset} is {(ae.onset - before[-1].date).days} day(s) after infusion {before[-1].number}"
                     if before else f"onset {ae.onset} is before any infusion")
            return ExpectednessSuggestion(
                ae.id, False, f"{entry.term} is listed only within {entry.within_hours_of_infusion} h of an infusion; {where}"
                              f" (21 CFR 312.32(a): not listed at the specificity observed). Source: {entry.citation}", entry)
        setting = f" within {entry.within_hours_of_infusion} h of an infusion (infusion {hit.number} on {hit.date})"
    else:
        setting = ""
    return ExpectednessSuggestion(ae.id, True, f"{entry.term} is listed up to grade {entry.highest_expected_grade}{setting};"
                                               f" grade {ae.grade} is within it. Source: {entry.citation}", entry)

"""Which infusion an adverse event belongs to, for counting the primary outcome.

A reading for the analyses only (the safety package keeps its own for the live trial; the lead
reconciles the two): an event belongs to the most recent infusion given on or before its onset,
so an event that starts on an infusion day belongs to that day's infusion. It is counted when
its onset is at most ``window_days`` (the primary outcome's time frame, 183 days) after the
participant's first infusion; an event before the first infusion is pre-treatment and is not
counted, nor is one later than the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trialdesk.trial.records import AdverseEvent, Infusion, TrialData

Exclusion = Literal["before_first_infusion", "after_window", "not_infused"]


@dataclass(frozen=True)
class Attributed:
    event: AdverseEvent
    infusion: Infusion | None
    day: int | None  # days from the first infusion (the schedule's day 0)
    excluded: Exclusion | None = None

    @property
    def counted(self) -> bool:
        return self.excluded is None


def attribute(data: TrialData, window_days: int) -> list[Attributed]:
    """Every adverse event of the cut with its infusion, or why it is not counted."""
    out: list[Attributed] = []
    for ae in sorted(data.adverse_events, key=lambda a: (a.subject_id, a.onset, a.id)):
        infusions = sorted(data.infusions_of(ae.subject_id), key=lambda i: (i.date, i.number))
        if not infusions:
            out.append(Attributed(ae, None, None, "not_infused"))
            continue
        day = (ae.onset - infusions[0].date).days
        given = [i for i in infusions if i.date <= ae.onset]
        if not given:
            out.append(Attributed(ae, None, day, "before_first_infusion"))
        elif day > window_days:
            out.append(Attributed(ae, given[-1], day, "after_window"))
        else:
            out.append(Attributed(ae, given[-1], day))
    return out


def counted(data: TrialData, window_days: int) -> list[Attributed]:
    return [a for a in attribute(data, window_days) if a.counted]

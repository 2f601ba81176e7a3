"""Which infusion an adverse event belongs to, for counting the primary outcome.

The attribution itself is the safety package's (one reading for the live trial and the
report): an event belongs to the most recent infusion given on or before its onset,
so an event that starts on an infusion day belongs to that day's infusion. It is counted when
its onset is at most ``window_days`` (the primary outcome's time frame, 183 days) after the
participant's first infusion; an event before the first infusion is pre-treatment and is not
counted, nor is one later than the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from trialdesk.safety.attribution import attribute as attribute_event
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
        a = attribute_event(ae, data.infusions, window_days)
        if a.first_infusion is None:
            out.append(Attributed(ae, None, None, "not_infused"))
        elif a.pre_treatment:
            out.append(Attributed(ae, None, a.study_day, "before_first_infusion"))
        elif not a.within_follow_up:
            out.append(Attributed(ae, a.infusion, a.study_day, "after_window"))
        else:
            out.append(Attributed(ae, a.infusion, a.study_day))
    return out


def counted(data: TrialData, window_days: int) -> list[Attributed]:
    return [a for a in attribute(data, window_days) if a.counted]

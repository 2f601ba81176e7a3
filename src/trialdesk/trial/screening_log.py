"""Counting the screening log: one definition for every table that says how many were screened.

CONSORT's first box counts people *assessed for eligibility*. A screening entry counts as screened
once it carries a screening decision: the investigator's signed decision (eligible or screen failed),
an exclusion the data already decided (the engine found a criterion that excludes), enrolment, or
withdrawal before enrolment. An entry still waiting for the investigator's eligibility sign-off has
no decision yet; it is counted apart, as pending, and never in "screened" — otherwise the DSMB and
the results tables would count people nobody has assessed.

Used by the DSMB report's enrolment table (:mod:`trialdesk.safety.dsmb_report`) and the participant
flow (:mod:`trialdesk.analysis.participant_flow`), so both always agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from trialdesk.trial.records import ScreeningEntry

#: outcomes that are a screening decision; "pending" (awaiting sign-off) is the only one that is not
DECIDED = frozenset({"eligible", "screen_failed", "enrolled", "withdrew_before_enrolment"})


@dataclass(frozen=True)
class ScreeningTally:
    screened: int  # entries with a screening decision
    screen_failed: int
    eligible_not_enrolled: int  # signed eligible, not (yet) enrolled
    withdrew_before_enrolment: int
    enrolled: int
    pending_signoff: int  # no decision yet: not counted as screened


def tally(entries: Iterable[ScreeningEntry]) -> ScreeningTally:
    outcomes = Counter(e.outcome for e in entries)
    return ScreeningTally(screened=sum(n for o, n in outcomes.items() if o in DECIDED), screen_failed=outcomes["screen_failed"],
                          eligible_not_enrolled=outcomes["eligible"], withdrew_before_enrolment=outcomes["withdrew_before_enrolment"],
                          enrolled=outcomes["enrolled"], pending_signoff=outcomes["pending"])

"""A pause of the trial by a safety (stopping) rule or by the DSMB, in force until the DSMB lifts it.

A DSMB decision to stop the trial (rule id :data:`DSMB_RULE_ID`, action ``stop_trial``) is final: no
later decision lifts it (:func:`check_lift` refuses), so enrolment and dosing stay refused for good.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from trialdesk.trial.errors import ConductError

PauseAction = Literal["pause_enrolment_and_dosing", "pause_dosing", "stop_trial"]
#: the rule id of a pause (or stop) the DSMB decided itself, not a protocol stopping rule
DSMB_RULE_ID = "DSMB"


@dataclass(frozen=True)
class Pause:
    rule_id: str
    action: PauseAction
    since: dt.date
    description: str = ""

    @property
    def stops_enrolment(self) -> bool:
        return self.action in ("pause_enrolment_and_dosing", "stop_trial")

    @property
    def stops_dosing(self) -> bool:
        # every action stops dosing: a pause of enrolment alone would still let the new dose go in
        return True

    @property
    def final(self) -> bool:
        """The DSMB's own decision to stop is never lifted (a protocol rule's stop action waits for the DSMB's review)."""
        return self.rule_id == DSMB_RULE_ID and self.action == "stop_trial"

    def sentence(self) -> str:
        what = {"pause_enrolment_and_dosing": "enrolment and dosing are paused", "pause_dosing": "dosing is paused",
                "stop_trial": "the trial is stopped"}[self.action]
        dsmb = self.rule_id == DSMB_RULE_ID
        by = f"by the DSMB's decision of {self.since}" if dsmb else f"by stopping rule {self.rule_id} since {self.since}"
        return f"{what} {by}" + (f" ({self.description})" if self.description else "")

    def until(self) -> str:
        """What ends it, for a refusal."""
        return "for good (a DSMB stop is final)" if self.final else "until the DSMB lifts the pause"


def check_lift(pause: Pause) -> None:
    """The DSMB's stop cannot be lifted; any other pause can (by the DSMB)."""
    if pause.final:
        raise ConductError("lift", f"{pause.sentence()}; a DSMB decision to stop the trial is final and cannot be lifted")


def first_stopping_enrolment(pauses: Iterable[Pause]) -> Pause | None:
    return next((p for p in pauses if p.stops_enrolment), None)


def first_stopping_dosing(pauses: Iterable[Pause]) -> Pause | None:
    return next((p for p in pauses if p.stops_dosing), None)

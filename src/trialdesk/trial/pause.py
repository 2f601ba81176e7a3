"""A pause of the trial by a safety (stopping) rule, in force until the DSMB lifts it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

PauseAction = Literal["pause_enrolment_and_dosing", "pause_dosing", "stop_trial"]


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

    def sentence(self) -> str:
        what = {"pause_enrolment_and_dosing": "enrolment and dosing are paused", "pause_dosing": "dosing is paused",
                "stop_trial": "the trial is stopped"}[self.action]
        return f"{what} by stopping rule {self.rule_id} since {self.since}" + (f" ({self.description})" if self.description else "")


def first_stopping_enrolment(pauses: Iterable[Pause]) -> Pause | None:
    return next((p for p in pauses if p.stops_enrolment), None)


def first_stopping_dosing(pauses: Iterable[Pause]) -> Pause | None:
    return next((p for p in pauses if p.stops_dosing), None)

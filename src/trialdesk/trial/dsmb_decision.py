"""A DSMB decision after reviewing a safety report, and what it does to the trial.

The DSMB member records one of four decisions, with the rationale, the data cut-off of the report
reviewed and the date decided (the EDC adds the e-signature):

- ``continue``: every pause in force is lifted (each lifted stopping-rule pause counts as the DSMB's
  decision to resume that rule, :mod:`trialdesk.safety.stopping_rules`).
- ``continue_with_modifications``: as ``continue``, and the modifications must be written down.
- ``pause``: enrolment and dosing pause under the DSMB's own rule id (:data:`~trialdesk.trial.pause.DSMB_RULE_ID`)
  until a later ``continue``.
- ``stop``: the trial stops for good. The stop is a :class:`~trialdesk.trial.pause.Pause` with action
  ``stop_trial`` that is never lifted, so the enrolment and dosing checks refuse from then on, and no
  further decision can be recorded (a stopped trial is not restarted by a form; it needs a new protocol).

Readings: a decision is dated on or before today and on or after the cut-off of the report it
reviewed (one cannot review data not yet cut); the rationale is required for every decision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from trialdesk.trial.errors import ConductError
from trialdesk.trial.pause import DSMB_RULE_ID, Pause, PauseAction

DecisionKind = Literal["continue", "continue_with_modifications", "pause", "stop"]
DECISIONS: dict[DecisionKind, str] = {
    "continue": "Continue the trial unchanged",
    "continue_with_modifications": "Continue with modifications",
    "pause": "Pause enrolment and dosing",
    "stop": "Stop the trial",
}


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    decided_on: dt.date
    report_cutoff: dt.date
    rationale: str
    modifications: str = ""
    signed_by: str = ""  # the e-signature's manifestation, once signed


@dataclass(frozen=True)
class Consequence:
    """What the decision does: the pauses to lift and the pause (or stop) to add."""

    lift: tuple[Pause, ...] = ()
    add: Pause | None = None


def stopped(pauses: Sequence[Pause]) -> Pause | None:
    """The DSMB's stop, if the trial is stopped."""
    return next((p for p in pauses if p.final), None)


def check_decision(decision: Decision, *, pauses: Sequence[Pause], today: dt.date) -> None:
    """Refuse with a :class:`ConductError` naming the field, or return."""
    stop = stopped(pauses)
    if stop is not None:
        raise ConductError("kind", f"{stop.sentence()}; a stop is final and no further decision can be recorded")
    if decision.kind not in DECISIONS:
        raise ConductError("kind", f"{decision.kind!r} is not a DSMB decision; choose one of: {', '.join(DECISIONS)}")
    if not decision.rationale.strip():
        raise ConductError("rationale", "write the rationale for the decision (what the DSMB reviewed and why it decided so)")
    if decision.kind == "continue_with_modifications" and not decision.modifications.strip():
        raise ConductError("modifications", "list the modifications the DSMB requires")
    if decision.decided_on > today:
        raise ConductError("decided_on", f"a decision cannot be dated in the future ({decision.decided_on})")
    if decision.report_cutoff > decision.decided_on:
        raise ConductError("report_cutoff", f"the report reviewed (data cut-off {decision.report_cutoff}) is after the decision"
                                            f" ({decision.decided_on}); give the cut-off of the report the DSMB reviewed")


def consequences(decision: Decision, pauses: Sequence[Pause]) -> Consequence:
    """What the (checked) decision does to the pauses in force."""
    reason = decision.rationale.strip()
    if decision.kind in ("continue", "continue_with_modifications"):
        return Consequence(lift=tuple(pauses))
    action: PauseAction = "stop_trial" if decision.kind == "stop" else "pause_enrolment_and_dosing"
    return Consequence(add=Pause(DSMB_RULE_ID, action, decision.decided_on, reason))


__all__ = ["DECISIONS", "Consequence", "Decision", "DecisionKind", "check_decision", "consequences", "stopped"]

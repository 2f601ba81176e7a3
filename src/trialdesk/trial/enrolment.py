"""May this person be enrolled, and under which subject id.

Enrolment needs an investigator-signed eligibility decision of *eligible* and a consent
signed on or before the enrolment date. The protocol's target is a hard cap; a stagger
rule keeps any two participants' first infusions at least ``stagger_days`` apart; and nobody
is enrolled while a stopping rule pauses enrolment.

The stagger of an infusion given is checked against the first infusions other participants were
actually given, never against plans (the first of two scheduled participants is not refused because
of the second's plan); a first infusion planned at enrolment is checked against both the infusions
given and the other participants' plans (those not yet infused), so the schedule is feasible.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from trialdesk.protocol.model import Protocol
from trialdesk.trial.consent import Consent, require_consent
from trialdesk.trial.errors import ConductError
from trialdesk.trial.pause import Pause, first_stopping_enrolment


@dataclass(frozen=True)
class Candidate:
    """A screened person asking to be enrolled."""

    screening_id: str
    eligibility_signed: bool
    eligibility: str  # the signed overall decision: eligible, not_eligible, needs_review
    consent: Consent | None
    enrolled_on: dt.date
    planned_first_infusion: dt.date | None = None


@dataclass(frozen=True)
class Enrolled:
    """Someone already enrolled, as the rules need to see them."""

    subject_id: str
    screening_id: str
    first_infusion: dt.date | None = None  #: the first infusion given
    planned_first_infusion: dt.date | None = None  #: the plan made at enrolment (read only while none was given)


def subject_prefix(protocol: Protocol) -> str:
    """A protocol may set ``enrolment.subject_id_prefix`` (e.g. 'MSC-'); none by default."""
    return str(getattr(protocol.enrolment, "subject_id_prefix", "") or "")


def subject_id(protocol: Protocol, n: int) -> str:
    """The n-th subject id: 001, 002, ... (wide enough for the target), after the prefix."""
    width = max(3, len(str(protocol.enrolment.target)))
    return f"{subject_prefix(protocol)}{n:0{width}d}"


def next_subject_id(protocol: Protocol, enrolled: Sequence[Enrolled]) -> str:
    """Ids are assigned in sequence and never reused (a withdrawn participant keeps theirs)."""
    taken = {e.subject_id for e in enrolled}
    n = len(enrolled) + 1
    while subject_id(protocol, n) in taken:
        n += 1
    return subject_id(protocol, n)


def _firsts(others: Sequence[Enrolled], *, with_plans: bool) -> list[tuple[dt.date, str, bool]]:
    """(date, subject id, planned) of the other participants' first infusions (given; and planned, when asked)."""
    out = [(o.first_infusion, o.subject_id, False) for o in others if o.first_infusion is not None]
    if with_plans:
        out += [(o.planned_first_infusion, o.subject_id, True) for o in others
                if o.first_infusion is None and o.planned_first_infusion is not None]
    return out


def earliest_first_infusion(protocol: Protocol, enrolled: Sequence[Enrolled], *, with_plans: bool = False) -> dt.date | None:
    """The stagger rule: no first infusion sooner than ``stagger_days`` after the latest one given (or planned)."""
    days = protocol.enrolment.stagger_days
    firsts = [d for d, _, _ in _firsts(enrolled, with_plans=with_plans)]
    if days == 0 or not firsts:
        return None
    return max(firsts) + dt.timedelta(days=days)


def check_stagger(protocol: Protocol, first_infusion: dt.date, others: Sequence[Enrolled], *, field: str,
                  with_plans: bool = False) -> None:
    """Refuse a first infusion less than ``stagger_days`` from another participant's first infusion given (and, with
    ``with_plans``, planned), before or after it."""
    days = protocol.enrolment.stagger_days
    if days == 0:
        return
    close = [(abs((first_infusion - d).days), d, sid, planned) for d, sid, planned in _firsts(others, with_plans=with_plans)
             if abs((first_infusion - d).days) < days]
    if not close:
        return
    _, d, sid, planned = min(close)
    what = f"{sid}'s first infusion is planned for {d}" if planned else f"{sid}'s first infusion was given on {d}"
    if d <= first_infusion:
        advice = f"so this one may be no sooner than {d + dt.timedelta(days=days)}; choose a date on or after it"
    else:
        advice = f"so this one must be on or before {d - dt.timedelta(days=days)}"
    raise ConductError(field, f"the protocol staggers participants' first infusions by {days} days: {what}, {advice}")


def check_enrolment(protocol: Protocol, candidate: Candidate, enrolled: Sequence[Enrolled], *,
                    pauses: Sequence[Pause] = (), today: dt.date) -> str:
    """Refuse with a :class:`ConductError` or return the subject id to assign."""
    pause = first_stopping_enrolment(pauses)
    if pause is not None:
        raise ConductError("enrolment", f"{pause.sentence()}; no one may be enrolled {pause.until()}")
    target = protocol.enrolment.target
    if len(enrolled) >= target:
        raise ConductError("enrolment", f"the protocol's enrolment target of {target} participants is reached"
                                        f" ({len(enrolled)} enrolled); a further participant needs a protocol amendment")
    if any(e.screening_id == candidate.screening_id for e in enrolled):
        raise ConductError("screening_id", f"screening {candidate.screening_id} is already enrolled")
    if not candidate.eligibility_signed:
        raise ConductError("eligibility", "an investigator must review and sign the eligibility worksheet before enrolment")
    if candidate.eligibility != "eligible":
        raise ConductError("eligibility", f"the signed eligibility decision is {candidate.eligibility!r}, not 'eligible';"
                                          " only an eligible person may be enrolled (re-screen if circumstances changed)")
    if candidate.enrolled_on > today:
        raise ConductError("enrolled_on", f"enrolment cannot be dated in the future ({candidate.enrolled_on}); use today or earlier")
    require_consent(candidate.consent, candidate.enrolled_on, procedure="enrolment", field="enrolled_on")
    if candidate.planned_first_infusion is not None:
        if candidate.planned_first_infusion < candidate.enrolled_on:
            raise ConductError("planned_first_infusion", "the first infusion cannot be planned before enrolment; correct the date")
        check_stagger(protocol, candidate.planned_first_infusion, enrolled, field="planned_first_infusion", with_plans=True)
    return next_subject_id(protocol, enrolled)

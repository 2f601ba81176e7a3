"""May this infusion be given (or recorded) as entered.

The dose per kilogram is computed here, never typed: total cells / weight, checked
against the protocol's dose range. The infusion number follows the infusion plan, and
each infusion after the first falls ``interval_days`` ± ``window_days`` after the one
before it. A first infusion also obeys the enrolment stagger rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from trialdesk.protocol.model import Protocol
from trialdesk.trial.consent import Consent, require_consent
from trialdesk.trial.death import check_alive
from trialdesk.trial.dose import PER_KG_IN_MILLIONS
from trialdesk.trial.dose import dose_text as in_unit
from trialdesk.trial.enrolment import Enrolled, check_stagger
from trialdesk.trial.errors import ConductError
from trialdesk.trial.pause import Pause, first_stopping_dosing

#: physiological range for an adult's body weight; outside it the entry is a typo or a unit slip
WEIGHT_KG = (20.0, 250.0)
#: doses are compared at this relative precision so that 1.0 × 10⁶/kg is inside a range ending at 1.0 × 10⁶
_REL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class DosingParticipant:
    subject_id: str
    status: str  # enrolled, on_study, completed, withdrawn, off_study
    enrolled_on: dt.date
    consent: Consent | None
    previous: Sequence[tuple[int, dt.date]] = ()  # (number, date) of infusions already given
    died_on: dt.date | None = None  # trialdesk.trial.death.died_on: the date of death, or a grade 5 AE's onset


@dataclass(frozen=True)
class InfusionEntry:
    number: int
    date: dt.date
    weight_kg: float
    total_cells: float


def dose_per_kg(total_cells: float, weight_kg: float) -> float:
    return total_cells / weight_kg


def _fmt_million(x: float) -> str:
    return f"{x / 1e6:.2f} × 10⁶"


def weight_text(weight_kg: float) -> str:
    """A body weight as every page shows it: to 0.1 kg ('59.3 kg', never '59.300000000000004 kg')."""
    return f"{weight_kg:.1f} kg"


def dose_text(dose_per_kg: float) -> str:
    """A dose per kilogram in cells/kg, shown in millions: '0.75 × 10^6 cells/kg' (pages show a protocol's dose
    its own way with :func:`trialdesk.trial.dose.infusion_dose_text`)."""
    return in_unit(PER_KG_IN_MILLIONS, dose_per_kg / PER_KG_IN_MILLIONS.per_unit)


def plain_weight(weight_kg: float) -> float:
    """The weight without binary floating-point noise (59.300000000000004 -> 59.3), for a form to show and take back."""
    return float(f"{weight_kg:.12g}")


def check_weight(weight_kg: float) -> None:
    low, high = WEIGHT_KG
    if not low <= weight_kg <= high:
        raise ConductError("weight_kg", f"{weight_kg:g} kg is outside the physiological range {low:g}–{high:g} kg;"
                                        " check the entry is in kilograms")


def check_dose(protocol: Protocol, entry: InfusionEntry) -> float:
    """The dose per kg, refused unless inside the protocol's range."""
    if entry.total_cells <= 0:
        raise ConductError("total_cells", "give the total number of cells infused (a positive number, e.g. 70000000)")
    check_weight(entry.weight_kg)
    dose = dose_per_kg(entry.total_cells, entry.weight_kg)
    spec = protocol.study_intervention.dosing
    if spec is not None:  # the dose as data (per kg, per m² or total; levels or range): trialdesk.trial.dose
        from trialdesk.trial.dose import check as check_as_protocol_states

        check_as_protocol_states(spec, entry.total_cells, weight_kg=entry.weight_kg)
    rng = protocol.study_intervention.dose
    if rng is not None:
        low, high = rng.min * (1 - _REL_TOLERANCE), rng.max * (1 + _REL_TOLERANCE)
        if not low <= dose <= high:
            side = "below" if dose < low else "above"
            cells_low, cells_high = rng.min * entry.weight_kg, rng.max * entry.weight_kg
            raise ConductError("total_cells", f"dose {_fmt_million(dose)} {rng.unit} is {side} the protocol's range"
                                              f" {_fmt_million(rng.min)}–{_fmt_million(rng.max)} {rng.unit}; at {entry.weight_kg:g} kg"
                                              f" the total must be {cells_low:,.0f}–{cells_high:,.0f} cells")
    return dose


def check_number_and_interval(protocol: Protocol, entry: InfusionEntry, previous: Sequence[tuple[int, dt.date]]) -> None:
    plan = protocol.infusion_plan
    count = plan.count if plan else 1
    given = sorted(previous)
    if entry.number in {n for n, _ in given}:
        raise ConductError("number", f"infusion {entry.number} is already recorded; edit that record instead")
    if not 1 <= entry.number <= count:
        raise ConductError("number", f"the protocol gives {count} infusion(s); infusion {entry.number} is not in the plan")
    expected = len(given) + 1
    if entry.number != expected:
        raise ConductError("number", f"infusions are given in order: the next for this participant is infusion {expected}")
    if given:
        _, last = given[-1]
        if entry.date <= last:
            raise ConductError("date", f"infusion {entry.number} ({entry.date}) must come after infusion {given[-1][0]} ({last})")
        if plan is not None:
            gap = (entry.date - last).days
            low, high = plan.interval_days - plan.window_days, plan.interval_days + plan.window_days
            if not low <= gap <= high:
                raise ConductError("date", f"infusion {entry.number} is {gap} days after the previous one; the protocol allows"
                                           f" {plan.interval_days} ± {plan.window_days} days ({last + dt.timedelta(days=low)}"
                                           f" to {last + dt.timedelta(days=high)})")


def check_infusion(protocol: Protocol, participant: DosingParticipant, entry: InfusionEntry, *,
                   others: Sequence[Enrolled] = (), pauses: Sequence[Pause] = (), today: dt.date) -> float:
    """Refuse with a :class:`ConductError` or return the dose per kg to record.

    ``others`` are the other enrolled participants with their first infusion dates (for
    the stagger rule); ``pauses`` the stopping-rule pauses in force.
    """
    check_alive(participant.subject_id, participant.died_on, entry.date, procedure="infusion")
    if participant.status not in ("enrolled", "on_study"):
        raise ConductError("participant", f"{participant.subject_id} is {participant.status.replace('_', ' ')};"
                                          " only an enrolled participant on study may be infused")
    pause = first_stopping_dosing(pauses)
    if pause is not None:
        raise ConductError("participant", f"{pause.sentence()}; no infusion may be given {pause.until()}")
    if entry.date > today:
        raise ConductError("date", f"an infusion cannot be recorded in the future ({entry.date}); record it on the day it is given")
    require_consent(participant.consent, entry.date, procedure="infusion")
    if entry.date < participant.enrolled_on:
        raise ConductError("date", f"the infusion ({entry.date}) is before enrolment ({participant.enrolled_on}); correct the date")
    check_number_and_interval(protocol, entry, participant.previous)
    if entry.number == 1:
        check_stagger(protocol, entry.date, [o for o in others if o.subject_id != participant.subject_id], field="date")
    return check_dose(protocol, entry)

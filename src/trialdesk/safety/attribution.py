"""Which infusion an adverse event follows, at which dose, and whether it falls in follow-up.

Readings:

- An AE belongs to the most recent infusion on or before its onset date. An onset on the day of
  an infusion belongs to that infusion: AE dates are calendar dates and an event on a dosing day
  is, in a first-in-disease study, presumed to follow the dose.
- An onset before the participant's first infusion belongs to no infusion: it is pre-treatment
  (baseline) and never counts against the product.
- The dose of the infusion is its own dose in the protocol's unit and basis (per kg, per m² or total). A *dose
  group* gathers doses for tables (:func:`dose_group`): the protocol's dose level the dose matches, when it lists
  levels; for a range, the dose rounded to the protocol's ``group_step`` (e.g. 0.1 × 10⁶ cells/kg for a range
  stated as 0.5–1.0 × 10⁶ cells/kg), half up in decimal (0.65 is the 0.7 group) after the dose is taken to 6
  decimals so that floating-point noise (0.649 999 999 9) cannot move it; without a step, each dose as shown
  is its own group. Every table and plot (the DSMB report, the primary outcome) uses :func:`dose_group`.
- The follow-up window is ``safety.ae_follow_up_days`` from the first infusion, both ends
  included (e.g. day 0 to day 183 for a 183-day follow-up).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from trialdesk.protocol.model import Dose, Protocol
from trialdesk.trial.dose import PER_KG_IN_MILLIONS, dose_text, infusion_dose_text, number_text, shown_unit
from trialdesk.trial.dose import amount as dose_amount
from trialdesk.trial.dose import check as dose_check
from trialdesk.trial.errors import ConductError
from trialdesk.trial.records import AdverseEvent, Infusion, TrialData

__all__ = ["Attribution", "DoseGroup", "attribute", "attribute_all", "dose_group", "dose_level"]


def dose_level(dose: float, step: float) -> float:
    """The group a dose falls in: ``dose`` rounded half up to the nearest ``step`` (both in the protocol's unit)."""
    units = (Decimal(f"{dose:.6f}") / Decimal(f"{step:.6f}")).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return float(units * Decimal(f"{step:.6f}"))


def _decimals(step: float) -> int:
    """How many decimals a group's key shows: as many as the step has (0.1 -> 1, 0.25 -> 2, 5 -> 0)."""
    return max(0, -Decimal(f"{step:.6f}").normalize().as_tuple().exponent)  # type: ignore[operator]


@dataclass(frozen=True, order=True)
class DoseGroup:
    """A dose group for tables: its sort key, its key in files ('DL2', '0.7') and its label ('DL2 (100 × 10⁶ cells)',
    '0.7 × 10⁶ cells/kg')."""

    order: float
    key: str
    label: str


def dose_group(spec: Dose | None, infusion: Infusion) -> DoseGroup:
    """An infusion's dose group (see the module docstring); ``spec`` is the protocol's dose (None: per kg, in 10⁶ cells)."""
    shown = spec or PER_KG_IN_MILLIONS
    value = dose_amount(shown, infusion.total_cells, weight_kg=infusion.weight_kg)
    if shown.levels:
        try:
            level = dose_check(shown, infusion.total_cells, weight_kg=infusion.weight_kg).level
        except ConductError:
            level = None
        if level is not None:
            return DoseGroup(float(shown.levels.index(level)), level.id, f"{level.id} ({level.label or dose_text(shown, level.amount)})")
        return DoseGroup(float(len(shown.levels)) + value, number_text(value), f"{dose_text(shown, value)} (no dose level)")
    if shown.group_step is not None:
        grouped = dose_level(value, shown.group_step)
        key = f"{grouped:.{_decimals(shown.group_step)}f}"
        return DoseGroup(grouped, key, f"{key} {shown_unit(shown.unit)}")
    return DoseGroup(value, number_text(value), dose_text(shown, value))


def grouping_text(spec: Dose | None) -> str:
    """How doses are grouped, for a table's note: 'The protocol's dose levels', 'Dose per kg rounded to 0.1 × 10⁶ cells/kg'."""
    shown = spec or PER_KG_IN_MILLIONS
    if shown.levels:
        return "The protocol's dose levels"
    basis = {"per_kg": "Dose per kg", "per_m2": "Dose per m²", "total": "Total dose"}[shown.basis]
    if shown.group_step is not None:
        return f"{basis} rounded to {shown.group_step:g} {shown_unit(shown.unit)}"
    return f"{basis} as given"


@dataclass(frozen=True)
class Attribution:
    """An AE's place in the participant's treatment."""

    ae_id: str
    subject_id: str
    onset: dt.date
    infusion: Infusion | None  # None: onset before the first infusion (pre-treatment)
    first_infusion: Infusion | None
    study_day: int | None  # days from the first infusion (day 0); None without any infusion
    follow_up_days: int
    dose_spec: Dose | None = None  # the protocol's dose, for showing the infusion's dose its way

    @property
    def pre_treatment(self) -> bool:
        return self.infusion is None

    @property
    def infusion_number(self) -> int | None:
        return self.infusion.number if self.infusion is not None else None

    @property
    def dose_group(self) -> DoseGroup | None:
        return dose_group(self.dose_spec, self.infusion) if self.infusion is not None else None

    @property
    def days_after_infusion(self) -> int | None:
        return (self.onset - self.infusion.date).days if self.infusion is not None else None

    @property
    def within_follow_up(self) -> bool:
        """Onset from day 0 to day ``ae_follow_up_days`` after the first infusion (both included)."""
        return self.study_day is not None and 0 <= self.study_day <= self.follow_up_days

    @property
    def treatment_emergent(self) -> bool:
        return not self.pre_treatment and self.within_follow_up

    def sentence(self) -> str:
        """For a page: 'infusion 2 (0.75 × 10⁶ cells/kg), 3 days after it', or why there is none."""
        if self.infusion is None:
            return "before the first infusion (pre-treatment)"
        days = self.days_after_infusion
        when = "on the day of it" if days == 0 else f"{days} day{'s' if days != 1 else ''} after it"
        tail = "" if self.within_follow_up else f" (study day {self.study_day}: after the {self.follow_up_days}-day follow-up)"
        dose = infusion_dose_text(self.dose_spec, self.infusion.total_cells, self.infusion.weight_kg)
        return f"infusion {self.infusion.number} ({dose}), {when}{tail}"


def attribute(ae: AdverseEvent, infusions: list[Infusion], follow_up_days: int, dose_spec: Dose | None = None) -> Attribution:
    """Attribute ``ae`` among the participant's ``infusions`` (any order)."""
    own = sorted((i for i in infusions if i.subject_id == ae.subject_id), key=lambda i: (i.date, i.number))
    first = own[0] if own else None
    before = [i for i in own if i.date <= ae.onset]
    return Attribution(
        ae_id=ae.id,
        subject_id=ae.subject_id,
        onset=ae.onset,
        infusion=before[-1] if before else None,
        first_infusion=first,
        study_day=(ae.onset - first.date).days if first is not None else None,
        follow_up_days=follow_up_days,
        dose_spec=dose_spec,
    )


def attribute_all(data: TrialData, protocol: Protocol) -> Mapping[str, Attribution]:
    """Every AE of the data cut, by AE id."""
    spec = protocol.study_intervention.dose_spec
    return {ae.id: attribute(ae, data.infusions, protocol.safety.ae_follow_up_days, spec) for ae in data.adverse_events}

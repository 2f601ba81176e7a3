"""Which infusion an adverse event follows, at which dose, and whether it falls in follow-up.

Readings (the registry's primary outcome counts "adverse events reported with infusion of each
IV MSC dose"):

- An AE belongs to the most recent infusion on or before its onset date. An onset on the day of
  an infusion belongs to that infusion: AE dates are calendar dates and an event on a dosing day
  is, in a first-in-disease study, presumed to follow the dose.
- An onset before the participant's first infusion belongs to no infusion: it is pre-treatment
  (baseline) and never counts against the product.
- The dose of the infusion is its own dose per kilogram (total cells / weight). A *dose level*
  groups doses for tables: the dose rounded to ``DOSE_LEVEL_STEP`` cells/kg (0.1 × 10⁶), since the
  protocol gives a range (0.5–1.0 × 10⁶ cells/kg), not fixed levels. Rounding is half up in decimal
  (0.65 × 10⁶ is the 0.7 level), after the dose is taken to 6 decimals so that floating-point noise
  (649 999.999 999 9) cannot move it; every table and plot (the DSMB report, the primary outcome) uses
  :func:`dose_level` and :func:`dose_level_key` and nothing else.
- The follow-up window is ``safety.ae_follow_up_days`` from the first infusion, both ends
  included (day 0 to day 183 for NCT03929120).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from trialdesk.protocol.model import Dose, Protocol
from trialdesk.trial.dose import infusion_dose_text
from trialdesk.trial.records import AdverseEvent, Infusion, TrialData

__all__ = ["DOSE_LEVEL_STEP", "Attribution", "attribute", "attribute_all", "dose_level", "dose_level_key", "dose_level_label"]

#: doses are grouped to this step (cells/kg) to form dose levels
DOSE_LEVEL_STEP = 100_000.0


def dose_level(dose_per_kg: float, step: float = DOSE_LEVEL_STEP) -> float:
    """The dose level a dose falls in: the dose rounded half up to the nearest ``step`` cells/kg."""
    units = (Decimal(f"{dose_per_kg:.6f}") / Decimal(f"{step:.6f}")).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return float(units * Decimal(f"{step:.6f}"))


def dose_level_key(level: float) -> str:
    """The level in 10⁶ cells/kg as tables key it: ``"0.5"``, ``"0.7"``, ``"1.0"``."""
    return f"{Decimal(f'{level:.6f}') / Decimal(1_000_000):.1f}"


def dose_level_label(level: float) -> str:
    return f"{dose_level_key(level)} × 10⁶ cells/kg"


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
    def dose_per_kg(self) -> float | None:
        return self.infusion.dose_per_kg if self.infusion is not None else None

    @property
    def dose_level(self) -> float | None:
        return dose_level(self.infusion.dose_per_kg) if self.infusion is not None else None

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

"""A dose as the protocol states it: per kilogram, per square metre or total; a list of levels
or a range; in the protocol's own unit.

The amount is computed from what was measured (the cell count of the product, the weight or
body surface area), never typed, and compared with the protocol's levels or range. A refusal
names the field and says which doses are allowed, in the protocol's unit.
"""

from __future__ import annotations

from dataclasses import dataclass

from trialdesk.protocol.model import Dose, DoseLevel
from trialdesk.trial.errors import ConductError

#: doses are compared at this relative precision, so 1.0 × 10⁶/kg is inside a range ending at 1.0 × 10⁶
_REL_PRECISION = 1e-9
_BASIS_TEXT = {"per_kg": "per kg of body weight", "per_m2": "per m² of body surface area", "total": "in total"}


@dataclass(frozen=True)
class CheckedDose:
    """A dose that passed: the amount in the protocol's unit and basis, and its level (levels only)."""

    amount: float
    level: DoseLevel | None
    text: str


def amount(spec: Dose, items: float, weight_kg: float | None = None, bsa_m2: float | None = None) -> float:
    """The dose of ``items`` (cells) in the protocol's unit and basis."""
    if items <= 0:
        raise ConductError("total_cells", f"the product's count must be positive; got {items:g}")
    in_unit = items / spec.per_unit
    if spec.basis == "total":
        return in_unit
    if spec.basis == "per_kg":
        if weight_kg is None or weight_kg <= 0:
            raise ConductError("weight_kg", "the dose is per kg of body weight; record the weight (kg) measured before the infusion")
        return in_unit / weight_kg
    if bsa_m2 is None or bsa_m2 <= 0:
        raise ConductError("bsa_m2", "the dose is per m² of body surface area; record the body surface area (m²)")
    return in_unit / bsa_m2


def format_amount(spec: Dose, value: float) -> str:
    """``value`` the protocol's way: its number and its unit, exactly as the protocol writes it."""
    return f"{value:,.4g} {spec.unit}"


def allowed_text(spec: Dose) -> str:
    """The doses the protocol allows, in its words."""
    if spec.levels:
        levels = ", ".join(f"{lv.id} {lv.amount:,.4g}" for lv in spec.levels)
        tol = f" (±{spec.tolerance:.0%})" if spec.tolerance else ""
        return f"dose levels {levels} {spec.unit}{tol} {_BASIS_TEXT[spec.basis]}"
    return f"{spec.min:,.4g}–{spec.max:,.4g} {spec.unit} {_BASIS_TEXT[spec.basis]}"


def check(spec: Dose, items: float, weight_kg: float | None = None, bsa_m2: float | None = None,
          level_id: str | None = None) -> CheckedDose:
    """Refuse a dose outside the protocol's levels or range. With ``level_id`` (the cohort's
    level) the dose must be that level, within the protocol's tolerance."""
    value = amount(spec, items, weight_kg, bsa_m2)
    shown = format_amount(spec, value)
    if not spec.levels:
        assert spec.min is not None and spec.max is not None  # the model guarantees a range when there are no levels
        if value < spec.min * (1 - _REL_PRECISION) or value > spec.max * (1 + _REL_PRECISION):
            raise ConductError("total_cells", f"{shown} {_BASIS_TEXT[spec.basis]} is outside the protocol's {allowed_text(spec)};"
                                              " check the count and the unit")
        return CheckedDose(value, None, shown)
    candidates = spec.levels if level_id is None else [lv for lv in spec.levels if lv.id == level_id]
    if not candidates:
        raise ConductError("dose_level", f"{level_id!r} is not a dose level of this protocol; allowed: {allowed_text(spec)}")
    for lv in candidates:
        slack = lv.amount * (spec.tolerance + _REL_PRECISION)
        if abs(value - lv.amount) <= slack:
            return CheckedDose(value, lv, f"{shown} ({lv.id})")
    which = f"level {level_id} ({candidates[0].amount:,.4g} {spec.unit})" if level_id else allowed_text(spec)
    raise ConductError("total_cells", f"{shown} {_BASIS_TEXT[spec.basis]} is not {which}"
                                      f"{'' if level_id is None else f'; allowed: {allowed_text(spec)}'}; check the count and the unit")

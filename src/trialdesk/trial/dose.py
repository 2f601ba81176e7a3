"""A dose as the protocol states it: per kilogram, per square metre or total; a list of levels
or a range; in the protocol's own unit.

The amount is computed from what was measured (the cell count of the product, the weight or
body surface area), never typed, and compared with the protocol's levels or range. A refusal
names the field and says which doses are allowed, in the protocol's unit.
"""

from __future__ import annotations

import re
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


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def shown_unit(unit: str) -> str:
    """A unit as a person reads it: the protocol's ``× 10^6 cells/kg`` as ``× 10⁶ cells/kg`` (files keep the ASCII)."""
    return re.sub(r"\b10\^(-?\d+)", lambda m: "10" + m.group(1).translate(_SUPERSCRIPT), unit)


def plain_unit(unit: str) -> str:
    """A unit for files (SDTM, CSV): powers of ten in ASCII ('× 10⁶ cells' as '× 10^6 cells')."""
    return re.sub(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)", lambda m: "10^" + m.group(1).translate(_PLAIN), unit)


_PLAIN = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def format_amount(spec: Dose, value: float) -> str:
    """``value`` the protocol's way: its number and its unit as the protocol writes it (powers of ten raised)."""
    return f"{value:,.4g} {shown_unit(spec.unit)}"


def number_text(value: float) -> str:
    """A dose's number as a page shows it: two decimals below 10 ('0.75', '1.00'), else up to one ('20', '20.4', '1,200')."""
    if value < 10:
        return f"{value:.2f}"
    return f"{value:,.1f}".removesuffix(".0")


def dose_text(spec: Dose, value: float, *, plain: bool = False) -> str:
    """A dose in the protocol's unit as every page and report shows it: '0.75 × 10⁶ cells/kg', '20 × 10⁶ cells'
    (``plain``: the unit exactly as written, '20 × 10^6 cells', for files such as SDTM)."""
    return f"{number_text(value)} {plain_unit(spec.unit) if plain else shown_unit(spec.unit)}"


#: how a dose is shown when the protocol states none (the package's first reading: per kg, in millions of cells)
PER_KG_IN_MILLIONS = Dose(basis="per_kg", unit="× 10^6 cells/kg", per_unit=1e6, min=1e-9, max=1e12,
                          reason="shown per kg in millions of cells when the protocol states no dose")


def infusion_dose_text(spec: Dose | None, total_cells: float, weight_kg: float | None = None, bsa_m2: float | None = None) -> str:
    """The dose of an infusion as the protocol states doses (per kg, per m² or total), from what was measured."""
    shown = spec or PER_KG_IN_MILLIONS
    return dose_text(shown, amount(shown, total_cells, weight_kg, bsa_m2))


def allowed_text(spec: Dose) -> str:
    """The doses the protocol allows, in its words."""
    if spec.levels:
        levels = ", ".join(f"{lv.id} {lv.amount:,.4g}" for lv in spec.levels)
        tol = f" (±{spec.tolerance:.0%})" if spec.tolerance else ""
        return f"dose levels {levels} {shown_unit(spec.unit)}{tol}{_basis(spec)}"
    return f"{spec.min:,.4g}–{spec.max:,.4g} {shown_unit(spec.unit)}{_basis(spec)}"


def _basis(spec: Dose) -> str:
    """' per kg of body weight', unless the unit already says so ('cells/kg')."""
    said: tuple[str, ...] = {"per_kg": ("/kg",), "per_m2": ("/m2", "/m²"), "total": ()}[spec.basis]
    return "" if said and spec.unit.replace(" ", "").endswith(said) else f" {_BASIS_TEXT[spec.basis]}"


def check(spec: Dose, items: float, weight_kg: float | None = None, bsa_m2: float | None = None,
          level_id: str | None = None) -> CheckedDose:
    """Refuse a dose outside the protocol's levels or range. With ``level_id`` (the cohort's
    level) the dose must be that level, within the protocol's tolerance."""
    value = amount(spec, items, weight_kg, bsa_m2)
    shown = format_amount(spec, value)
    if not spec.levels:
        assert spec.min is not None and spec.max is not None  # the model guarantees a range when there are no levels
        if value < spec.min * (1 - _REL_PRECISION) or value > spec.max * (1 + _REL_PRECISION):
            raise ConductError("total_cells", f"{shown}{_basis(spec)} is outside the protocol's {allowed_text(spec)};"
                                              " check the count and the unit")
        return CheckedDose(value, None, shown)
    candidates = spec.levels if level_id is None else [lv for lv in spec.levels if lv.id == level_id]
    if not candidates:
        raise ConductError("dose_level", f"{level_id!r} is not a dose level of this protocol; allowed: {allowed_text(spec)}")
    for lv in candidates:
        slack = lv.amount * (spec.tolerance + _REL_PRECISION)
        if abs(value - lv.amount) <= slack:
            return CheckedDose(value, lv, f"{shown} ({lv.id})")
    which = f"level {level_id} ({candidates[0].amount:,.4g} {shown_unit(spec.unit)})" if level_id else allowed_text(spec)
    raise ConductError("total_cells", f"{shown}{_basis(spec)} is not {which}"
                                      f"{'' if level_id is None else f'; allowed: {allowed_text(spec)}'}; check the count and the unit")

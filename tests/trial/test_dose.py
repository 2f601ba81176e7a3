"""The dose as the protocol states it: a total dose in levels (AETHER), a per-kg range (NCT03929120), per m²."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trialdesk.protocol.loader import load
from trialdesk.protocol.model import Dose, Intervention
from trialdesk.trial.dose import allowed_text, check, infusion_dose_text
from trialdesk.trial.errors import ConductError


@pytest.fixture(scope="module")
def aether() -> Dose:
    spec = load("nct02013700").study_intervention.dose_spec
    assert spec is not None
    return spec


def test_a_total_dose_is_the_cell_count_whatever_the_weight(aether: Dose) -> None:
    light, heavy = check(aether, 100e6, weight_kg=50), check(aether, 100e6, weight_kg=120)
    assert light.level is not None and light.level.id == "DL2"
    assert light.amount == heavy.amount == 100
    assert light.text == "100 × 10⁶ cells (DL2)"


def test_a_dose_between_levels_is_refused_naming_the_field_and_the_levels(aether: Dose) -> None:
    with pytest.raises(ConductError) as err:
        check(aether, 150e6)
    assert err.value.field == "total_cells"
    assert "DL1 20, DL2 100, DL3 200 × 10⁶ cells (±10%) in total" in err.value.message


def test_the_release_tolerance_is_inclusive_at_its_edge_and_no_further(aether: Dose) -> None:
    assert check(aether, 22e6).level.id == "DL1"  # type: ignore[union-attr]
    assert check(aether, 18e6).level.id == "DL1"  # type: ignore[union-attr]
    for outside in (22.1e6, 17.9e6):
        with pytest.raises(ConductError):
            check(aether, outside)


def test_the_cohorts_level_must_be_the_one_given(aether: Dose) -> None:
    assert check(aether, 20e6, level_id="DL1").level.id == "DL1"  # type: ignore[union-attr]
    with pytest.raises(ConductError) as err:
        check(aether, 100e6, level_id="DL1")
    assert "is not level DL1 (20 × 10⁶ cells)" in err.value.message
    with pytest.raises(ConductError) as unknown:
        check(aether, 20e6, level_id="DL9")
    assert unknown.value.field == "dose_level"


def test_the_first_trials_per_kg_range_still_reads_as_per_kg() -> None:
    spec = load("nct03929120").study_intervention.dose_spec
    assert spec is not None and spec.basis == "per_kg"
    assert spec.unit == "× 10^6 cells/kg"  # a range in cells/kg is shown in millions, as the protocol writes it
    assert check(spec, 35e6, weight_kg=70).amount == pytest.approx(0.5)   # the range's lower edge
    assert check(spec, 70e6, weight_kg=70).amount == pytest.approx(1.0)   # and its upper edge
    with pytest.raises(ConductError, match=r"outside the protocol's 0\.5–1 × 10⁶ cells/kg;"):
        check(spec, 71e6, weight_kg=70)
    with pytest.raises(ConductError) as no_weight:
        check(spec, 35e6)
    assert no_weight.value.field == "weight_kg"


def test_a_per_square_metre_dose_needs_the_body_surface_area() -> None:
    spec = Dose(basis="per_m2", unit="× 10⁶ cells/m²", per_unit=1e6, min=50, max=100)
    assert check(spec, 170e6, bsa_m2=1.7).amount == pytest.approx(100)
    with pytest.raises(ConductError) as err:
        check(spec, 170e6)
    assert err.value.field == "bsa_m2"
    assert allowed_text(spec) == "50–100 × 10⁶ cells/m²"  # the unit says the basis; not said twice


@pytest.mark.parametrize("bad, message", [
    ({"levels": [{"id": "A", "amount": 1}], "min": 1, "max": 2}, "either levels"),
    ({}, "either levels"),
    ({"levels": [{"id": "A", "amount": 2}, {"id": "B", "amount": 1}]}, "lowest to highest"),
    ({"levels": [{"id": "A", "amount": 1}, {"id": "A", "amount": 2}]}, "appears twice"),
    ({"min": 2, "max": 1}, "swap them"),
])
def test_a_dose_that_cannot_be_read_one_way_is_refused(bad: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Dose.model_validate({"basis": "total", "unit": "cells", **bad})


def test_an_intervention_gives_its_dose_once() -> None:
    with pytest.raises(ValidationError, match="give the dose once"):
        Intervention.model_validate({"type": "BIOLOGICAL", "name": "x", "dose": {"min": 1, "max": 2},
                                     "dosing": {"basis": "total", "unit": "cells", "min": 1, "max": 2}})


def test_the_desks_dose_check_refuses_a_total_dose_between_aethers_levels() -> None:
    import datetime as dt

    from trialdesk.trial.dosing import InfusionEntry, check_dose

    protocol = load("nct02013700")
    check_dose(protocol, InfusionEntry(1, dt.date(2014, 1, 6), 80, 100e6))
    with pytest.raises(ConductError, match="150 × 10⁶ cells in total is not dose levels DL1 20"):
        check_dose(protocol, InfusionEntry(1, dt.date(2014, 1, 6), 80, 150e6))


def test_an_infusion_dose_reads_as_the_protocol_states_doses() -> None:
    first = load("nct03929120").study_intervention.dose_spec
    aether = load("nct02013700").study_intervention.dose_spec
    assert infusion_dose_text(first, 44_475_000, weight_kg=59.300000000000004) == "0.75 × 10⁶ cells/kg"
    assert infusion_dose_text(first, 70e6, weight_kg=70) == "1.00 × 10⁶ cells/kg"
    assert infusion_dose_text(aether, 20e6, weight_kg=80) == "20 × 10⁶ cells"  # a total dose: the weight does not divide it
    assert infusion_dose_text(aether, 20.4e6, weight_kg=60) == "20.4 × 10⁶ cells"
    assert infusion_dose_text(aether, 1_200e6) == "1,200 × 10⁶ cells"
    assert infusion_dose_text(None, 40e6, weight_kg=80) == "0.50 × 10⁶ cells/kg"  # no dose in the protocol: per kg

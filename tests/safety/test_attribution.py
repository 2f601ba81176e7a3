"""An AE belongs to the latest infusion on or before its onset, at that infusion's dose."""

from __future__ import annotations

import pytest

from tests.safety.fixtures import trial_data
from trialdesk.safety.attribution import attribute_all, dose_group, dose_level


@pytest.fixture(scope="module")
def attributions(protocol):  # type: ignore[no-untyped-def]
    return attribute_all(trial_data(), protocol)


def test_reaction_on_the_day_of_the_first_infusion_belongs_to_it(attributions) -> None:  # type: ignore[no-untyped-def]
    a1 = attributions["A1"]
    assert a1.dose_group is not None and a1.dose_group.label == "0.5 × 10⁶ cells/kg"
    assert (a1.infusion_number, a1.study_day, a1.days_after_infusion) == (1, 0, 0)
    assert a1.treatment_emergent


def test_fever_on_the_day_of_the_second_infusion_belongs_to_the_second_at_its_dose(attributions) -> None:  # type: ignore[no-untyped-def]
    a3 = attributions["A3"]
    assert (a3.infusion_number, a3.infusion and a3.infusion.dose_per_kg, a3.study_day) == (2, pytest.approx(1_000_000), 28)


def test_headache_five_days_after_infusion_1_belongs_to_infusion_1(attributions) -> None:  # type: ignore[no-untyped-def]
    assert (attributions["A2"].infusion_number, attributions["A2"].days_after_infusion) == (1, 5)


def test_nausea_before_the_first_infusion_is_pre_treatment(attributions) -> None:  # type: ignore[no-untyped-def]
    a4 = attributions["A4"]
    assert a4.pre_treatment and a4.infusion is None and a4.dose_group is None
    assert a4.study_day == -5 and not a4.within_follow_up and not a4.treatment_emergent


def test_fatigue_on_day_223_is_outside_the_183_day_follow_up(attributions) -> None:  # type: ignore[no-untyped-def]
    a8 = attributions["A8"]
    assert a8.study_day == 223 and a8.infusion_number == 2 and not a8.within_follow_up


def test_day_183_is_the_last_day_of_follow_up(protocol) -> None:  # type: ignore[no-untyped-def]
    from tests.safety.fixtures import ADVERSE_EVENTS, ae

    last = ae("L", "001", "Fatigue", 1, "2020-07-21")  # 2020-01-20 + 183 days
    after = ae("M", "001", "Fatigue", 1, "2020-07-22")
    att = attribute_all(trial_data(adverse_events=[*ADVERSE_EVENTS, last, after]), protocol)
    assert (att["L"].study_day, att["L"].within_follow_up) == (183, True)
    assert (att["M"].study_day, att["M"].within_follow_up) == (184, False)


def test_dose_groups_round_to_the_protocols_step(protocol) -> None:  # type: ignore[no-untyped-def]
    from tests.safety.fixtures import infusion

    assert dose_level(733_333.3, 100_000) == 700_000
    spec = protocol.study_intervention.dose_spec
    assert spec.group_step == 0.1  # the protocol's own step: 0.1 × 10⁶ cells/kg
    assert dose_group(spec, infusion("001", 1, "2020-01-20", 1.049)).label == "1.0 × 10⁶ cells/kg"
    coarser = spec.model_copy(update={"group_step": 0.25})
    assert dose_group(coarser, infusion("001", 1, "2020-01-20", 0.63)).label == "0.75 × 10⁶ cells/kg"
    unstepped = spec.model_copy(update={"group_step": None})
    assert dose_group(unstepped, infusion("001", 1, "2020-01-20", 0.63)).label == "0.63 × 10⁶ cells/kg"  # each dose as shown


def test_the_attribution_reads_as_infusion_dose_and_days_after() -> None:
    import datetime as dt

    from tests.safety.fixtures import ADVERSE_EVENTS, INFUSIONS
    from trialdesk.safety.attribution import attribute

    by_id = {a.id: a for a in ADVERSE_EVENTS}
    assert attribute(by_id["A1"], INFUSIONS, 183).sentence() == "infusion 1 (0.50 × 10⁶ cells/kg), on the day of it"
    assert attribute(by_id["A5"], INFUSIONS, 183).sentence() == "infusion 2 (0.50 × 10⁶ cells/kg), 11 days after it"
    assert attribute(by_id["A4"], INFUSIONS, 183).sentence() == "before the first infusion (pre-treatment)"
    late = attribute(by_id["A8"], INFUSIONS, 183).sentence()
    assert late.startswith("infusion 2 (1.00 × 10⁶ cells/kg), 195 days after it") and "after the 183-day follow-up" in late
    assert dt.date(2020, 8, 30) - dt.date(2020, 2, 17) == dt.timedelta(days=195)


def test_a_group_step_is_for_a_range_not_for_dose_levels() -> None:
    from pydantic import ValidationError

    from trialdesk.protocol.model import Dose

    assert Dose(basis="total", unit="× 10^6 cells", per_unit=1e6, min=10, max=200, group_step=10).group_step == 10
    with pytest.raises(ValidationError, match="dose levels are their own groups: remove group_step"):
        Dose(basis="total", unit="× 10^6 cells", per_unit=1e6, levels=[{"id": "DL1", "amount": 20}], group_step=10)  # type: ignore[list-item]

from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.trial.consent import Consent
from trialdesk.trial.dosing import DosingParticipant, InfusionEntry, check_infusion
from trialdesk.trial.enrolment import Enrolled
from trialdesk.trial.errors import ConductError
from trialdesk.trial.pause import Pause

TODAY = dt.date(2020, 8, 1)
CONSENT = Consent("1.0", dt.datetime(2020, 5, 1, 10, tzinfo=dt.UTC), "C. Coordinator", True, site_zone=dt.UTC)


def person(**kw: object) -> DosingParticipant:
    base: dict[str, object] = {"subject_id": "001", "status": "on_study", "enrolled_on": dt.date(2020, 5, 10), "consent": CONSENT}
    base.update(kw)
    return DosingParticipant(**base)  # type: ignore[arg-type]


def entry(**kw: object) -> InfusionEntry:
    base: dict[str, object] = {"number": 1, "date": dt.date(2020, 5, 15), "weight_kg": 70.0, "total_cells": 52_500_000.0}
    base.update(kw)
    return InfusionEntry(**base)  # type: ignore[arg-type]


def check(protocol, p: DosingParticipant | None = None, e: InfusionEntry | None = None, **kw: object) -> float:  # type: ignore[no-untyped-def]
    return check_infusion(protocol, p or person(), e or entry(), today=TODAY, **kw)  # type: ignore[arg-type]


def refusal(protocol, p: DosingParticipant | None = None, e: InfusionEntry | None = None, **kw: object) -> ConductError:  # type: ignore[no-untyped-def]
    with pytest.raises(ConductError) as info:
        check(protocol, p, e, **kw)
    return info.value


def test_dose_per_kg_is_total_cells_over_weight(protocol) -> None:  # type: ignore[no-untyped-def]
    assert check(protocol) == pytest.approx(750_000)


def test_dose_below_half_a_million_cells_per_kg_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    err = refusal(protocol, e=entry(total_cells=0.49e6 * 70))
    assert err.field == "total_cells" and "below" in err.message and "35,000,000" in err.message


def test_dose_of_exactly_half_a_million_cells_per_kg_is_accepted(protocol) -> None:  # type: ignore[no-untyped-def]
    assert check(protocol, e=entry(total_cells=0.5e6 * 70)) == pytest.approx(0.5e6)


def test_dose_of_one_million_cells_per_kg_is_accepted(protocol) -> None:  # type: ignore[no-untyped-def]
    assert check(protocol, e=entry(total_cells=1.0e6 * 73.3, weight_kg=73.3)) == pytest.approx(1e6)


def test_dose_above_one_million_cells_per_kg_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    err = refusal(protocol, e=entry(total_cells=1.01e6 * 70))
    assert err.field == "total_cells" and "above" in err.message


@pytest.mark.parametrize("kg", [19.9, 250.5, 0.07])
def test_weight_outside_the_physiological_range_is_refused(protocol, kg: float) -> None:  # type: ignore[no-untyped-def]
    err = refusal(protocol, e=entry(weight_kg=kg, total_cells=0.75e6 * kg))
    assert err.field == "weight_kg" and "kilograms" in err.message


def test_infusion_for_someone_withdrawn_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    err = refusal(protocol, p=person(status="withdrawn"))
    assert err.field == "participant" and "withdrawn" in err.message


def test_infusion_for_someone_off_study_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    assert "off study" in refusal(protocol, p=person(status="off_study")).message


def test_infusion_while_dosing_is_paused_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    err = refusal(protocol, pauses=[Pause("S3", "pause_dosing", dt.date(2020, 5, 1))])
    assert "S3" in err.message and "DSMB" in err.message


def test_infusion_after_consent_withdrawal_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    c = Consent("1.0", CONSENT.signed_at, "C", True, withdrawn_at=dt.datetime(2020, 5, 14, tzinfo=dt.UTC), withdrawal_reason="x",
                site_zone=dt.UTC)
    assert "withdrawn" in refusal(protocol, p=person(consent=c)).message


def test_infusion_before_consent_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    err = refusal(protocol, e=entry(date=dt.date(2020, 4, 30)))
    assert err.field == "date" and "before consent" in err.message


def test_infusion_before_enrolment_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    err = refusal(protocol, e=entry(date=dt.date(2020, 5, 9)))
    assert err.field == "date" and "before enrolment" in err.message


def test_infusion_dated_in_the_future_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    assert "future" in refusal(protocol, e=entry(date=dt.date(2020, 8, 2))).message


def test_third_infusion_is_refused_when_the_protocol_gives_two(protocol) -> None:  # type: ignore[no-untyped-def]
    p = person(previous=[(1, dt.date(2020, 5, 15)), (2, dt.date(2020, 6, 12))])
    err = refusal(protocol, p=p, e=entry(number=3, date=dt.date(2020, 7, 10)))
    assert err.field == "number" and "2 infusion" in err.message


def test_second_infusion_before_the_first_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    err = refusal(protocol, e=entry(number=2))
    assert err.field == "number" and "infusion 1" in err.message


def test_second_infusion_28_days_later_is_accepted(protocol) -> None:  # type: ignore[no-untyped-def]
    p = person(previous=[(1, dt.date(2020, 5, 15))])
    assert check(protocol, p=p, e=entry(number=2, date=dt.date(2020, 6, 12))) == pytest.approx(750_000)


@pytest.mark.parametrize(("days", "ok"), [(24, False), (25, True), (31, True), (32, False)])
def test_second_infusion_interval_is_28_plus_or_minus_3_days(protocol, days: int, ok: bool) -> None:  # type: ignore[no-untyped-def]
    p = person(previous=[(1, dt.date(2020, 5, 15))])
    e = entry(number=2, date=dt.date(2020, 5, 15) + dt.timedelta(days=days))
    if ok:
        check(protocol, p=p, e=e)
    else:
        err = refusal(protocol, p=p, e=e)
        assert err.field == "date" and "28 ± 3" in err.message


def test_first_infusion_13_days_after_the_previous_participants_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    others = [Enrolled("002", "S-2", dt.date(2020, 5, 2))]
    err = refusal(protocol, others=others)
    assert err.field == "date" and "stagger" in err.message
    check(protocol, others=[Enrolled("002", "S-2", dt.date(2020, 5, 1))])


def test_an_infusion_already_recorded_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    p = person(previous=[(1, dt.date(2020, 5, 15))])
    assert "already recorded" in refusal(protocol, p=p, e=entry(number=1)).message


def test_a_weight_reads_to_a_tenth_of_a_kilogram_without_float_noise() -> None:
    from trialdesk.trial.dosing import plain_weight, weight_text

    assert weight_text(59.2 + 0.1) == "59.3 kg"
    assert weight_text(80) == "80.0 kg"
    assert plain_weight(59.2 + 0.1) == 59.3 and plain_weight(59.25) == 59.25


def test_a_dose_reads_in_millions_of_cells_per_kilogram() -> None:
    from trialdesk.trial.dosing import dose_text

    assert dose_text(44_475_000 / 59.300000000000004) == "0.75 × 10⁶ cells/kg"
    assert dose_text(1_000_000) == "1.00 × 10⁶ cells/kg"


def test_the_first_of_two_scheduled_participants_is_not_refused_because_of_the_seconds_plan(protocol) -> None:  # type: ignore[no-untyped-def]
    # 002 is planned 14 days after 001; 001's infusion, given as planned, is checked against infusions given only
    planned_second = Enrolled("002", "S-2", first_infusion=None, planned_first_infusion=dt.date(2020, 5, 29))
    check(protocol, others=[planned_second])


@pytest.mark.parametrize(("gap", "ok"), [(13, False), (14, True), (-13, False), (-14, True)])
def test_first_infusions_given_are_at_least_the_stagger_apart_before_or_after(protocol, gap: int, ok: bool) -> None:  # type: ignore[no-untyped-def]
    # a first infusion entered late is still checked against one given after it
    mine = entry().date
    others = [Enrolled("002", "S-2", first_infusion=mine - dt.timedelta(days=gap))]
    if ok:
        check(protocol, others=others)
    else:
        err = refusal(protocol, others=others)
        assert err.field == "date" and "staggers participants' first infusions by 14 days" in err.message
        assert "002's first infusion was given on" in err.message

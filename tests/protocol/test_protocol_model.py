"""What the protocol file fixes for running the trial, and the readings it documents."""

from __future__ import annotations


def test_dose_range_is_half_to_one_million_cells_per_kg(protocol) -> None:  # type: ignore[no-untyped-def]
    dose = protocol.study_intervention.dose
    assert (dose.min, dose.max, dose.unit) == (500_000, 1_000_000, "cells/kg")
    assert dose.contains(500_000) and dose.contains(1_000_000)
    assert not dose.contains(499_999) and not dose.contains(1_000_001)


def test_number_of_infusions_is_an_explicit_setting_with_a_reason(protocol) -> None:  # type: ignore[no-untyped-def]
    plan = protocol.infusion_plan
    assert plan.count == 2 and plan.interval_days == 28
    assert "registry does not state" in plan.reason
    assert [v.code for v in protocol.schedule.visits if v.infusion] == ["D0", "D28"]


def test_enrolment_target_is_ten(protocol) -> None:  # type: ignore[no-untyped-def]
    assert protocol.enrolment.target == 10 == protocol.design.enrollment.count


def test_six_month_follow_up_ends_with_the_month_6_visit(protocol) -> None:  # type: ignore[no-untyped-def]
    last = protocol.schedule.visits[-1]
    assert last.code == "M6" and last.day == protocol.safety.ae_follow_up_days == 183


def test_every_criterion_is_computable_or_attested_and_documents_its_reading(protocol) -> None:  # type: ignore[no-untyped-def]
    for c in protocol.eligibility.criteria:
        assert c.computable is not None, c.id
        assert c.reading, c.id


def test_judgement_items_are_attestations(protocol) -> None:  # type: ignore[no-untyped-def]
    by_criterion = {cid for cid, _, _ in protocol.attestation_items()}
    assert {"I4", "E10", "E11", "E6"} <= by_criterion
    for cid in ("I4", "E10", "E11"):
        assert protocol.eligibility.criterion(cid).computable.kind == "attestation"


def test_sae_deadlines_follow_21_cfr_312_32(protocol) -> None:  # type: ignore[no-untyped-def]
    rules = {r.applies_to: r for r in protocol.safety.sae_reporting}
    assert rules["all_serious"].due_hours == 24
    assert rules["unexpected_fatal_or_life_threatening_suspected"].due_calendar_days == 7
    assert rules["unexpected_serious_suspected"].due_calendar_days == 15


def test_every_value_set_named_by_a_criterion_exists_with_provenance(protocol) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.protocol.loader import load_value_sets

    library = load_value_sets()
    for vs in protocol.value_sets_used():
        assert vs in library
        assert library[vs].provenance.source

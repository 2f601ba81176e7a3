"""Refusals of an adverse event, each naming the field at fault; expectedness is never filled in by the entry."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.safety.fixtures import ADVERSE_EVENTS, ae, at, d, trial_data
from trialdesk.safety.adverse_events import AdverseEventError, adverse_event_from_form, check_adverse_event
from trialdesk.terminology.ctcae import catalogue
from trialdesk.trial.errors import ConductError

DATA = trial_data()


def form(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "N1", "subject_id": "001", "term": "Headache", "meddra_code": 10019211,
                            "soc": "Nervous system disorders", "grade": 1, "onset": d("2020-02-01"), "relatedness": "unlikely"}
    base.update(kw)
    return base


def refused(protocol, **kw: Any) -> AdverseEventError:  # type: ignore[no-untyped-def]
    with pytest.raises(AdverseEventError) as info:
        adverse_event_from_form(form(**kw), DATA, protocol, catalogue())
    return info.value


def test_a_well_formed_headache_is_accepted_with_its_expectedness_not_yet_assessed(protocol) -> None:  # type: ignore[no-untyped-def]
    stored = adverse_event_from_form(form(), DATA, protocol, catalogue())
    assert stored.expected is None and stored.expectedness_assessed_by is None and stored.term == "Headache"


@pytest.mark.parametrize("typed", [True, False])
def test_expectedness_typed_on_the_entry_form_is_not_taken(protocol, typed: bool) -> None:  # type: ignore[no-untyped-def]
    stored = adverse_event_from_form(form(expected=typed, expectedness_assessed_by="someone"), DATA, protocol, catalogue())
    assert stored.expected is None and stored.expectedness_assessed_by is None


def test_grade_4_headache_is_refused_because_ctcae_defines_only_grades_1_to_3(protocol) -> None:  # type: ignore[no-untyped-def]
    e = refused(protocol, grade=4)
    assert e.field == "grade" and "allowed grades: 1, 2, 3" in e.message


def test_an_unknown_term_is_refused_with_suggestions(protocol) -> None:  # type: ignore[no-untyped-def]
    e = refused(protocol, term="Headach")
    assert e.field == "term" and "Headache" in e.message


def test_a_meddra_code_of_another_term_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    assert refused(protocol, meddra_code=10028813).field == "meddra_code"


def test_onset_before_consent_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    e = refused(protocol, onset=d("2020-01-05"))
    assert e.field == "onset" and "consented (2020-01-06)" in e.message


def test_onset_after_going_off_study_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    e = refused(protocol, subject_id="003", onset=d("2020-03-21"), relatedness="unrelated")
    assert e.field == "onset" and "off study (2020-03-20)" in e.message


def test_onset_after_the_data_cut_off_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    assert refused(protocol, onset=d("2020-10-01")).field == "onset"


def test_resolution_before_onset_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    e = refused(protocol, resolved=d("2020-01-31"))
    assert e.field == "resolved" and "before onset 2020-02-01" in e.message


@pytest.mark.parametrize("relatedness", ["possibly", "probably", "definitely"])
def test_a_related_event_before_any_infusion_is_refused(protocol, relatedness: str) -> None:  # type: ignore[no-untyped-def]
    e = refused(protocol, onset=d("2020-01-19"), relatedness=relatedness)
    assert e.field == "relatedness" and "no infusion on or before" in e.message


def test_a_related_event_on_the_infusion_day_is_accepted(protocol) -> None:  # type: ignore[no-untyped-def]
    assert adverse_event_from_form(form(onset=d("2020-01-20"), relatedness="possibly"), DATA, protocol, catalogue()).related


def test_an_unlikely_related_event_before_any_infusion_is_accepted(protocol) -> None:  # type: ignore[no-untyped-def]
    assert adverse_event_from_form(form(onset=d("2020-01-19")), DATA, protocol, catalogue()).relatedness == "unlikely"


def test_a_serious_event_without_a_seriousness_criterion_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    e = refused(protocol, serious=True, learned_at=at("2020-02-01 10:00"))
    assert e.field == "seriousness" and "312.32" in e.message


def test_seriousness_criteria_on_a_non_serious_event_are_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    assert refused(protocol, seriousness=["hospitalisation"]).field == "serious"


def test_grade_5_without_a_fatal_outcome_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    e = refused(protocol, term="Respiratory failure", meddra_code=10038695, soc="Respiratory, thoracic and mediastinal disorders",
                grade=5, serious=True, seriousness=["death"], learned_at=at("2020-02-01 10:00"), outcome="recovered")
    assert e.field == "outcome"


def test_a_fatal_outcome_below_grade_5_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    assert refused(protocol, outcome="fatal").field == "grade"


def test_a_serious_event_needs_the_time_the_site_learned_of_it(protocol) -> None:  # type: ignore[no-untyped-def]
    assert refused(protocol, serious=True, seriousness=["hospitalisation"]).field == "learned_at"


def test_a_naive_learned_at_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    e = refused(protocol, serious=True, seriousness=["hospitalisation"], learned_at=dt.datetime(2020, 2, 1, 10))
    assert e.field == "learned_at" and "no time zone" in e.message


def test_learning_of_an_event_before_its_onset_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    assert refused(protocol, serious=True, seriousness=["hospitalisation"], learned_at=at("2020-01-31 10:00")).field == "learned_at"


def test_an_unknown_participant_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    assert refused(protocol, subject_id="999").field == "subject_id"


def test_a_missing_required_field_is_named(protocol) -> None:  # type: ignore[no-untyped-def]
    fields = form()
    del fields["relatedness"]
    with pytest.raises(AdverseEventError) as info:
        adverse_event_from_form(fields, DATA, protocol, catalogue())
    assert info.value.field == "relatedness"


def test_a_value_of_the_wrong_type_is_named(protocol) -> None:  # type: ignore[no-untyped-def]
    assert refused(protocol, grade="severe").field == "grade"


def test_the_refusal_is_a_conduct_error_the_desk_already_shows(protocol) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(refused(protocol, grade=4), ConductError)


def test_every_fixture_event_passes_and_keeps_the_recorded_assessment(protocol) -> None:  # type: ignore[no-untyped-def]
    checked = [check_adverse_event(a, DATA, protocol, catalogue()) for a in ADVERSE_EVENTS if a.id != "A8"]
    assert checked == [a for a in ADVERSE_EVENTS if a.id != "A8"]
    assessed = ae("X", "001", "Hypoxia", 2, "2020-02-01", expected=False, expectedness_assessed_by="PI")
    assert check_adverse_event(assessed, DATA, protocol, catalogue()) == assessed

"""The desk's case report forms are the served protocol's (TRIALDESK_PROTOCOL): AETHER's demographics form
takes an eligible 88-year-old that the first trial's 18-80 range refuses, and its own forms exist in the desk."""

from __future__ import annotations

import pytest


def _age_errors(age: str) -> list[str]:
    from trialdesk.edc.visits.crf import crf_form

    form = crf_form("demographics", {"dm_age": age})
    form.is_valid()
    return list(form.errors.get("dm_age", []))


@pytest.mark.parametrize(("age", "ok"), [("88", True), ("90", True), ("91", False), ("39", False), ("40", True)])
def test_aethers_demographics_form_takes_its_age_range(settings, age: str, ok: bool) -> None:  # type: ignore[no-untyped-def]
    settings.TRIALDESK_PROTOCOL = "nct02013700"
    assert (not _age_errors(age)) is ok


def test_the_first_trials_form_still_refuses_88(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRIALDESK_PROTOCOL = "nct03929120"
    assert _age_errors("88") and not _age_errors("80")


def test_every_form_aethers_visits_name_is_a_form_of_the_desk(settings) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.crf import catalogue
    from trialdesk.edc.web import protocol

    settings.TRIALDESK_PROTOCOL = "nct02013700"
    named = {f for v in protocol().schedule.visits for f in v.forms}
    assert "smoking_history" in named and named <= set(catalogue().ids)

"""Dates a person enters or reads are the site's dates: a consent signed in the site's evening (after
midnight UTC) dates that evening, so a same-evening enrolment is not "before consent"; and the stagger
between participants is checked against the first infusions actually given, not other participants' plans."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from .conftest import days_ago


def _site(day: dt.date, hour: int, minute: int) -> dt.datetime:
    return timezone.make_aware(dt.datetime(day.year, day.month, day.day, hour, minute))


@pytest.mark.parametrize("minute", [(21, 13), (23, 59)])
def test_an_enrolment_the_same_evening_as_a_consent_after_midnight_utc_is_accepted(trial, minute) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import enrol, record_consent
    from trialdesk.edc.snapshot import trial_data

    day = days_ago(3)
    signed = _site(day, *minute)
    assert signed.astimezone(dt.UTC).date() == day + dt.timedelta(days=1)  # the UTC date is already the next day
    entry = trial.screen()
    trial.sign(entry)
    entry.refresh_from_db()
    record_consent(trial.users["coordinator"], entry, icf_version="1.0", signed_at=signed, obtained_by="C", copy_given=True)
    entry.refresh_from_db()
    p = enrol(trial.users["coordinator"], entry, enrolled_on=day)
    assert p.subject_id == "001"
    assert trial_data(timezone.localdate()).participants[0].consented_on == day


def test_an_enrolment_the_day_before_a_consent_just_after_the_sites_midnight_is_refused(trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import enrol, record_consent
    from trialdesk.trial.errors import ConductError

    day = days_ago(3)
    entry = trial.screen()
    trial.sign(entry)
    entry.refresh_from_db()
    record_consent(trial.users["coordinator"], entry, icf_version="1.0", signed_at=_site(day, 0, 5), obtained_by="C", copy_given=True)
    entry.refresh_from_db()
    with pytest.raises(ConductError, match="before consent"):
        enrol(trial.users["coordinator"], entry, enrolled_on=day - dt.timedelta(days=1))


def test_the_first_of_two_scheduled_participants_is_infused_as_planned(trial, settings) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import enrol
    from trialdesk.edc.web import protocol

    stagger = protocol().enrolment.stagger_days
    first_plan = days_ago(20)
    a = trial.ready("Ada")
    pa = enrol(trial.users["coordinator"], a, enrolled_on=days_ago(25), planned_first_infusion=first_plan)
    b = trial.ready("Bea")
    enrol(trial.users["coordinator"], b, enrolled_on=days_ago(25), planned_first_infusion=first_plan + dt.timedelta(days=stagger))
    inf = trial.infuse(pa, ago=20)  # before the fix: refused, "no sooner than" the second's plan + 14 days
    assert inf.number == 1 and inf.date == first_plan

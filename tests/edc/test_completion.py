"""A participant completes the study only once the last scheduled visit (month 6) is done."""

from __future__ import annotations

import pytest

from trialdesk.trial.errors import ConductError

from .conftest import days_ago


def _infused(trial):  # type: ignore[no-untyped-def]
    entry = trial.ready()
    from trialdesk.edc.participants.service import enrol

    participant = enrol(trial.users["coordinator"], entry, enrolled_on=days_ago(25))
    trial.infuse(participant, ago=20)
    participant.refresh_from_db()
    return participant


def test_completion_before_the_month_6_visit_is_refused(trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import complete_study

    p = _infused(trial)
    with pytest.raises(ConductError, match="last scheduled visit"):
        complete_study(trial.users["pi"], p, on=days_ago(1), version=p.version)
    p.refresh_from_db()
    assert p.status == "on_study"


def test_completion_after_the_month_6_visit_is_recorded_with_its_date(trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import complete_study

    p = _infused(trial)
    last = p.visits.order_by("-day").first()
    # the visit itself is entered with the data; here the month-6 date is set directly on the record to stay in the past
    from trialdesk.edc.audit import trail

    trail.update(last, trial.users["coordinator"], changes={"done_on": days_ago(2)}, reason="visit date entered", version=last.version)
    p = complete_study(trial.users["pi"], p, on=days_ago(2), version=p.version)
    assert (p.status, p.off_study_on) == ("completed", days_ago(2))
    with pytest.raises(ConductError, match="already completed"):
        complete_study(trial.users["pi"], p, on=days_ago(1), version=p.version)

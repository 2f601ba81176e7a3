"""A form's values are checked all at once before they are stored: the date of assessment on or after consent, not
in the future, inside the visit's window or explained; diastolic below systolic; recovered needs a resolution date."""

from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.protocol.forms import load_forms, parse_forms
from trialdesk.trial.crf_checks import ae_outcome_problems, entry_problems, outside_window

VS = load_forms().form("vital_signs")
TODAY = dt.date(2020, 6, 30)
CONSENT = dt.date(2020, 5, 1)
WINDOW = (dt.date(2020, 6, 5), dt.date(2020, 6, 9))


def problems(**values: object) -> list[tuple[str, str]]:
    return entry_problems(VS, {"vs_date": dt.date(2020, 6, 7), **values}, consented_on=CONSENT, today=TODAY, window=WINDOW)


def test_a_complete_form_inside_its_window_passes() -> None:
    assert problems(sysbp=120, diabp=80) == []


@pytest.mark.parametrize(("diabp", "ok"), [(119, True), (120, False), (121, False)])
def test_diastolic_must_be_below_systolic(diabp: int, ok: bool) -> None:
    found = problems(sysbp=120, diabp=diabp)
    assert (found == []) == ok
    if not ok:
        assert found[0][0] == "diabp" and "must be below Systolic blood pressure (120)" in found[0][1]


def test_one_of_the_pressures_alone_is_not_compared() -> None:
    assert problems(diabp=130) == []


@pytest.mark.parametrize(("day", "field_ok"), [(CONSENT, True), (CONSENT - dt.timedelta(days=1), False)])
def test_the_assessment_is_on_or_after_consent(day: dt.date, field_ok: bool) -> None:
    found = entry_problems(VS, {"vs_date": day}, consented_on=CONSENT, today=TODAY)
    assert (found == []) == field_ok
    if not field_ok:
        assert found == [("vs_date", f"{day} is before consent was signed ({CONSENT}); no study procedure may precede consent —"
                                     " correct the date")]


@pytest.mark.parametrize(("day", "ok"), [(TODAY, True), (TODAY + dt.timedelta(days=1), False)])
def test_the_assessment_is_not_in_the_future(day: dt.date, ok: bool) -> None:
    assert (entry_problems(VS, {"vs_date": day}, consented_on=CONSENT, today=TODAY) == []) == ok


@pytest.mark.parametrize(("day", "inside"), [(WINDOW[0], True), (WINDOW[1], True), (WINDOW[0] - dt.timedelta(days=1), False),
                                             (WINDOW[1] + dt.timedelta(days=1), False)])
def test_out_of_the_visit_window_needs_a_reason(day: dt.date, inside: bool) -> None:
    found = entry_problems(VS, {"vs_date": day}, consented_on=CONSENT, today=TODAY, window=WINDOW)
    assert (found == []) == inside and (outside_window(VS, {"vs_date": day}, WINDOW) is None) == inside
    assert entry_problems(VS, {"vs_date": day}, consented_on=CONSENT, today=TODAY, window=WINDOW, out_of_window_reason="travel") == []


def test_every_problem_of_a_form_is_reported_at_once_each_at_its_field() -> None:
    found = entry_problems(VS, {"vs_date": TODAY + dt.timedelta(days=2), "sysbp": 80, "diabp": 90}, consented_on=CONSENT, today=TODAY)
    assert [f for f, _ in found] == ["vs_date", "diabp"]


@pytest.mark.parametrize(("outcome", "resolved", "ok"), [
    ("recovered", None, False), ("recovered_with_sequelae", None, False), ("recovered", dt.date(2020, 6, 1), True),
    ("recovering", None, True), ("not_recovered", None, True)])
def test_recovered_needs_the_date_it_resolved(outcome: str, resolved: dt.date | None, ok: bool) -> None:
    found = ae_outcome_problems(outcome, resolved)
    assert (found == []) == ok and all(f == "resolved" for f, _ in found)


def test_a_check_naming_a_field_the_form_lacks_is_refused_naming_it() -> None:
    from trialdesk.protocol.forms import FormsError

    tree = {"forms": [{"id": "vs", "title": "VS", "fields": [{"name": "sysbp", "label": "S", "type": "integer"}],
                       "less_than": [{"field": "diabp", "than": "sysbp", "reason": "physiology"}]}]}
    with pytest.raises(FormsError, match="'diabp', which is not one of its fields"):
        parse_forms(tree)

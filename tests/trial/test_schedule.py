from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.trial.errors import ConductError
from trialdesk.trial.schedule import check_visit_date, visit_flag, visit_schedule

D0 = dt.date(2020, 6, 1)


def visits(protocol):  # type: ignore[no-untyped-def]
    return {v.code: v for v in visit_schedule(protocol, D0)}


def test_schedule_counts_days_from_the_first_infusion(protocol) -> None:  # type: ignore[no-untyped-def]
    v = visits(protocol)
    assert list(v) == ["SCREENING", "D0", "D1", "D7", "D28", "D29", "D35", "M2", "M3", "M6"]
    assert v["D28"].target == dt.date(2020, 6, 29)
    assert (v["D28"].earliest, v["D28"].latest) == (dt.date(2020, 6, 26), dt.date(2020, 7, 2))
    assert v["D28"].infusion == 2 and "infusion" in v["D28"].forms
    assert v["M6"].target == D0 + dt.timedelta(days=183)


def test_week_one_visit_two_days_late_is_in_window_and_three_days_late_is_out(protocol) -> None:  # type: ignore[no-untyped-def]
    d7 = visits(protocol)["D7"]
    assert visit_flag(d7, dt.date(2020, 6, 10), dt.date(2020, 7, 1)) == "done"
    assert visit_flag(d7, dt.date(2020, 6, 11), dt.date(2020, 7, 1)) == "out_of_window"


def test_visit_not_done_by_the_end_of_its_window_is_missed(protocol) -> None:  # type: ignore[no-untyped-def]
    d7 = visits(protocol)["D7"]
    assert visit_flag(d7, None, dt.date(2020, 6, 10)) == "due"
    assert visit_flag(d7, None, dt.date(2020, 6, 11)) == "missed"
    assert visit_flag(d7, None, dt.date(2020, 6, 4)) == "upcoming"


def test_visit_dated_in_the_future_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConductError, match="future"):
        check_visit_date(visits(protocol)["D7"], dt.date(2020, 6, 8), consented_on=dt.date(2020, 5, 1),
                         enrolled_on=dt.date(2020, 5, 20), today=dt.date(2020, 6, 7))


def test_visit_before_enrolment_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConductError, match="before enrolment"):
        check_visit_date(visits(protocol)["D1"], dt.date(2020, 5, 19), consented_on=dt.date(2020, 5, 1),
                         enrolled_on=dt.date(2020, 5, 20), today=dt.date(2020, 7, 1))


def test_screening_visit_before_consent_is_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConductError, match="before consent"):
        check_visit_date(visits(protocol)["SCREENING"], dt.date(2020, 5, 1), consented_on=dt.date(2020, 5, 2),
                         enrolled_on=dt.date(2020, 5, 20), today=dt.date(2020, 7, 1))


def test_out_of_window_visit_is_kept_and_flagged(protocol) -> None:  # type: ignore[no-untyped-def]
    flag = check_visit_date(visits(protocol)["D7"], dt.date(2020, 6, 20), consented_on=dt.date(2020, 5, 1),
                            enrolled_on=dt.date(2020, 5, 20), today=dt.date(2020, 7, 1))
    assert flag == "out_of_window"

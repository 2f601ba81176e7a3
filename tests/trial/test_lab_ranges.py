"""Reference ranges in the clinical core: the flag of a value (a value exactly at a limit is within the range) and the
version of a laboratory's range in force on a sample's date."""

from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.trial.errors import ConductError
from trialdesk.trial.lab_ranges import ReferenceRange, check_range, flag, in_force

LAB = "Mayo Clinic Florida central laboratory"


def test_a_value_exactly_at_a_limit_is_within_the_range() -> None:
    assert [flag(v, 12.0, 16.0) for v in (11.9, 12.0, 16.0, 16.1)] == ["L", "", "", "H"]
    assert flag(100.0, None, 40.0) == "H" and flag(0.0, None, 40.0) == ""


def test_the_range_in_force_at_the_sample_date_applies() -> None:
    old = ReferenceRange(LAB, "hgb", "g/dL", 12.0, 16.0, dt.date(2020, 1, 1))
    new = ReferenceRange(LAB, "hgb", "g/dL", 11.5, 15.5, dt.date(2026, 6, 1))
    other = ReferenceRange("Another lab", "hgb", "g/dL", 10.0, 14.0, dt.date(2026, 1, 1))
    assert in_force([old, new, other], LAB, "hgb", dt.date(2026, 5, 31)) == old  # the day before the new one
    assert in_force([old, new, other], LAB, "hgb", dt.date(2026, 6, 1)) == new  # the day it takes effect
    assert in_force([old, new], LAB, "hgb", dt.date(2019, 12, 31)) is None


def test_a_range_needs_a_limit_and_its_lower_limit_not_above_its_upper_one() -> None:
    with pytest.raises(ConductError, match="lower limit, the upper limit or both"):
        check_range(None, None)
    with pytest.raises(ConductError, match="above the upper limit"):
        check_range(16.1, 16.0)
    check_range(16.0, 16.0)  # equal limits: a single value is the range
    check_range(None, 40.0)

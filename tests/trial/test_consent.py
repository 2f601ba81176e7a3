from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.trial.consent import Consent, check_consent, require_consent, withdraw
from trialdesk.trial.errors import ConductError

UTC = dt.UTC
NOW = dt.datetime(2020, 3, 1, 12, 0, tzinfo=UTC)


def consent(**kw: object) -> Consent:
    base: dict[str, object] = {"icf_version": "1.0", "signed_at": dt.datetime(2020, 2, 1, 9, 30, tzinfo=UTC),
                               "obtained_by": "C. Coordinator", "copy_given": True, "site_zone": UTC}
    base.update(kw)
    return Consent(**base)  # type: ignore[arg-type]


def test_complete_consent_is_accepted() -> None:
    check_consent(consent(), now=NOW)


def test_consent_without_icf_version_is_refused() -> None:
    with pytest.raises(ConductError) as e:
        check_consent(consent(icf_version=" "), now=NOW)
    assert e.value.field == "icf_version"


def test_consent_signed_in_the_future_is_refused() -> None:
    with pytest.raises(ConductError) as e:
        check_consent(consent(signed_at=NOW + dt.timedelta(days=1)), now=NOW)
    assert e.value.field == "signed_at" and "future" in e.value.message


def test_consent_without_a_copy_given_is_refused() -> None:
    with pytest.raises(ConductError) as e:
        check_consent(consent(copy_given=False), now=NOW)
    assert e.value.field == "copy_given"


def test_procedure_before_consent_is_refused() -> None:
    with pytest.raises(ConductError, match="before consent"):
        require_consent(consent(), dt.date(2020, 1, 31), procedure="infusion")


def test_procedure_on_the_day_of_consent_is_allowed() -> None:
    require_consent(consent(), dt.date(2020, 2, 1), procedure="infusion")


def test_procedure_without_consent_is_refused() -> None:
    with pytest.raises(ConductError, match="no informed consent"):
        require_consent(None, dt.date(2020, 2, 1), procedure="screening visit")


def test_procedure_after_withdrawal_is_refused() -> None:
    c = withdraw(consent(), dt.datetime(2020, 2, 10, tzinfo=UTC), "moved away", now=NOW)
    require_consent(c, dt.date(2020, 2, 9), procedure="visit")
    with pytest.raises(ConductError, match="withdrawn"):
        require_consent(c, dt.date(2020, 2, 10), procedure="visit")


def test_withdrawal_needs_a_reason_and_cannot_precede_consent() -> None:
    with pytest.raises(ConductError) as e:
        withdraw(consent(), dt.datetime(2020, 2, 10, tzinfo=UTC), "", now=NOW)
    assert e.value.field == "withdrawal_reason"
    with pytest.raises(ConductError) as e:
        withdraw(consent(), dt.datetime(2020, 1, 10, tzinfo=UTC), "x", now=NOW)
    assert e.value.field == "withdrawn_at"


def test_consent_cannot_be_withdrawn_twice() -> None:
    c = withdraw(consent(), dt.datetime(2020, 2, 10, tzinfo=UTC), "moved away", now=NOW)
    with pytest.raises(ConductError, match="already withdrawn"):
        withdraw(c, dt.datetime(2020, 2, 11, tzinfo=UTC), "again", now=NOW)


JACKSONVILLE = __import__("zoneinfo").ZoneInfo("America/New_York")


def _evening(hour: int, minute: int, day: int = 1) -> dt.datetime:
    """An instant on the site's clock, stored (as the trial desk stores it) in UTC."""
    return dt.datetime(2020, 2, day, hour, minute, tzinfo=JACKSONVILLE).astimezone(UTC)


@pytest.mark.parametrize(("signed", "site_day"), [
    (_evening(21, 13), dt.date(2020, 2, 1)),   # 02:13 UTC on 2 February: still the evening of 1 February in Jacksonville
    (_evening(23, 59), dt.date(2020, 2, 1)),   # the last minute of the site's day
    (_evening(0, 0, day=2), dt.date(2020, 2, 2)),  # the site's midnight starts the next date
    (_evening(18, 59), dt.date(2020, 2, 1)),   # 23:59 UTC: the same date on both clocks
])
def test_the_date_of_consent_is_the_sites_date_whatever_the_utc_date(signed: dt.datetime, site_day: dt.date) -> None:
    assert consent(signed_at=signed, site_zone=JACKSONVILLE).signed_on == site_day


def test_a_same_evening_enrolment_after_a_consent_at_21_13_in_jacksonville_is_not_before_consent() -> None:
    c = consent(signed_at=_evening(21, 13), site_zone=JACKSONVILLE)
    require_consent(c, dt.date(2020, 2, 1), procedure="enrolment")
    with pytest.raises(ConductError, match="before consent was signed on 2020-02-01"):
        require_consent(c, dt.date(2020, 1, 31), procedure="enrolment")


def test_withdrawal_late_in_the_sites_evening_ends_procedures_from_that_site_date() -> None:
    c = withdraw(consent(signed_at=_evening(9, 0), site_zone=JACKSONVILLE), _evening(22, 30, day=20), "moving away",
                 now=_evening(23, 0, day=20))
    assert c.withdrawn_on == dt.date(2020, 2, 20)
    require_consent(c, dt.date(2020, 2, 19), procedure="visit")
    with pytest.raises(ConductError, match="withdrawn on 2020-02-20"):
        require_consent(c, dt.date(2020, 2, 20), procedure="visit")


def test_an_instant_without_a_zone_has_no_site_date() -> None:
    with pytest.raises(ConductError, match="no time zone"):
        _ = consent(signed_at=dt.datetime(2020, 2, 1, 21, 13), site_zone=JACKSONVILLE).signed_on

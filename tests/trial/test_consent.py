from __future__ import annotations

import datetime as dt

import pytest

from trialdesk.trial.consent import Consent, check_consent, require_consent, withdraw
from trialdesk.trial.errors import ConductError

UTC = dt.UTC
NOW = dt.datetime(2020, 3, 1, 12, 0, tzinfo=UTC)


def consent(**kw: object) -> Consent:
    base: dict[str, object] = {"icf_version": "1.0", "signed_at": dt.datetime(2020, 2, 1, 9, 30, tzinfo=UTC),
                               "obtained_by": "C. Coordinator", "copy_given": True}
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

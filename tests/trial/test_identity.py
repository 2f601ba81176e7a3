"""The birth date and sex a FHIR Patient gives fill only what nobody entered; a disagreement is shown, never resolved silently."""

from __future__ import annotations

import datetime as dt

from trialdesk.trial.identity import RecordIdentity, discrepancies, to_fill

RECORD = RecordIdentity.from_fhir(dt.date(1970, 6, 12), "female", "FHIR record (referral.json: Patient/p1)")


def test_an_entry_without_birth_date_or_sex_takes_both_from_the_record() -> None:
    assert to_fill({"birth_date": None, "sex": "unknown"}, RECORD) == {"birth_date": dt.date(1970, 6, 12), "sex": "female"}


def test_a_birth_date_a_coordinator_entered_is_not_overwritten() -> None:
    entered = {"birth_date": dt.date(1970, 12, 6), "sex": "unknown"}
    assert to_fill(entered, RECORD) == {"sex": "female"}


def test_a_differing_entered_birth_date_is_reported_with_both_dates() -> None:
    (sentence,) = discrepancies({"birth_date": dt.date(1970, 12, 6), "sex": "female"}, RECORD)
    assert "Date of birth: entered 1970-12-06" in sentence and "says 1970-06-12" in sentence and "Patient/p1" in sentence


def test_matching_values_raise_no_discrepancy() -> None:
    assert discrepancies({"birth_date": dt.date(1970, 6, 12), "sex": "female"}, RECORD) == []


def test_fhir_gender_other_leaves_the_entry_sex_for_a_person_to_record() -> None:
    record = RecordIdentity.from_fhir(None, "other", "FHIR record")
    assert to_fill({"birth_date": None, "sex": "unknown"}, record) == {}


def test_the_record_survives_the_worksheet_snapshot() -> None:
    assert RecordIdentity.from_snapshot({"patient_record": RECORD.as_snapshot()}) == RECORD
    assert RecordIdentity.from_snapshot({"criteria": []}) is None

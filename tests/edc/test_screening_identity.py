"""Screening from a FHIR record takes the Patient's birth date and sex, so the person can be enrolled without retyping them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from trialdesk.edc.audit.models import AuditEntry

from .conftest import days_ago

REFERRAL = Path(__file__).resolve().parents[1] / "fixtures" / "fhir" / "bundles" / "ssc_ild_new.json"  # Patient born 1970-06-12, female
CHART_AS_OF = dt.date(2025, 3, 1)  # the chart's new SSc-ILD diagnosis is within 6 months of this date


@pytest.fixture
def fhir_entry(users):  # type: ignore[no-untyped-def]
    from trialdesk.edc.screening.service import screen_fhir

    (entry,) = screen_fhir(users["coordinator"], REFERRAL, as_of=CHART_AS_OF, screened_on=days_ago(40), label="referral.json")
    return entry


def test_fhir_screening_copies_the_patients_birth_date_and_sex(fhir_entry) -> None:  # type: ignore[no-untyped-def]
    assert fhir_entry.birth_date == dt.date(1970, 6, 12)
    assert fhir_entry.sex == "female"


def test_the_copy_is_in_the_audit_trail_with_the_record_as_reason(fhir_entry) -> None:  # type: ignore[no-untyped-def]
    change = AuditEntry.objects.get(screening_id=fhir_entry.number, action="update")
    assert change.changes == {"birth_date": [None, "1970-06-12"], "sex": ["unknown", "female"]}
    assert "FHIR record" in change.reason and "Patient/ssc-new-patient" in change.reason


def test_a_person_screened_from_fhir_can_be_enrolled_without_retyping_identity(fhir_entry, trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import enrol

    entry = fhir_entry
    assert entry.outcome == "pending"  # the chart leaves attestations to the investigator
    trial.sign(entry)
    entry.refresh_from_db()
    trial.consent(entry)
    entry.refresh_from_db()
    participant = enrol(users["coordinator"], entry, enrolled_on=days_ago(25))
    assert participant.subject_id


def test_an_entered_birth_date_is_kept_and_the_difference_shown(fhir_entry, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit import trail
    from trialdesk.edc.screening.service import identity_from_record

    entry = trail.update(fhir_entry, users["coordinator"], changes={"birth_date": dt.date(1970, 12, 6)},
                         reason="date of birth from the patient's ID card", version=fhir_entry.version)
    again = identity_from_record(users["coordinator"], entry)
    assert again.birth_date == dt.date(1970, 12, 6)
    html = client_as("coordinator").get(f"/screening/{entry.number}/").content.decode()
    assert "Date of birth: entered 1970-12-06" in html and "says 1970-06-12" in html and "The entered value is kept" in html


def test_no_discrepancy_is_shown_when_the_entry_matches_the_record(fhir_entry, client_as) -> None:  # type: ignore[no-untyped-def]
    html = client_as("coordinator").get(f"/screening/{fhir_entry.number}/").content.decode()
    assert "The entered value is kept" not in html


def test_a_referral_recorded_as_deceased_says_so_at_the_top_of_its_screening_entry(users, client_as, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from trialdesk.edc.screening.service import screen_fhir

    doc = json.loads(REFERRAL.read_text())
    doc["entry"][0]["resource"]["deceasedDateTime"] = "2025-02-20"
    chart = tmp_path / "referral.json"
    chart.write_text(json.dumps(doc))
    (entry,) = screen_fhir(users["coordinator"], chart, as_of=CHART_AS_OF, screened_on=days_ago(40), label="referral.json")
    assert entry.snapshot["overall"] == "not_eligible"
    html = client_as("coordinator").get(f"/screening/{entry.number}/").content.decode()
    assert "The patient is recorded as dead on 2025-02-20: not eligible, whatever the criteria say." in html

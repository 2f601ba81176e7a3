"""Concomitant medications and medical history, entered per participant by site staff, read by the monitor, checked
by the core's record shapes (every problem at its field) and carried in the data cut for SDTM CM and MH."""

from __future__ import annotations

from django.utils import timezone

from .conftest import days_ago


def _cut():  # type: ignore[no-untyped-def]
    from trialdesk.edc.snapshot import trial_data

    return trial_data(timezone.localdate())


def test_a_medication_is_recorded_and_carried_in_the_data_cut(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.enrol()
    response = client_as("coordinator").post("/participants/001/medications/", {
        "medication": "Prednisone", "indication": "ILD", "dose": "10", "dose_unit": "mg", "route": "oral", "frequency": "daily",
        "start_date": days_ago(60).isoformat(), "ongoing": "on"})
    assert response.status_code == 302
    [cm] = _cut().concomitant_medications
    assert (cm.subject_id, cm.medication, cm.dose, cm.dose_unit, cm.route, cm.ongoing, cm.end_date) == (
        "001", "Prednisone", 10.0, "mg", "oral", True, None)
    assert "Prednisone" in client_as("monitor").get("/participants/001/medications/").content.decode()


def test_an_ongoing_medication_with_an_end_date_is_refused_and_nothing_stored(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.enrol()
    page = client_as("coordinator").post("/participants/001/medications/", {
        "medication": "Prednisone", "start_date": days_ago(60).isoformat(), "end_date": days_ago(2).isoformat(), "ongoing": "on"})
    assert page.status_code == 422 and "an ongoing medication has no end_date" in page.content.decode()
    assert _cut().concomitant_medications == []


def test_a_start_date_in_the_future_is_refused_at_its_field(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.enrol()
    page = client_as("coordinator").post("/participants/001/medical-history/", {"term": "Asthma", "start_date": days_ago(-3).isoformat()})
    assert page.status_code == 422 and 'data-field="start_date"' in page.content.decode()


def test_medical_history_is_carried_in_the_data_cut_and_the_monitor_changes_nothing(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.enrol()
    assert client_as("coordinator").post("/participants/001/medical-history/", {
        "term": "Gastro-oesophageal reflux", "icd10cm_code": "K21.9", "start_date": "2015-03-01", "ongoing": "on"}).status_code == 302
    [mh] = _cut().medical_history
    assert (mh.term, mh.icd10cm_code, mh.ongoing) == ("Gastro-oesophageal reflux", "K21.9", True)
    assert client_as("monitor").post("/participants/001/medical-history/", {"term": "Asthma"}).status_code == 403
    assert len(_cut().medical_history) == 1

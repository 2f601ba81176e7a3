"""The desk serving AETHER exports its primary outcome as AETHER defines it (participants with a treatment-emergent
serious adverse event within 4 weeks, by cohort), not the first trial's per-infusion count of every event."""

from __future__ import annotations

import csv
import io

import pytest

from .conftest import at_days_ago, days_ago
from .test_cohort_gate_desk import assign, enrol_for_aether


@pytest.mark.django_db
def test_the_primary_outcome_csv_is_the_protocols_measure_by_cohort(settings, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import record_adverse_event

    settings.TRIALDESK_PROTOCOL = "nct02013700"
    people = [enrol_for_aether(trial, name) for name in ("Ann", "Bea", "Cy")]
    for p in people:
        assign(trial, p, "C1")
    for k, p in enumerate(people):
        trial.infuse(p, ago=20 - k, total_cells=20e6, weight=60.0 + 10 * k)
    base = {"description": "", "resolved": None, "relatedness": "unrelated", "outcome": "recovering", "action_taken": "none",
            "learned_at": at_days_ago(14), "suggested_from": ""}
    record_adverse_event(trial.users["coordinator"], people[0], **base, term="Dyspnea", grade=3, onset=days_ago(15), serious=True,
                         seriousness=["hospitalisation"])
    record_adverse_event(trial.users["coordinator"], people[0], **base, term="Headache", grade=1, onset=days_ago(14), serious=False,
                         seriousness=[])
    response = client_as("pi").post("/exports/primary-outcome-csv/", {"cutoff": days_ago(0).isoformat(), "export_anyway": "on"})
    assert response.status_code == 200, response.content[:400]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["group"], r["analysed"], r["participants"]) for r in rows] == [("C1", "3", "1"), ("C2", "0", "0"), ("C3", "0", "0")]


@pytest.mark.django_db
def test_the_api_returns_the_total_dose_in_the_protocols_unit(settings, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    settings.TRIALDESK_PROTOCOL = "nct02013700"
    p = enrol_for_aether(trial, "Ann")
    assign(trial, p, "C1")
    body = {"date": days_ago(10).isoformat(), "started_at": "09:00", "weight_kg": 80, "total_cells": 20e6, "lot": "L", "donor_id": "D"}
    r = client_as("coordinator").post(f"/api/participants/{p.subject_id}/infusions", body, content_type="application/json")
    assert r.status_code == 201, r.content
    assert (r.json()["dose"], r.json()["dose_unit"], r.json()["dose_basis"]) == (20.0, "10^6 cells", "total")  # not 250,000 per kg

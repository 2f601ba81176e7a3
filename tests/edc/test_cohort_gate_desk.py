"""The desk serving AETHER: the coordinator assigns each participant to a dose cohort that is open and has a
place (the page offers only those, the core refuses others saying why), the assignment is audited and shown on
the participant's page and the DSMB's cohort table, and the first dose must be the assigned cohort's level.
Cohort C2 (100 × 10⁶ cells) waits for the DSMB's signed review of cohort C1; C1's own doses go through, in its
unit, whatever the weight. A protocol that gives one dose level in two cohorts (a 3+3 expansion) works, since
the cohort is recorded, not read from the dose."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from trialdesk.trial.errors import ConductError

from .conftest import PASSWORD, days_ago

AETHER = Path(__file__).parents[2] / "src" / "trialdesk" / "protocols" / "nct02013700"
AETHER_COHORTS = """    - {id: C1, dose_level: DL1, size: 3}
    - {id: C2, dose_level: DL2, size: 3}
    - {id: C3, dose_level: DL3, size: 3}
"""


def aether_with_cohorts(folder: Path, cohorts: str) -> str:
    """A copy of the AETHER protocol folder with other cohorts (a variant the study team might write); its path."""
    shutil.copytree(AETHER, folder)
    text = (folder / "protocol.yaml").read_text(encoding="utf-8")
    assert AETHER_COHORTS in text
    (folder / "protocol.yaml").write_text(text.replace(AETHER_COHORTS, cohorts), encoding="utf-8")
    return str(folder)


def ready_for_aether(trial, name: str, ago: int = 25):  # type: ignore[no-untyped-def]
    """Screen (``ago`` + 15 days ago), sign (every inclusion attested met, every exclusion not) and consent (``ago`` + 5 days
    ago), as the PI and coordinator would: the screening entry, ready to enrol."""
    from trialdesk.edc.screening.service import sign_off
    from trialdesk.edc.web import protocol
    from trialdesk.trial.signoff import open_criteria

    p = protocol()
    role = {c.id: c.role for c in p.eligibility.criteria}
    entry = trial.screen(name, screened_ago=ago + 15)
    answers = {aid: role[cid] == "inclusion" for cid, aid, _ in p.attestation_items()}
    decisions = {cid: ("met" if role[cid] == "inclusion" else "not_met") for cid in open_criteria(p, entry.snapshot)}
    pi = trial.users["pi"]
    sign_off(pi, entry, answers=answers, decisions=decisions, password=PASSWORD, printed_name=pi.get_full_name())
    entry.refresh_from_db()
    trial.consent(entry, ago=ago + 5)
    entry.refresh_from_db()
    return entry


def enrol_for_aether(trial, name: str, ago: int = 25):  # type: ignore[no-untyped-def]
    """Ready (:func:`ready_for_aether`) and enrolled ``ago`` days ago."""
    from trialdesk.edc.participants.service import enrol

    return enrol(trial.users["coordinator"], ready_for_aether(trial, name, ago), enrolled_on=days_ago(ago))


def assign(trial, participant, cohort: str):  # type: ignore[no-untyped-def]
    from trialdesk.edc.dosing.service import assign_cohort

    return assign_cohort(trial.users["coordinator"], participant, cohort=cohort)


@pytest.mark.django_db
def test_the_desk_refuses_a_dose_from_the_next_cohort_before_the_dsmb_opens_it(settings, trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.dosing.models import CohortAssignment

    settings.TRIALDESK_PROTOCOL = "nct02013700"
    people = [enrol_for_aether(trial, name) for name in ("Ann", "Bea", "Cy", "Di")]
    for k, p in enumerate(people[:3]):
        assign(trial, p, "C1")
        given = trial.infuse(p, ago=20 - k, total_cells=20e6, weight=60.0 + 10 * k)
        assert given.dose_text == "20 × 10⁶ cells"
    with pytest.raises(ConductError, match="cohort C2 \\(DL2\\) is not open: it opens only with the DSMB's signed decision after"
                                           " cohort C1's DLT window \\(28 days\\) has closed"):
        assign(trial, people[3], "C2")
    with pytest.raises(ConductError, match=r"cohort C1 is full: its 3 places are assigned \(001, 002, 003\)"):
        assign(trial, people[3], "C1")
    with pytest.raises(ConductError, match="004 has no cohort; assign them to an open cohort before the first infusion"):
        trial.infuse(people[3], ago=10, total_cells=100e6)
    assert not people[3].infusions.exists() and not CohortAssignment.objects.filter(participant=people[3]).exists()


@pytest.mark.django_db
def test_the_first_dose_must_be_the_assigned_cohorts_level(settings, trial) -> None:  # type: ignore[no-untyped-def]
    settings.TRIALDESK_PROTOCOL = "nct02013700"
    ann = enrol_for_aether(trial, "Ann")
    assign(trial, ann, "C1")
    with pytest.raises(ConductError, match=r"001 is assigned to cohort C1 at DL1 \(20 × 10⁶ cells\); this dose, 100 × 10⁶ cells,"
                                           r" is DL2 \(100 × 10⁶ cells\)"):
        trial.infuse(ann, ago=20, total_cells=100e6)
    assert not ann.infusions.exists()
    given = trial.infuse(ann, ago=20, total_cells=20e6)
    from trialdesk.edc.dosing.service import edit_infusion

    with pytest.raises(ConductError, match=r"001 is assigned to cohort C1 at DL1 .* is DL3"):
        edit_infusion(trial.users["coordinator"], given, changes={"total_cells": 200e6}, reason="typo", version=given.version)


@pytest.mark.django_db
def test_the_first_trial_has_no_cohort_gate(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    ann = trial.enrol("Ann")
    assert trial.infuse(ann).dose_text == "0.75 × 10⁶ cells/kg"
    assert 'id="cohort"' not in client_as("coordinator").get(f"/participants/{ann.subject_id}/").content.decode()
    from trialdesk.edc.dosing.service import assign_cohort

    with pytest.raises(ConductError, match="has no dose cohorts; there is nothing to assign"):
        assign_cohort(trial.users["coordinator"], trial.enrol("Bea"), cohort="C1")


@pytest.mark.django_db
def test_the_coordinator_assigns_from_the_participants_page_audited_and_shown(settings, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit.models import AuditEntry

    settings.TRIALDESK_PROTOCOL = "nct02013700"
    ann = enrol_for_aether(trial, "Ann")
    coordinator = client_as("coordinator")
    page = coordinator.get("/participants/001/").content.decode()
    assert '<option value="C1">C1: DL1 (20 × 10⁶ cells)</option>' in page and 'value="C2"' not in page  # only the open cohort
    assert coordinator.post("/participants/001/cohort/", {"cohort": "C2"}).status_code == 302  # a cohort not offered
    assert "Not assigned: cohort C2 (DL2) is not open" in coordinator.get("/participants/001/").content.decode()
    coordinator.post("/participants/001/cohort/", {"cohort": "C9" + "x" * 5000})  # no such cohort: named, cut short
    page = coordinator.get("/participants/001/").content.decode()
    assert f"Not assigned: no cohort &#x27;C9{'x' * 38}&#x27;; cohorts: C1, C2, C3" in page
    coordinator.post("/participants/001/cohort/", {"cohort": "C1"})
    page = coordinator.get("/participants/001/").content.decode()
    assert "<b>C1</b>: DL1 (20 × 10⁶ cells), assigned" in page and 'id="assign-cohort"' not in page
    entry = AuditEntry.objects.get(form="cohort_assignment", action="create")
    assert (entry.subject_id, entry.username, entry.changes["cohort"][1]) == ("001", "coordinator", "C1")
    assert "Cohort C1: DL1 (20 × 10⁶ cells)." in coordinator.get("/participants/001/infusions/new/").content.decode()
    table = client_as("dsmb").get("/safety/dsmb/decisions/").content.decode()
    assert "<td>001</td>" in table and "open: 2 of 3 places to assign" in table
    assert ann.cohort_assignments.get().cohort == "C1"
    assert client_as("monitor").post("/participants/001/cohort/", {"cohort": "C1"}).status_code == 403


@pytest.mark.django_db
def test_a_full_cohort_is_not_offered_and_the_page_says_why(settings, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    settings.TRIALDESK_PROTOCOL = "nct02013700"
    people = [enrol_for_aether(trial, name) for name in ("Ann", "Bea", "Cy")]
    for p in people[:2]:
        assign(trial, p, "C1")
    assert 'value="C1"' in client_as("coordinator").get("/participants/003/").content.decode()  # one place left
    assign(trial, people[2], "C1")  # not yet dosed: the place is taken all the same
    enrol_for_aether(trial, "Di")
    page = client_as("coordinator").get("/participants/004/").content.decode()
    assert 'id="assign-cohort"' not in page and "no cohort is open with a place now" in page
    assert "Record infusion 1" not in page and "The first infusion is recorded once the participant is assigned to a cohort" in page
    assert "<li>C1: full: 0 of 3 dosed</li>" in page and "<li>C2: waits for the DSMB&#x27;s signed review of cohort C1</li>" in page


@pytest.mark.django_db
def test_the_dsmbs_signed_review_of_cohort_1_opens_cohort_2_on_the_desk(settings, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import record_dsmb_decision
    from trialdesk.edc.web import today

    settings.TRIALDESK_PROTOCOL = "nct02013700"
    people = [enrol_for_aether(trial, name, ago=80) for name in ("Ann", "Bea", "Cy", "Di")]
    for k, p in enumerate(people[:3]):
        assign(trial, p, "C1")
        trial.infuse(p, ago=62 - k, total_cells=20e6)
    page = client_as("dsmb").get("/safety/dsmb/decisions/").content.decode()
    assert "waits for the DSMB&#x27;s signed review of cohort C1" in page and "full; DLT window closed" in page
    assert "3+3 rule" in page and "DL2 (100 × 10⁶ cells)" in page
    dsmb = trial.users["dsmb"]
    closed_on = days_ago(60) + dt.timedelta(days=29)  # the day after the last C1 participant's 28-day window
    record_dsmb_decision(dsmb, kind="continue", decided_on=today(), report_cutoff=closed_on, rationale="C1: no DLT in 3",
                         password=PASSWORD, printed_name=dsmb.get_full_name())
    assign(trial, people[3], "C2")
    assert trial.infuse(people[3], ago=1, total_cells=100e6).dose_text == "100 × 10⁶ cells"
    page = client_as("dsmb").get("/safety/dsmb/decisions/").content.decode()
    assert "reviewed by the DSMB: escalate, opens C2" in page


@pytest.mark.django_db
def test_a_dose_level_given_in_two_cohorts_is_given_by_assignment(settings, trial, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A 3+3 expansion listed in the protocol (C2 gives DL1 again): the desk used to refuse every DL1 dose, unable to
    tell C1 from C2; with the cohort assigned, C1's doses go through and C2 stays closed until the DSMB opens it."""
    settings.TRIALDESK_PROTOCOL = aether_with_cohorts(tmp_path / "aether-expansion", """    - {id: C1, dose_level: DL1, size: 3}
    - {id: C2, dose_level: DL1, size: 3}
    - {id: C3, dose_level: DL2, size: 3}
""")
    ann, bea = (enrol_for_aether(trial, name) for name in ("Ann", "Bea"))
    assign(trial, ann, "C1")
    assert trial.infuse(ann, ago=20, total_cells=20e6).dose_text == "20 × 10⁶ cells"
    with pytest.raises(ConductError, match=r"cohort C2 \(DL1\) is not open: it opens only with the DSMB's signed decision after"
                                           r" cohort C1's DLT window"):
        assign(trial, bea, "C2")


@pytest.mark.django_db
def test_the_data_cut_carries_the_cohort_assigned_by_its_cutoff(settings, trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.snapshot import trial_data

    settings.TRIALDESK_PROTOCOL = "nct02013700"
    ann = enrol_for_aether(trial, "Ann")
    enrol_for_aether(trial, "Bea")
    assign(trial, ann, "C1")
    assert trial_data(days_ago(0)).cohort_assignments() == {"001": "C1"}  # assigned today, Bea not yet
    assert trial_data(days_ago(1)).cohort_assignments() == {}  # a cut of yesterday: not yet assigned


@pytest.mark.django_db
def test_an_assignment_chosen_in_error_is_marked_so_before_the_first_infusion(settings, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit.models import AuditEntry
    from trialdesk.edc.dosing.models import CohortAssignment

    settings.TRIALDESK_PROTOCOL = "nct02013700"
    ann, bea, cy, di = (enrol_for_aether(trial, name) for name in ("Ann", "Bea", "Cy", "Di"))
    for p in (ann, bea, cy):
        assign(trial, p, "C1")
    coordinator = client_as("coordinator")
    assert "assignment entered in error" in coordinator.get("/participants/003/").content.decode()
    response = coordinator.post("/participants/003/cohort/entered-in-error/", {"error_reason": "assigned the wrong participant",
                                                                              "version": 1})
    assert response.status_code == 302 and CohortAssignment.in_force() == {"001": "C1", "002": "C1"}
    assert AuditEntry.objects.filter(form="cohort_assignment", action="update", subject_id="003").count() == 1
    assert CohortAssignment.with_voided.filter(participant=cy).get().entered_in_error  # kept, struck out of every count
    assign(trial, di, "C1")  # the place it held is free again
    trial.infuse(ann, ago=20, total_cells=20e6)
    page = coordinator.post("/participants/001/cohort/entered-in-error/", {"error_reason": "assigned the wrong cohort", "version": 1})
    assert page.status_code == 422
    assert "first infusion was given in the assignment of 001 to cohort C1; mark infusion 1 entered in error first" in page.content.decode()
    assert CohortAssignment.in_force()["001"] == "C1"


@pytest.mark.django_db
def test_the_api_assigns_an_open_cohort_and_refuses_one_not_open(settings, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    settings.TRIALDESK_PROTOCOL = "nct02013700"
    enrol_for_aether(trial, "Ann")
    api = client_as("coordinator")
    refused = api.post("/api/participants/001/cohort", {"cohort": "C2"}, content_type="application/json")
    assert refused.status_code == 422 and "cohort C2 (DL2) is not open" in refused.json()["detail"]
    given = api.post("/api/participants/001/cohort", {"cohort": "C1"}, content_type="application/json")
    assert given.status_code == 201 and given.json()["cohort"] == "C1"
    assert api.post("/api/participants/404/cohort", {"cohort": "C1"}, content_type="application/json").status_code == 422
    assert client_as("monitor").post("/api/participants/001/cohort", {"cohort": "C1"}, content_type="application/json").status_code == 403


@pytest.mark.django_db
def test_the_casebook_the_pi_signs_names_the_cohort(settings, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.casebook.service import content

    settings.TRIALDESK_PROTOCOL = "nct02013700"
    ann = enrol_for_aether(trial, "Ann")
    before = content(ann)
    assert "cohort_assignment" not in before["participant"]
    assert "<dt>Cohort</dt>" not in client_as("pi").get("/participants/001/casebook/").content.decode()
    assign(trial, ann, "C1")
    assert content(ann)["participant"]["cohort_assignment"]["cohort"] == "C1"  # what the signature covers
    page = client_as("pi").get("/participants/001/casebook/").content.decode()
    assert f"<dt>Cohort</dt><dd>C1, assigned {days_ago(0):%Y-%m-%d}</dd>" in page

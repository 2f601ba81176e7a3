"""Two people at once: the second editor of a form is told and loses nothing; two
coordinators enrolling into the last slot at the same instant enrol exactly one person; two API
requests recording a participant's infusion at once store one infusion 1 (the number is counted
under the same lock as the insert)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.durability.conftest import REPO, Cluster, workload, workload_env
from tests.edc.conftest import days_ago


def _vital_signs(visit: Any, sysbp: int, **extra: str) -> dict[str, str]:
    return {"vs_date": visit.done_on.isoformat(), "sysbp": str(sysbp), "diabp": "80", "pulse": "70", **extra}


def _crf_url(visit: Any) -> str:
    return f"/participants/{visit.participant.subject_id}/visits/{visit.code}/vital_signs/"


@pytest.fixture
def d0(trial):  # type: ignore[no-untyped-def]
    participant = trial.enrol()
    trial.infuse(participant)
    return participant.visits.get(infusion_number=1)


def test_second_nurse_saving_the_same_vital_signs_is_told_and_keeps_her_entries(d0, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit.models import AuditEntry
    from trialdesk.edc.visits.models import FormEntry

    coordinator, investigator = client_as("coordinator"), client_as("sub_investigator")
    assert coordinator.post(_crf_url(d0), _vital_signs(d0, 120, version="")).status_code == 302
    entry = FormEntry.objects.get(visit=d0, form="vital_signs")
    # both open the saved form at version 1 and correct the blood pressure
    first = coordinator.post(_crf_url(d0), _vital_signs(d0, 131, version=str(entry.version), reason="re-read the chart"))
    assert first.status_code == 302
    second = investigator.post(_crf_url(d0), _vital_signs(d0, 142, version=str(entry.version), reason="monitor's query"))
    html = second.content.decode()
    assert second.status_code == 422 and "changed by someone else" in html
    assert 'value="142"' in html, "the second writer's entry must stay in the form"
    assert "Saved by someone else meanwhile" in html and "131" in html, "the value saved meanwhile must be shown beside it"
    entry.refresh_from_db()
    assert entry.data["sysbp"] == 131 and entry.version == 2
    assert AuditEntry.objects.filter(model="visits.FormEntry", object_id=str(entry.pk), action="update").count() == 1
    # having compared, she saves again on the version she now sees
    again = investigator.post(_crf_url(d0), _vital_signs(d0, 142, version="2", reason="monitor's query"))
    assert again.status_code == 302
    entry.refresh_from_db()
    assert entry.data["sysbp"] == 142 and entry.version == 3


def test_two_nurses_entering_a_form_for_the_first_time_do_not_overwrite_each_other(d0, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import FormEntry

    # both opened the empty form (no version), the coordinator saved first
    assert client_as("coordinator").post(_crf_url(d0), _vital_signs(d0, 118, version="")).status_code == 302
    late = client_as("sub_investigator").post(_crf_url(d0), _vital_signs(d0, 125, version=""))
    html = late.content.decode()
    assert late.status_code == 422 and "changed by someone else" in html and 'value="125"' in html
    entry = FormEntry.objects.get(visit=d0, form="vital_signs")
    assert entry.data["sysbp"] == 118 and entry.version == 1


def test_second_investigator_updating_the_same_adverse_event_is_told(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import record_adverse_event

    participant = trial.enrol()
    trial.infuse(participant)
    ae = record_adverse_event(trial.users["coordinator"], participant, term="Headache", grade=1, description="after the infusion",
                              onset=days_ago(19), resolved=None, serious=False, seriousness=[], relatedness="unrelated",
                              outcome="unknown", action_taken="none", learned_at=None, suggested_from="")
    form = {"term": "Headache", "grade": "1", "description": "after the infusion", "onset": days_ago(19).isoformat(),
            "serious": "no", "relatedness": "unrelated", "action_taken": "none", "version": str(ae.version)}
    first = client_as("pi").post(f"/adverse-events/{ae.pk}/edit/", {**form, "outcome": "recovered", "resolved": days_ago(17).isoformat(),
                                                                     "reason": "resolved at the day-7 visit"})
    assert first.status_code == 302, first.content.decode()[-2000:]
    second = client_as("sub_investigator").post(f"/adverse-events/{ae.pk}/edit/", {**form, "outcome": "not_recovered",
                                                                                    "grade": "2", "reason": "worse on the phone"})
    html = second.content.decode()
    assert second.status_code == 200 and "changed by someone else" in html
    ae.refresh_from_db()
    assert (ae.outcome, ae.grade, ae.version) == ("recovered", 1, 2)


# --- the last slot ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_three_coordinators_enrolling_into_the_last_of_ten_slots_at_once_enrol_exactly_one(cluster: Cluster) -> None:
    url = cluster.database("trialdesk_last_slot")
    prepared = workload(url, "prepare", "--enrol", "9", "--infuse", "0", "--ready", "3")
    assert len(prepared["enrolled"]) == 9
    at = time.time() + 6.0  # every process has started Django and connected by then
    racers = [subprocess.Popen([sys.executable, "-m", "tests.durability.workload", "enrol", "--screening", number, "--at", str(at)],
                               env=workload_env(url), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for number in prepared["ready"]]
    results = []
    for proc in racers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    enrolled = [r for r in results if r["enrolled"]]
    refused = [r for r in results if r["refusal"]]
    assert len(enrolled) == 1, results
    assert enrolled[0]["enrolled"] == "010"
    assert len(refused) == 2 and all("enrolment target of 10 participants is reached" in r["refusal"] for r in refused), results
    count = cluster.pg.psql("trialdesk_last_slot", "SELECT count(*) FROM participants_participant")
    assert count.strip() == "10"


# --- two API requests recording an infusion ---------------------------------------------------------


def _race(cluster: Cluster, name: str, first_ago: int, second_ago: int) -> dict[str, Any]:
    url = cluster.database(name)
    workload(url, "prepare", "--enrol", "0")
    result = workload(url, "race-infusions", "--first-ago", str(first_ago), "--second-ago", str(second_ago))
    assert all(a is not None for a in result["answers"]), result  # both requests answered (no thread died)
    return result


@pytest.mark.slow
def test_two_api_requests_recording_the_same_infusion_at_once_store_one_infusion_1_and_refuse_the_other(cluster: Cluster) -> None:
    result = _race(cluster, "trialdesk_infusion_race_same", 20, 20)
    (first_status, first_body), (second_status, second_body) = result["answers"]
    assert first_status == 201 and json.loads(first_body)["number"] == 1, result
    assert second_status == 422, result  # a refusal the client can show, not a server error
    refusal = json.loads(second_body)
    # counted under the lock, the second request is the infusion after infusion 1, and on the same day it is refused as such
    assert refusal["field"] == "date" and refusal["detail"].startswith("infusion 2 "), refusal
    assert result["stored"] == [[1, days_ago(20).isoformat()]], result


@pytest.mark.slow
def test_the_next_infusion_posted_while_the_first_is_being_stored_becomes_infusion_2(cluster: Cluster) -> None:
    result = _race(cluster, "trialdesk_infusion_race_next", 50, 22)  # 28 days apart: the protocol's interval
    assert [a[0] for a in result["answers"]] == [201, 201], result
    assert [json.loads(a[1])["number"] for a in result["answers"]] == [1, 2], result
    assert result["stored"] == [[1, days_ago(50).isoformat()], [2, days_ago(22).isoformat()]], result

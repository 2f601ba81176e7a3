"""Every role against every action in the permission table, through the server: a role the
table allows is not refused, every other role gets 403. Generated from the table itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from trialdesk.edc.permissions import ROLES, TABLE, allowed

from .conftest import days_ago


def _scenario(trial) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.service import record_pause
    from trialdesk.edc.quality.service import raise_query

    p = trial.enrol()
    inf = trial.infuse(p)
    entry = trial.screen("Second")
    q = raise_query(trial.users["monitor"], p, target="x", text="check")
    pause = record_pause(trial.users["pi"], rule_id="S3", action="", since=days_ago(1), description="")
    from .test_adverse_events import record

    sae = record(trial, p, term="Lung infection", grade=3, serious=True, seriousness=["hospitalisation"])
    return {"p": p, "inf": inf, "entry": entry, "q": q, "pause": pause, "sae": sae}


Request = Callable[[Any, dict[str, Any]], Any]

#: action -> how to exercise it over HTTP
ENDPOINTS: dict[str, Request] = {
    "view_identified": lambda c, s: c.get("/screening/"),
    "view_participants": lambda c, s: c.get("/participants/"),
    "view_reports": lambda c, s: c.get("/pauses/"),
    "view_audit": lambda c, s: c.get("/audit/"),
    "export_audit": lambda c, s: c.get("/audit/?format=csv"),
    "verify_audit": lambda c, s: c.get("/audit/verify/"),
    "screen": lambda c, s: c.get("/screening/import/candidates/"),
    "sign_eligibility": lambda c, s: c.get(f"/screening/{s['entry'].number}/sign/"),
    "record_consent": lambda c, s: c.get(f"/screening/{s['entry'].number}/consent/"),
    "withdraw_consent": lambda c, s: c.get("/participants/001/withdraw/"),
    "enrol": lambda c, s: c.get(f"/screening/{s['entry'].number}/enrol/"),
    "record_infusion": lambda c, s: c.get("/participants/001/infusions/new/"),
    "view_forms": lambda c, s: c.get("/participants/001/visits/D1/vital_signs/"),
    "record_deviation": lambda c, s: c.post("/deviations/", {"category": "other", "date": days_ago(1).isoformat(), "description": "d",
                                                              "reason": "r"}),
    "record_visit": lambda c, s: c.post("/participants/001/visits/D1/vital_signs/", {"vs_date": days_ago(1).isoformat()}),
    "mark_off_study": lambda c, s: c.get("/participants/001/off-study/"),
    "raise_query": lambda c, s: c.post("/queries/", {"action": "raise", "subject_id": "001", "target": "t", "text": "q"}),
    "answer_query": lambda c, s: c.post("/queries/", {"action": "answer", "query": s["q"].pk, "answer": "a"}),
    "close_query": lambda c, s: c.post("/queries/", {"action": "close", "query": s["q"].pk}),
    "verify_source": lambda c, s: c.post("/sdv/", {"model": "dosing.Infusion", "object_id": s["inf"].pk}),
    # no limit given: a role that may is told to give one (422), nothing is stored; anyone else is refused (403)
    "manage_lab_ranges": lambda c, s: c.post("/labs/ranges/", {"laboratory": "Core lab", "analyte": "hgb",
                                                               "effective_from": days_ago(1).isoformat()}),
    "lock_casebook": lambda c, s: c.post("/participants/001/lock/", {"lock": "1"}),
    # no password: the PI is told to give it (422), nothing is signed; anyone else is refused (403)
    "sign_casebook": lambda c, s: c.post("/participants/001/casebook/sign/", {"printed_name": "x"}),
    "pause_trial": lambda c, s: c.post("/pauses/", {"rule_id": "S1", "since": days_ago(0).isoformat()}),
    "lift_pause": lambda c, s: c.post("/pauses/", {"lift": s["pause"].pk, "note": "DSMB reviewed"}),
    "view_ae": lambda c, s: c.get("/adverse-events/"),
    "record_ae": lambda c, s: c.get("/adverse-events/new/"),
    "view_safety_dashboard": lambda c, s: c.get("/safety/"),
    "view_dsmb_report": lambda c, s: c.get("/safety/dsmb/"),
    "record_dsmb_decision": lambda c, s: c.post("/safety/dsmb/decisions/", {"kind": "continue"}),
    "record_death": lambda c, s: c.get("/participants/001/death/"),
    # no choice: the PI is told to choose (422), nothing is stored; anyone else is refused (403)
    "assess_expectedness": lambda c, s: c.post(f"/adverse-events/{s['sae'].pk}/expectedness/", {"expected": ""}),
    "print_medwatch": lambda c, s: c.get(f"/adverse-events/{s['sae'].pk}/medwatch/"),
    "export_results": lambda c, s: c.get("/exports/"),
    "export_identified": lambda c, s: c.post("/exports/sdtm/", {"cutoff": days_ago(0).isoformat(), "identified": "on",
                                                             "export_anyway": "on"}),
    "manage_users": lambda c, s: c.get("/users/"),
}


def test_every_action_in_the_table_has_an_endpoint_under_test() -> None:
    assert set(ENDPOINTS) == set(TABLE)


@pytest.mark.parametrize("action", sorted(TABLE))
def test_each_role_is_allowed_or_refused_as_the_table_says(action: str, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    scenario = _scenario(trial)
    wrong = []
    for role in ROLES:
        response = ENDPOINTS[action](client_as(role), scenario)
        refused = response.status_code == 403
        if refused == (role in TABLE[action]):
            wrong.append(f"{role}: HTTP {response.status_code}")
    assert not wrong, f"{action}: " + "; ".join(wrong)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_templates_hide_what_a_role_may_not_do(role: str, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.screen()
    page = client_as(role).get("/").content.decode()
    assert ('href="/users/"' in page) == allowed(trial.users[role], "manage_users")
    assert ('href="/screening/"' in page) == allowed(trial.users[role], "view_identified")
    assert ('href="/audit/"' in page) == allowed(trial.users[role], "view_audit")


def test_dsmb_and_sponsor_see_subject_ids_only(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.infuse(trial.enrol())
    for role in ("dsmb", "sponsor"):
        c = client_as(role)
        for url in ("/participants/", "/participants/001/"):
            page = c.get(url).content.decode()
            assert "001" in page and "Lovelace" not in page and "MRN-" not in page and "S-0001" not in page
        api = c.get("/api/participants").json()
        assert api == [{"subject_id": "001", "sex": "female", "status": "on_study", "enrolled_on": days_ago(25).isoformat(),
                        "infusions": 1, "screening_number": None}]
    assert "Lovelace" in client_as("coordinator").get("/participants/").content.decode()


def test_api_refuses_an_action_the_role_may_not_take(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    r = client_as("monitor").post("/api/screening", {"given_name": "A", "family_name": "B", "screened_on": days_ago(0).isoformat()},
                                  content_type="application/json")
    assert r.status_code == 403


def test_anonymous_users_are_sent_to_sign_in(db, client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/participants/")
    assert r.status_code == 302 and r["Location"].startswith("/login/")
    assert client.get("/api/participants").status_code == 401

"""The dashboard's counts agree with the pages they lead to: an answered query is no longer open; at the
enrolment target no page offers Enrol."""

from __future__ import annotations

import re


def test_an_answered_query_is_not_counted_open(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.service import answer_query, raise_query

    p = trial.enrol()
    q = raise_query(users["monitor"], p, target="Vital signs", text="check the pulse")
    tile = re.compile(r"<b>(\d+)</b><span><a href=\"/queries/\">open queries</a>")
    assert tile.search(client_as("coordinator").get("/").content.decode()).group(1) == "1"
    answer_query(users["coordinator"], q, answer="confirmed against the source", version=q.version)
    assert tile.search(client_as("coordinator").get("/").content.decode()).group(1) == "0"


def test_no_enrol_is_offered_once_the_target_is_reached(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.web import protocol

    target = protocol().enrolment.target
    entry = trial.ready("Eleventh")
    assert 'name="enrol"' in client_as("coordinator").get(f"/screening/{entry.number}/").content.decode()
    for i in range(target):
        trial.enrol(f"P{i:02d}")
    page = client_as("coordinator").get(f"/screening/{entry.number}/").content.decode()
    dashboard = client_as("coordinator").get("/").content.decode()
    assert 'name="enrol"' not in page and f"enrolment target of {target} participants is reached" in page
    assert "the enrolment target is reached" in dashboard

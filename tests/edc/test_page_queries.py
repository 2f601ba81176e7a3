"""What a page view reads: the participant's page (and the AE pages) read that participant's records,
not the whole trial's data cut, so the page costs the same however many others are in the trial."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from trialdesk.edc.adverse_events.models import AdverseEvent

from .conftest import at_days_ago, days_ago

NAMES = ["Grace", "Emmy", "Sofia", "Mary", "Hedy", "Rosalind", "Barbara", "Lise"]


def _ae(trial, participant, **overrides: Any) -> AdverseEvent:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import record_adverse_event

    values: dict[str, Any] = {"term": "Headache", "grade": 1, "description": "headache", "onset": days_ago(18), "resolved": None,
                              "serious": False, "seriousness": [], "relatedness": "unrelated", "outcome": "recovering",
                              "action_taken": "none", "learned_at": at_days_ago(17), "suggested_from": ""}
    return record_adverse_event(trial.users["coordinator"], participant, **(values | overrides))


def _other(trial, name: str) -> None:  # type: ignore[no-untyped-def]
    """Another participant with adverse events of their own (one before enrolment's infusion window)."""
    p = trial.enrol(name)
    _ae(trial, p, term="Nausea", onset=days_ago(12), learned_at=at_days_ago(12))
    _ae(trial, p, term="Fatigue", onset=days_ago(5), learned_at=at_days_ago(5))


def _page(client, subject_id: str) -> tuple[int, str, list[str]]:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(f"/participants/{subject_id}/")
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode(), [q["sql"] for q in ctx.captured_queries]


def test_the_participant_page_reads_as_much_with_one_or_eight_other_participants(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    ada = trial.enrol("Ada")
    trial.infuse(ada, ago=20)
    _ae(trial, ada)
    _other(trial, NAMES[0])
    coordinator = client_as("coordinator")
    with_one, html_one, _ = _page(coordinator, ada.subject_id)
    for name in NAMES[1:]:
        _other(trial, name)
    with_eight, html_eight, sql = _page(coordinator, ada.subject_id)
    assert with_one == with_eight, f"the page read {with_one} queries with 1 other participant and {with_eight} with 8"
    # what the coordinator sees is the same: Ada's AE, attributed to her infusion
    assert "infusion 1 (" in html_one and "2 days after it" in html_one
    assert html_eight.count("Headache") == html_one.count("Headache") >= 1
    # the page reads only this participant's visits' forms (the whole data cut read every lab and vital sign of the trial)
    whole_tables = [q for q in sql if " WHERE " not in q and any(f'FROM "{t}"' in q for t in ("visits_formentry", "visits_visit",
                                                                                                 "adverse_events_adverseevent"))]
    assert not whole_tables, whole_tables


def test_the_attribution_of_a_participants_aes_is_the_data_cuts(trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events import service

    ada = trial.enrol("Ada")
    trial.infuse(ada, ago=20)
    before = _ae(trial, ada, term="Nausea", onset=days_ago(22), learned_at=at_days_ago(22))  # before the infusion: pre-treatment
    after = _ae(trial, ada)
    _other(trial, "Grace")
    aes = list(AdverseEvent.objects.select_related("participant"))
    whole = service.attributions()
    assert service.attributions_of(aes) == whole
    own = service.attributions_of([before, after])
    assert own[before.ae_id].pre_treatment and own[after.ae_id].infusion_number == 1 and own[after.ae_id].days_after_infusion == 2


def test_every_page_names_its_icon_so_the_browser_does_not_ask_the_application_for_one(client) -> None:  # type: ignore[no-untyped-def]
    """Without an icon link, a browser requests /favicon.ico from the application itself (a
    404 that loads the session from the database), alongside the page's own requests."""
    from pathlib import Path

    import trialdesk.edc

    page = client.get("/login/").content.decode()
    assert '<link rel="icon" href="/static/edc/favicon.svg"' in page
    icon = Path(trialdesk.edc.__file__).parent / "static" / "edc" / "favicon.svg"
    assert icon.read_text().startswith("<svg")

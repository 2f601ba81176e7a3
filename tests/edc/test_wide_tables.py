"""Wide tables scroll inside their card on a narrow screen: every grid on the lists and the safety
dashboard sits in the same ``table-scroll`` wrapper as the participant page's tables."""

from __future__ import annotations

import re

import pytest

from .conftest import at_days_ago, days_ago


@pytest.mark.parametrize("url", ["/screening/", "/participants/", "/adverse-events/", "/safety/", "/participants/001/", "/queries/",
                                 "/sdv/progress/", "/monitoring-report/", "/labs/ranges/", "/participants/001/visits/D1/vital_signs/"])
def test_every_table_on_the_lists_and_the_safety_dashboard_scrolls_within_its_card(trial, client_as, url: str) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import record_adverse_event

    p = trial.enrol("Ada")
    trial.infuse(p, ago=20)
    record_adverse_event(trial.users["coordinator"], p, term="Headache", grade=1, description="headache", onset=days_ago(18),
                         resolved=None, serious=False, seriousness=[], relatedness="unrelated", outcome="recovering",
                         action_taken="none", learned_at=at_days_ago(17), suggested_from="")
    html = client_as("pi").get(url).content.decode()
    tables = re.findall(r"(.{0,40})<table\b", html, flags=re.S)
    assert tables, f"{url} shows no table"
    bare = [before for before in tables if not before.endswith('<div class="table-scroll">')]
    assert not bare, f"{url}: {len(bare)} of {len(tables)} tables are not in a table-scroll wrapper"
    from pathlib import Path

    from django.contrib.staticfiles import finders

    assert ".table-scroll { overflow-x: auto" in Path(str(finders.find("edc/app.css"))).read_text(encoding="utf-8")

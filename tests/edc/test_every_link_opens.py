"""Every link a role is offered opens: each role signs in, follows every link from the dashboard on a trial
with a participant who has an infusion, visits with forms entered, an SAE with follow-up and a query, and
no page it reaches answers 403 (or fails). Monitors read every form's data at their site; the DSMB and
the sponsor see study days on every page they reach, never a participant's calendar date, name or the
instant the site learned of an event."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import dateformat

from trialdesk.edc.permissions import ROLES

from .conftest import at_days_ago, days_ago
from .test_adverse_events import record

HREF = re.compile(r'href="(/[^"#]*)"')
#: what a page a person opens may lead to without being a page of its own
NOT_PAGES = ("/static/", "/logout/", "/api/")


@pytest.fixture
def busy_trial(trial, users) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import add_follow_up
    from trialdesk.edc.quality.service import raise_query
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit, save_form

    p = trial.enrol()
    trial.infuse(p, ago=20)
    visit = Visit.objects.filter(participant=p, day__gt=0).order_by("day").first()
    visit = record_visit(users["coordinator"], visit, done_on=visit.target, version=visit.version)
    lab = save_form(users["coordinator"], visit, "laboratory", {"lb_date": visit.target, "alt": 35.0, "alt_uln": 40.0}) \
        if "laboratory" in visit.forms else None
    sae = record(trial, p, term="Lung infection", grade=3, serious=True, seriousness=["hospitalisation"], onset=days_ago(10),
                 learned_at=at_days_ago(9, hour=14), relatedness="possibly")
    add_follow_up(users["coordinator"], sae, received_at=at_days_ago(8), information="discharged home")
    raise_query(users["monitor"], p, target="Laboratory, ALT", text="please confirm the value against the source")
    late = Visit.objects.filter(participant=p, day__gt=visit.day, latest__lt=days_ago(1)).order_by("day").first()
    if late is not None:
        record_visit(users["coordinator"], late, done_on=late.latest + dt.timedelta(days=1), version=late.version,
                     out_of_window_reason="the participant was travelling")
    trial.screen("Zoe")  # awaiting the investigator's review
    return {"participant": p, "visit": visit, "lab": lab, "sae": sae}


def _reachable(client: Any) -> dict[str, int]:
    """Every page reachable by links from the dashboard, and the status it answered."""
    seen: dict[str, int] = {}
    todo = ["/"]
    while todo and len(seen) < 400:
        url = todo.pop()
        if url in seen:
            continue
        response = client.get(url)
        seen[url] = response.status_code
        if response.status_code == 200 and "html" in response.get("Content-Type", ""):
            for href in HREF.findall(response.content.decode()):
                href = href.replace("&amp;", "&")
                if not href.startswith(NOT_PAGES) and href not in seen:
                    todo.append(href)
    return seen


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_no_link_a_role_is_offered_leads_to_a_refusal(busy_trial, client_as, role) -> None:  # type: ignore[no-untyped-def]
    seen = _reachable(client_as(role))
    refused = sorted(url for url, status in seen.items() if status == 403 or status >= 500)
    assert refused == [], f"{role} is offered links it may not open: {refused}"


def test_the_monitor_reads_every_form_of_a_visit_and_changes_nothing(busy_trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import FormEntry

    visit, monitor = busy_trial["visit"], client_as("monitor")
    seen = _reachable(monitor)
    for form_id in visit.forms:
        if form_id in ("infusion", "adverse_events"):
            continue
        url = f"/participants/001/visits/{visit.code}/{form_id}/"
        assert seen.get(url) == 200, f"the monitor cannot open {url}"
    page = monitor.get(f"/participants/001/visits/{visit.code}/laboratory/").content.decode()
    assert "35.0" in page and 'id="read-only"' in page and 'name="alt"' not in page  # the value, read only
    before = FormEntry.objects.get(form="laboratory").data
    response = monitor.post(f"/participants/001/visits/{visit.code}/laboratory/", {"lb_date": visit.target.isoformat(), "alt": "99"})
    assert response.status_code == 403 and FormEntry.objects.get(form="laboratory").data == before


#: pages left out of the de-identification crawl (none: the safety dashboard and the DSMB pages are held to it too)
SAFETY_PAGES: tuple[str, ...] = ()


def _shown(d: dt.date) -> tuple[str, ...]:
    return d.isoformat(), dateformat.format(d, "N j, Y"), dateformat.format(d, "Y-m-d")


@pytest.mark.parametrize("role", ["dsmb", "sponsor"])
def test_dsmb_and_sponsor_see_study_days_never_calendar_dates_names_or_learned_at_times(busy_trial, client_as, role) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    p, sae = busy_trial["participant"], busy_trial["sae"]
    today = timezone.localdate()
    dates = {p.enrolled_on, p.current_consent().signed_at.date(), days_ago(20), sae.onset, timezone.localtime(sae.learned_at).date()}
    dates |= {d for v in p.visits.all() for d in (v.target, v.earliest, v.latest, v.done_on) if d}
    dates.discard(today)  # the page footer says the site's date today
    client = client_as(role)
    seen = _reachable(client)
    assert "/participants/001/" in seen and f"/adverse-events/{sae.pk}/" in seen
    for url, status in seen.items():
        if status != 200 or url.startswith(SAFETY_PAGES):
            continue
        response = client.get(url)
        if "html" not in response.get("Content-Type", ""):
            continue
        page = response.content.decode()
        for identifier in ("Lovelace", "MRN-Ada", "1960-05-01", "S-0001"):
            assert identifier not in page, f"{url} shows {identifier!r} to the {role}"
        for d in sorted(dates):
            for text in _shown(d):
                assert text not in page, f"{url} shows the calendar date {text} to the {role}"
    detail = client.get("/participants/001/").content.decode()
    assert "day 0" in detail  # the first infusion, as a study day


#: codes a page must say in words
RAW_CODES = ("out_of_window", "needs_review", "pause_enrolment_and_dosing", "not_eligible", "not_started", "10^6",
             "visit_out_of_window", "may_be_eligible", "probably_not_eligible", "on_study", "off_study", "screen_failed",
             "not_met", "due_soon", "pause_dosing", "stop_trial", "life_threatening", "important_medical_event",
             "recovered_with_sequelae", "not_recovered", "infusion_withheld", "treatment_given", "vital_signs",
             "six_minute_walk", "pulmonary_function")


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_no_page_shows_a_raw_status_code(busy_trial, client_as, role) -> None:  # type: ignore[no-untyped-def]
    client = client_as(role)
    for url, status in _reachable(client).items():
        if status != 200 or url.startswith(SAFETY_PAGES) or "format=csv" in url:
            continue
        response = client.get(url)
        if "html" not in response.get("Content-Type", ""):
            continue
        text = re.sub(r"<[^>]*>", " ", response.content.decode())  # what a person reads: tags and their attributes left out
        for code in RAW_CODES:
            assert code not in text, f"{url} shows {code!r} to the {role}"

"""The trial desk as the people who work in it all day use it, in a real browser (Debian's chromium via
Playwright): the coordinator records an adverse event whose clinical judgements start unanswered, the
monitor reads every form at the site and changes nothing. Screenshots go to $TRIALDESK_ARTIFACTS/browser-desk."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from .conftest import days_ago
from .test_browser import ARGS, CHROMIUM, SHOTS, _login

DESK_SHOTS = SHOTS.parent / "browser-desk"


def _shot(page: Page, name: str) -> None:
    DESK_SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DESK_SHOTS / f"{name}.png"), full_page=True)


@contextlib.contextmanager
def browser_page() -> Iterator[Page]:
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the live server thread uses the ORM while Playwright's loop runs here
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield browser.new_page(viewport={"width": 1366, "height": 900})
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.mark.slow
def test_the_coordinator_must_answer_every_clinical_judgement_of_an_ae(live_server, trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.models import AdverseEvent

    trial.infuse(trial.enrol())
    base = live_server.url
    with browser_page() as page:
        _login(page, base, "coordinator")
        page.goto(f"{base}/adverse-events/new/")
        for field in ("grade", "serious", "relatedness", "outcome", "action_taken"):
            assert page.input_value(f"#id_{field}") == "", f"{field} is pre-selected"
        page.select_option("#id_subject_id", "001")
        page.fill("#id_term", "Headache")
        page.fill("#id_onset", days_ago(2).isoformat())
        page.wait_for_load_state("networkidle")  # the term search has answered (one request at a time on the test's SQLite)
        page.click("button[type=submit]")
        # every unanswered judgement is named at once, each at its own field; nothing stored
        for field in ("grade", "serious", "relatedness", "outcome", "action_taken"):
            assert page.locator(f'p.error[data-field="{field}"]').count() == 1, field
        _shot(page, "ae-judgements-required")
        assert AdverseEvent.objects.count() == 0
        page.fill("#id_term", "Headache")
        page.wait_for_load_state("networkidle")
        page.select_option("#id_grade", "1")
        page.select_option("#id_serious", "no")
        page.select_option("#id_relatedness", "unlikely")
        page.select_option("#id_outcome", "recovering")
        page.select_option("#id_action_taken", "none")
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/adverse-events/*/")
    ae = AdverseEvent.objects.get()
    assert (ae.grade, ae.serious, ae.relatedness, ae.outcome) == (1, False, "unlikely", "recovering")


@pytest.mark.slow
def test_the_monitor_reads_a_lab_form_and_the_dsmb_sees_study_days(live_server, trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit, save_form

    from .test_browser import _logout

    p = trial.enrol()
    trial.infuse(p, ago=20)
    visit = next(v for v in Visit.objects.filter(participant=p, day__gt=0).order_by("day") if "laboratory" in v.forms)
    visit = record_visit(users["coordinator"], visit, done_on=visit.target, version=visit.version)
    save_form(users["coordinator"], visit, "laboratory", {"lb_date": visit.target, "alt": 35.0, "alt_uln": 40.0})
    base = live_server.url
    with browser_page() as page:
        _login(page, base, "monitor")
        page.goto(f"{base}/participants/001/")
        page.click(f"text={visit.name}")
        page.click("text=Laboratory")
        assert page.locator("#read-only").is_visible()
        assert "35.0" in page.locator("#read-only").inner_text() and page.locator('input[name="alt"]').count() == 0
        _shot(page, "monitor-reads-lab-form")
        _logout(page)

        _login(page, base, "dsmb")
        page.goto(f"{base}/participants/001/")
        text = page.locator("main").inner_text() if page.locator("main").count() else page.content()
        assert "day 0" in text and p.enrolled_on.isoformat() not in page.content()
        assert page.locator(f'a[href="/participants/001/visits/{visit.code}/"]').count() == 0  # no link the DSMB may not open
        _shot(page, "dsmb-participant-study-days")


@pytest.mark.slow
def test_the_coordinator_enrols_the_same_evening_as_a_consent_signed_at_21_13(live_server, trial) -> None:  # type: ignore[no-untyped-def]
    entry = trial.screen()
    trial.sign(entry)
    day = days_ago(2).isoformat()
    base = live_server.url
    with browser_page() as page:
        _login(page, base, "coordinator")
        page.goto(f"{base}/screening/{entry.number}/")
        page.fill("#id_icf_version", "1.0 (2019-10-01)")
        page.fill("#id_signed_at", f"{day}T21:13")  # 02:13 UTC the next day
        page.fill("#id_obtained_by", "Coordinator Tester")
        page.check("#id_copy_given")
        page.click("button[name=record_consent]")
        page.wait_for_url(f"{base}/screening/{entry.number}/")
        assert f"{day} 21:13 E" in page.content()  # shown on the site's clock, with its zone (EST or EDT)
        page.fill("#id_enrolled_on", day)
        page.click("button[name=enrol]")
        page.wait_for_url(f"{base}/participants/001/")
        assert "Enrolled as subject 001" in page.content()
        _shot(page, "enrolled-same-evening-as-consent")


@pytest.mark.slow
def test_the_coordinator_marks_an_ae_entered_in_error_with_the_reason(live_server, trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.models import AdverseEvent

    from .test_adverse_events import record

    p = trial.enrol()
    trial.infuse(p)
    ae = record(trial, p)
    base = live_server.url
    with browser_page() as page:
        _login(page, base, "coordinator")
        page.goto(f"{base}/adverse-events/{ae.pk}/")
        page.click("text=Entered in error…")
        page.click("button.primary")
        assert page.locator('p.error[data-field="error_reason"]').count() == 1  # a reason is required
        page.fill("#id_error_reason", "entered for the wrong participant")
        page.click("button.primary")
        page.wait_for_url(f"{base}/adverse-events/{ae.pk}/")
        assert "Entered in error" in page.locator("#entered-in-error").inner_text()
        _shot(page, "ae-entered-in-error")
        page.goto(f"{base}/adverse-events/")
        assert f'href="/adverse-events/{ae.pk}/"' not in page.content()
    assert not AdverseEvent.objects.exists() and AdverseEvent.with_voided.count() == 1


@pytest.mark.slow
def test_the_coordinator_sees_every_error_of_a_form_and_explains_an_out_of_window_assessment(live_server, trial, users) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit

    p = trial.enrol()
    trial.infuse(p, ago=20)
    d7 = Visit.objects.get(participant=p, code="D7")
    record_visit(users["coordinator"], d7, done_on=d7.target, version=d7.version)
    late = (d7.latest + dt.timedelta(days=1)).isoformat()
    base = live_server.url
    with browser_page() as page:
        _login(page, base, "coordinator")
        page.goto(f"{base}/participants/001/visits/D7/vital_signs/")
        page.fill("#id_vs_date", late)
        page.fill("#id_sysbp", "80")
        page.fill("#id_diabp", "95")
        page.click("button[type=submit]")
        assert page.locator('p.error[data-field="vs_date"]').count() == 1 and page.locator('p.error[data-field="diabp"]').count() == 1
        _shot(page, "crf-all-errors-at-once")
        page.fill("#id_sysbp", "120")
        page.fill("#id_diabp", "80")
        page.fill("#id_out_of_window_reason", "the participant was admitted elsewhere")
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/participants/001/visits/D7/")
        page.click("nav >> text=Deviations")
        assert "the participant was admitted elsewhere" in page.locator("#deviations").inner_text()
        _shot(page, "deviation-log")

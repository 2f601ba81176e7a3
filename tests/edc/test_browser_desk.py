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
        page.click("button[type=submit]")
        # every unanswered judgement is named at once, each at its own field; nothing stored
        for field in ("grade", "serious", "relatedness", "outcome", "action_taken"):
            assert page.locator(f'p.error[data-field="{field}"]').count() == 1, field
        _shot(page, "ae-judgements-required")
        assert AdverseEvent.objects.count() == 0
        page.fill("#id_term", "Headache")
        page.select_option("#id_grade", "1")
        page.select_option("#id_serious", "no")
        page.select_option("#id_relatedness", "unlikely")
        page.select_option("#id_outcome", "recovering")
        page.select_option("#id_action_taken", "none")
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/adverse-events/*/")
    ae = AdverseEvent.objects.get()
    assert (ae.grade, ae.serious, ae.relatedness, ae.outcome) == (1, False, "unlikely", "recovering")

"""In a real browser (Debian's chromium via Playwright): the participant page shows each AE's
infusion, the coordinator prints the MedWatch 3500A summary of an SAE, the PI records a death,
and a DSMB member signs a decision to stop the trial. Screenshots go to $TRIALDESK_ARTIFACTS/browser-safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from .conftest import PASSWORD, days_ago
from .test_adverse_events import record
from .test_browser import ARGS, CHROMIUM, SHOTS, _login, _logout
from .test_death_dsmb_medwatch import FATAL

#: a folder of its own: the screening walk-through checks that its own shots end its folder
SAFETY_SHOTS = SHOTS.parent / "browser-safety"


def _shot(page: Page, name: str) -> None:
    SAFETY_SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SAFETY_SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.slow
def test_death_medwatch_and_a_dsmb_stop_in_the_browser(live_server, trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.models import DeathReport
    from trialdesk.edc.participants.models import Participant, Pause

    p = trial.enrol()
    trial.infuse(p, ago=25)
    sae = record(trial, p, term="Lung infection", grade=3, serious=True, seriousness=["hospitalisation"], onset=days_ago(10),
                 description="admitted with fever and cough")
    record(trial, p, **FATAL)
    base = live_server.url
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            _login(page, base, "coordinator")
            page.goto(f"{base}/participants/001/")
            assert "infusion 1 (0.75 × 10⁶ cells/kg), 15 days after it" in page.content()
            assert "death report due" in page.content()
            _shot(page, "safety-01-participant-attribution")
            page.goto(f"{base}/adverse-events/{sae.pk}/medwatch/")
            assert "A. Patient information" in page.content() and "missing: IND #" in page.content()
            _shot(page, "safety-02-medwatch-3500a")
            page.goto(f"{base}/")  # the summary is a bare printable page: log out from the desk
            _logout(page)

            _login(page, base, "pi")
            page.goto(f"{base}/participants/001/")
            page.click("text=Record death")
            page.fill("#id_causes", "Respiratory failure\nProgression of ILD")
            page.select_option("#id_autopsy", "no")
            page.select_option("#id_relatedness", "unlikely")
            page.fill("#id_narrative", "admitted with dyspnoea; died the same night")
            _shot(page, "safety-03-death-report")
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/participants/001/")
            assert "off study" in page.content().lower() and "No further visits or infusions" in page.content()
            _logout(page)

            _login(page, base, "dsmb")
            page.goto(f"{base}/safety/dsmb/decisions/")
            page.check('input[name="kind"][value="stop"]')
            page.fill("#id_report_cutoff", days_ago(1).isoformat())
            page.fill("#id_rationale", "a death and a hospitalisation in the first participant")
            page.fill("#id_printed_name", "Dsmb Tester")
            page.fill("#id_password", PASSWORD)
            _shot(page, "safety-04-dsmb-decision")
            page.click("button.primary")
            page.wait_for_url(f"{base}/safety/dsmb/decisions/")
            assert "The trial is stopped by the DSMB: no enrolment and no dosing, for good." in page.content()
            _shot(page, "safety-05-dsmb-stopped")
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    assert Participant.objects.get().status == "off_study" and DeathReport.objects.count() == 1
    assert Pause.objects.get(rule_id="DSMB").action == "stop_trial"

"""A coordinator walks from screening to the first infusion in a real browser (Debian's
chromium driven by Playwright), with the PI signing eligibility in between. Screenshots go
to $TRIALDESK_ARTIFACTS (default /tmp/trialdesk-artifacts/browser)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from .conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]
SHOTS = Path(os.environ.get("TRIALDESK_ARTIFACTS", "/tmp/trialdesk-artifacts")) / "browser"


def _days_ago(n: int) -> str:
    from django.utils import timezone

    return (timezone.localdate() - dt.timedelta(days=n)).isoformat()


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _login(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _logout(page: Page) -> None:
    page.click("form[action='/logout/'] button")


@pytest.mark.slow
def test_coordinator_walks_from_screening_to_the_first_infusion(live_server, settings) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.accounts.service import create_user
    from trialdesk.edc.web import protocol
    from trialdesk.trial.signoff import manual_worksheet, open_criteria

    for username, role, first in (("cora", "coordinator", "Cora"), ("ines", "pi", "Ines")):
        create_user(username, role, PASSWORD, first_name=first, last_name="Tester", validate=False, must_change_password=False)
    p = protocol()
    attestation_ids = sorted({aid for _, aid, _ in p.attestation_items()})
    to_decide = open_criteria(p, manual_worksheet(p, dt.date.today()))
    base = live_server.url
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the live server thread uses the ORM while Playwright's loop runs here
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            # the coordinator screens a patient by hand
            _login(page, base, "cora")
            _shot(page, "01-coordinator-dashboard")
            page.click("nav >> text=Screening")
            page.fill("#id_given_name", "Grace")
            page.fill("#id_family_name", "Hopper")
            page.fill("#id_mrn", "MRN-1906")
            page.fill("#id_birth_date", "1958-12-09")
            page.select_option("#id_sex", "female")
            page.fill("#id_screened_on", _days_ago(10))
            _shot(page, "02-screening-form")
            page.click("button[name=screen]")
            page.wait_for_url(f"{base}/screening/S-0001/")
            assert "Not yet signed by an investigator" in page.content()
            _shot(page, "03-screening-entry")
            _logout(page)

            # the PI answers every attestation, decides the open criteria, and signs
            _login(page, base, "ines")
            _shot(page, "04-pi-dashboard")
            page.click("text=S-0001")
            page.click("text=Review and sign eligibility")
            yes = {"consent_and_compliance", "ipaf", "no_improvement"}
            for aid in attestation_ids:
                page.check(f'input[name="answer_{aid}"][value="{"yes" if aid in yes else "no"}"]')
            for cid in to_decide:
                page.check(f'input[name="decision_{cid}"][value="{"met" if cid.startswith("I") else "not_met"}"]')
            page.fill("#id_password", PASSWORD)
            _shot(page, "05-eligibility-signoff")
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/screening/S-0001/")
            assert "Signed: Ines Tester" in page.content()
            _shot(page, "06-eligibility-signed")
            _logout(page)

            # the coordinator records consent, enrols, and records the first infusion
            _login(page, base, "cora")
            page.goto(f"{base}/screening/S-0001/")
            page.fill("#id_icf_version", "1.0 (2019-10-01)")
            page.fill("#id_signed_at", f"{_days_ago(9)}T10:00")
            page.fill("#id_obtained_by", "Cora Tester")
            page.check("#id_copy_given")
            page.click("button[name=record_consent]")
            page.wait_for_url(f"{base}/screening/S-0001/")
            page.fill("#id_enrolled_on", _days_ago(8))
            _shot(page, "07-consented")
            page.click("button[name=enrol]")
            page.wait_for_url(f"{base}/participants/001/")
            assert "Enrolled as subject 001" in page.content()
            _shot(page, "08-enrolled")
            page.click("text=Record infusion 1")
            page.fill("#id_date", _days_ago(7))
            page.fill("#id_started_at", "09:00")
            page.fill("#id_stopped_at", "09:45")
            page.fill("#id_weight_kg", "70")
            page.fill("#id_total_cells", str(int(0.49e6 * 70)))  # first a dose below the range
            page.fill("#id_lot", "MSC-LOT-0042")
            page.fill("#id_donor_id", "DONOR-7")
            page.fill("#id_before_sbp", "124")
            page.select_option("#id_interrupted", "no")
            page.click("button[type=submit]")
            assert "below the protocol" in page.content()
            _shot(page, "09-dose-refused")
            page.fill("#id_total_cells", "52500000")
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/participants/001/")
            assert "0.75 × 10⁶ cells/kg" in page.content()
            _shot(page, "10-first-infusion")
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)

    from trialdesk.edc.audit.trail import verify
    from trialdesk.edc.dosing.models import Infusion

    inf = Infusion.objects.get()
    assert inf.participant.subject_id == "001" and inf.dose_per_kg == 750_000
    assert verify().ok
    assert sorted(p.name for p in SHOTS.glob("*.png"))[-1] == "10-first-infusion.png"

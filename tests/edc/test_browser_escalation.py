"""Dose escalation in a real browser (Debian's chromium via Playwright), on AETHER's cohorts with a sentinel
(the study team's variant of the protocol folder: one sentinel, the rest of the cohort 7 days after it): the
coordinator enrols and assigns the sentinel to cohort 1 and records the infusion; the second participant's
infusion before the sentinel gap is refused, after it the cohort fills; a dose from cohort 2 is refused while
cohort 2 is not open (the page says why, the DSMB's page shows the decision table); once the DLT window has
closed the DSMB signs its decision, cohort 2 opens and its first infusion is accepted. Dates are typed and read
on the site's calendar (the desk's time zone). The state around what is tested is built through the services.
Screenshots go to $TRIALDESK_ARTIFACTS/browser-escalation."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import Page

from .conftest import PASSWORD, days_ago
from .test_browser import SHOTS, _login, _logout
from .test_browser_desk import browser_page
from .test_cohort_gate_desk import aether_with_cohorts, assign, enrol_for_aether, ready_for_aether

ESCALATION_SHOTS = SHOTS.parent / "browser-escalation"
SENTINEL_COHORTS = """    - {id: C1, dose_level: DL1, size: 3, sentinel: 1, sentinel_gap_days: 7}
    - {id: C2, dose_level: DL2, size: 3, sentinel: 1, sentinel_gap_days: 7}
    - {id: C3, dose_level: DL3, size: 3, sentinel: 1, sentinel_gap_days: 7}
"""


def _shot(page: Page, name: str) -> None:
    ESCALATION_SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ESCALATION_SHOTS / f"{name}.png"), full_page=True)


def _infusion(page: Page, base: str, subject_id: str, day: dt.date, cells: float) -> None:
    """Fill and submit the first-infusion form of ``subject_id`` (the page opened from the participant's page)."""
    page.goto(f"{base}/participants/{subject_id}/")
    page.click("text=Record infusion 1")
    page.fill("#id_date", day.isoformat())
    page.fill("#id_started_at", "09:00")
    page.fill("#id_stopped_at", "09:45")
    page.fill("#id_weight_kg", "72")
    page.fill("#id_total_cells", str(int(cells)))
    page.fill("#id_lot", "HMSC-LOT-7")
    page.fill("#id_donor_id", "DONOR-3")
    page.select_option("#id_interrupted", "no")
    page.wait_for_load_state("networkidle")  # nothing of the page still loading shares the test server's SQLite connection
    page.click("button[type=submit]")


def _site_date(day: dt.date) -> str:
    """A date as the pages' footer writes the site's date (the desk's date format, 'Dec. 7, 2026')."""
    from django.utils.formats import date_format

    return date_format(day)


def _refused(page: Page) -> str:
    page.wait_for_selector("form .error, form .errors")
    return page.locator("form").last.inner_text()


@pytest.mark.slow
def test_a_coordinator_and_the_dsmb_escalate_from_cohort_1_to_cohort_2(live_server, settings, trial, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.dosing.models import CohortAssignment, Infusion

    settings.TRIALDESK_PROTOCOL = aether_with_cohorts(tmp_path / "aether-sentinel", SENTINEL_COHORTS)
    sentinel_day, too_soon, after_gap = days_ago(70), days_ago(65), days_ago(63)
    window_closed = days_ago(62) + dt.timedelta(days=29)  # the day after the last C1 member's 28-day window
    entry = ready_for_aether(trial, "Ann", ago=72)  # screened, signed eligible and consented; the coordinator enrols on the page
    bea, cy, di = (enrol_for_aether(trial, name, ago=72) for name in ("Bea", "Cy", "Di"))

    base = live_server.url
    with browser_page() as page:
        _login(page, base, "coordinator")
        # the sentinel: enrolled and assigned on the page (only the open cohort is offered), then infused
        page.goto(f"{base}/screening/{entry.number}/")
        page.fill("#id_enrolled_on", days_ago(72).isoformat())
        page.click("button[name=enrol]")
        page.wait_for_url(f"{base}/participants/*/")
        ann_id = page.url.rstrip("/").rsplit("/", 1)[1]
        assert page.locator("#id_cohort option").all_inner_texts() == ["—", "C1: DL1 (20 × 10⁶ cells)"]
        page.select_option("#id_cohort", "C1")
        page.click("#assign-cohort button")
        page.wait_for_url(f"{base}/participants/{ann_id}/")
        assert "C1: DL1 (20 × 10⁶ cells), assigned" in page.locator("#cohort").inner_text()
        _shot(page, "01-sentinel-assigned")
        _infusion(page, base, ann_id, sentinel_day, 20e6)
        page.wait_for_url(f"{base}/participants/{ann_id}/")
        assert "Infusion 1 recorded: 20 × 10⁶ cells" in page.content()

        # the second participant, before the sentinel gap: refused on the page, naming the day it may be given
        assign(trial, bea, "C1")
        _infusion(page, base, bea.subject_id, too_soon, 20e6)
        text = _refused(page)
        assert f"after the sentinel (dosed {sentinel_day}) the next participant waits 7 days, until {sentinel_day + dt.timedelta(days=7)}" \
            in text
        _shot(page, "02-before-the-sentinel-gap")
        assert not Infusion.objects.filter(participant=bea).exists()
        page.fill("#id_date", after_gap.isoformat())
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/participants/{bea.subject_id}/")

        # the cohort fills; a dose from cohort 2 is refused: not C1's level, and C2 is not open to assign
        assign(trial, cy, "C1")
        _infusion(page, base, cy.subject_id, days_ago(62), 100e6)
        assert (f"{cy.subject_id} is assigned to cohort C1 at DL1 (20 × 10⁶ cells); this dose, 100 × 10⁶ cells, is DL2"
                f" (100 × 10⁶ cells)") in _refused(page)
        trial.infuse(cy, ago=62, total_cells=20e6)
        page.goto(f"{base}/participants/{di.subject_id}/")
        assert page.locator("#assign-cohort").count() == 0
        states = page.locator("#cohort-states").inner_text()
        assert "C1: full; DLT window closed: awaiting the DSMB's review" in states
        assert "C2: waits for the DSMB's signed review of cohort C1" in states
        _shot(page, "03-cohort-2-not-open")
        page.click("text=dose cohorts and the escalation rule")
        assert "3+3 rule" in page.locator("#cohorts h3").inner_text()
        assert "1 of 3" in page.locator("#decision-table").inner_text()
        _logout(page)

        # the DSMB reviews cohort 1 once its DLT window has closed, and signs
        _login(page, base, "dsmb")
        page.goto(f"{base}/safety/dsmb/decisions/")
        assert "full; DLT window closed: awaiting the DSMB's review" in page.locator("#cohort-table").inner_text()
        page.check("input[name=kind][value=continue]")
        assert page.input_value("#id_decided_on") == days_ago(0).isoformat()  # today on the site's calendar, as the footer says
        assert f"site date {_site_date(days_ago(0))}" in page.locator("footer").inner_text()
        page.fill("#id_report_cutoff", window_closed.isoformat())
        page.fill("#id_rationale", "Cohort 1: no serious adverse event within 4 weeks in 3 participants")
        page.fill("#id_printed_name", trial.users["dsmb"].get_full_name())
        page.fill("#id_password", PASSWORD)
        page.wait_for_load_state("networkidle")
        page.click("text=Sign and record the decision")
        page.wait_for_url(f"{base}/safety/dsmb/decisions/")
        assert "reviewed by the DSMB: escalate, opens C2" in page.locator("#cohort-table").inner_text()
        _shot(page, "04-dsmb-opens-cohort-2")
        _logout(page)

        # cohort 2 is offered now, and its first infusion is accepted
        _login(page, base, "coordinator")
        page.goto(f"{base}/participants/{di.subject_id}/")
        assert page.locator("#id_cohort option").all_inner_texts() == ["—", "C2: DL2 (100 × 10⁶ cells)"]
        page.select_option("#id_cohort", "C2")
        page.click("#assign-cohort button")
        page.wait_for_url(f"{base}/participants/{di.subject_id}/")
        _infusion(page, base, di.subject_id, days_ago(0), 100e6)
        page.wait_for_url(f"{base}/participants/{di.subject_id}/")
        assert "Infusion 1 recorded: 100 × 10⁶ cells" in page.content()
        _shot(page, "05-cohort-2-first-infusion")
    assert CohortAssignment.in_force() == {ann_id: "C1", bea.subject_id: "C1", cy.subject_id: "C1", di.subject_id: "C2"}


"""Weights and doses read as a clinician writes them (59.3 kg, 0.75 × 10⁶ cells/kg) on every page that shows an
infusion, and the participant page's infusion table keeps its SDV column inside the card at a 1200-pixel window."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from .conftest import at_days_ago, days_ago

NOISY_WEIGHT = 59.300000000000004  # what 59.2 + 0.1 gives in binary floating point
CELLS = 44_475_000  # 0.75 × 10⁶ cells/kg at 59.3 kg


@pytest.fixture
def infused(trial):  # type: ignore[no-untyped-def]
    participant = trial.enrol()
    trial.infuse(participant, ago=20, total_cells=CELLS, weight=NOISY_WEIGHT)
    participant.refresh_from_db()
    return participant


def test_participant_page_shows_the_weight_to_a_tenth_of_a_kilogram(infused, client_as) -> None:  # type: ignore[no-untyped-def]
    html = client_as("coordinator").get(f"/participants/{infused.subject_id}/").content.decode()
    assert "59.300000000000004" not in html
    assert ">59.3 kg<" in html
    assert ">0.75 × 10⁶ cells/kg<" in html and ">44,475,000<" in html


def test_infusion_correction_page_shows_the_weight_without_float_noise(infused, client_as) -> None:  # type: ignore[no-untyped-def]
    html = client_as("coordinator").get(f"/participants/{infused.subject_id}/infusions/1/").content.decode()
    assert "59.300000000000004" not in html
    assert re.search(r'name="weight_kg" value="59\.3"', html)
    assert "Recorded: 59.3 kg, 0.75 × 10⁶ cells/kg." in html


def _infusion_form(**overrides: str) -> dict[str, str]:
    return {"date": days_ago(20).isoformat(), "started_at": "09:00", "stopped_at": "09:45", "weight_kg": str(NOISY_WEIGHT),
            "total_cells": str(CELLS), "lot": "LOT-1", "donor_id": "D-7", "interrupted": "no", "before_sbp": "120", **overrides}


def test_saving_the_correction_page_unchanged_is_not_an_edit(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit.models import AuditEntry

    participant = trial.enrol()
    coordinator = client_as("coordinator")
    coordinator.post(f"/participants/{participant.subject_id}/infusions/new/", _infusion_form())
    inf = participant.infusions.get()
    # the form shows 59.3 and sends 59.3 back: the stored 59.300000000000004 is not changed, nothing needs a reason
    response = coordinator.post(f"/participants/{participant.subject_id}/infusions/1/",
                                _infusion_form(weight_kg="59.3", version=str(inf.version), reason=""))
    assert response.status_code == 302, re.findall(r'class="error"[^>]*>([^<]*)', response.content.decode())
    inf.refresh_from_db()
    assert inf.weight_kg == NOISY_WEIGHT and inf.version == 1
    assert not AuditEntry.objects.filter(model="dosing.Infusion", action="update").exists()


def test_a_real_weight_correction_still_needs_its_reason(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    participant = trial.enrol()
    coordinator = client_as("coordinator")
    coordinator.post(f"/participants/{participant.subject_id}/infusions/new/", _infusion_form())
    response = coordinator.post(f"/participants/{participant.subject_id}/infusions/1/",
                                _infusion_form(weight_kg="59.4", total_cells="44550000", version="1", reason=""))
    assert "give the reason for this change" in response.content.decode()
    assert participant.infusions.get().weight_kg == NOISY_WEIGHT


def test_recording_an_infusion_confirms_dose_and_weight_as_read(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    participant = trial.enrol()
    response = client_as("coordinator").post(f"/participants/{participant.subject_id}/infusions/new/", _infusion_form(), follow=True)
    assert "Infusion 1 recorded: 0.75 × 10⁶ cells/kg at 59.3 kg." in response.content.decode()


def test_an_adverse_events_attribution_names_the_dose_in_the_same_form(infused, trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from .test_adverse_events import record

    record(trial, infused, onset=days_ago(17), learned_at=at_days_ago(16))
    html = client_as("coordinator").get(f"/participants/{infused.subject_id}/").content.decode()
    assert "infusion 1 (0.75 × 10⁶ cells/kg), 3 days after it" in html


CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]
SHOTS = Path(os.environ.get("TRIALDESK_ARTIFACTS", "/tmp/trialdesk-artifacts")) / "layout"  # test_browser counts "browser"


@pytest.mark.slow
def test_the_infusion_table_scrolls_inside_its_card_at_1200_pixels(live_server, users, trial, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from .conftest import PASSWORD

    participant = trial.enrol()
    trial.infuse(participant, ago=20, total_cells=CELLS, weight=NOISY_WEIGHT)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # the live server thread uses the ORM while Playwright's loop runs
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", "monitor")  # the monitor sees the SDV column's Verify button
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        page.goto(f"{live_server.url}/participants/{participant.subject_id}/")
        card = page.locator("section.card", has=page.locator("h2", has_text="Infusions"))
        scroller = card.locator(".table-scroll")
        card_box, scroll_box = card.bounding_box(), scroller.bounding_box()
        assert card_box is not None and scroll_box is not None
        # the table's box ends inside the card; anything wider is reached by scrolling the table, not cut off
        assert scroll_box["x"] + scroll_box["width"] <= card_box["x"] + card_box["width"] + 0.5
        verify = card.locator("button", has_text="Verify")
        verify.scroll_into_view_if_needed()
        button = verify.bounding_box()
        assert button is not None and button["x"] + button["width"] <= card_box["x"] + card_box["width"] + 0.5
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "participant-infusions-1200px.png"), full_page=True)
        browser.close()

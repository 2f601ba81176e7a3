"""A patient finds the study page, answers the self-referral questions with keyboard and mouse
in a real browser (Debian's chromium driven by Playwright) and gets each preliminary answer; the
one who asks to be contacted appears in the coordinator's screening log. axe-core (pinned in
tests/a11y/package.json, installed by scripts/setup) checks every public page for serious or
critical accessibility violations. Screenshots go to $TRIALDESK_ARTIFACTS/public."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Page, sync_playwright

from .conftest import PASSWORD
from .test_browser import ARGS, CHROMIUM, SHOTS, _login

AXE = Path(__file__).resolve().parents[1] / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
T = TypeVar("T")
PHONE = {"width": 390, "height": 844}
PUBLIC_SHOTS = SHOTS.parent / "public"  # beside the coordinator walk-through's folder, which checks its own last shot


def _shot(page: Page, name: str) -> None:
    PUBLIC_SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(PUBLIC_SHOTS / f"{name}.png"), full_page=True)


def accessibility_problems(page: Page) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as shown (WCAG 2.0/2.1 A and AA, and best practice)."""
    assert AXE.exists(), f"{AXE} is missing; run scripts/setup (npm ci in tests/a11y)"
    # evaluated by the test harness, not added to the page as an inline <script>, which the page's Content Security Policy refuses
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    violations: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
                values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})).violations
             .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))""")
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def db(query: Callable[[], T]) -> T:
    """Run an ORM query from inside Playwright's context and close the connection it opened
    there (it lives in that context, so the test database could not be dropped at the end)."""
    from django.db import connections

    try:
        return query()
    finally:
        connections.close_all()


def answer_all(page: Page, answers: dict[str, str]) -> None:
    for qid, value in answers.items():
        if qid == "age":
            page.fill("#id_age", value)
        else:
            page.check(f"input[name={qid}][value={value}]")


HOPEFUL = {"age": "54", "ild": "yes", "autoimmune": "yes", "rituximab_cyclophosphamide": "no", "oxygen_at_rest": "not_sure",
           "infection": "no", "cancer": "no", "stem_cells": "no", "hiv_hepatitis": "no", "pregnancy": "not_applicable"}


@pytest.fixture
def browser_page(live_server):  # type: ignore[no-untyped-def]
    from django.core.cache import cache

    cache.clear()
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the live server thread uses the ORM while Playwright's loop runs here
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield browser, live_server.url
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.mark.slow
def test_a_patient_who_may_be_eligible_refers_themselves_and_the_coordinator_sees_it(browser_page) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.accounts.service import create_user
    from trialdesk.edc.referrals.models import Referral

    browser, base = browser_page
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/study/")
    assert page.locator("h1").inner_text().startswith("Allogeneic Bone Marrow Mesenchymal Stem Cells")
    assert page.get_by_text("Previous treatment with mesenchymal stem cells").is_visible()
    assert accessibility_problems(page) == []
    _shot(page, "public-01-study-page")
    page.emulate_media(media="print")  # printed, the page keeps the facts and drops the button
    assert not page.get_by_role("link", name="Join the interest list").is_visible()
    assert page.get_by_text("Inability to provide informed consent").is_visible()
    page.pdf(path=str(PUBLIC_SHOTS / "public-01-study-page-print.pdf"))
    page.emulate_media(media="screen")

    page.get_by_role("link", name="Join the interest list").click()
    page.wait_for_url(f"{base}/study/questions/")
    assert accessibility_problems(page) == []
    _shot(page, "public-02-questionnaire")

    page.click("button[type=submit]")  # nothing answered
    assert page.locator("#id_heart_error").inner_text() == "Please answer this question."
    assert page.locator(".errors-summary").is_visible()
    assert accessibility_problems(page) == []
    _shot(page, "public-03-questionnaire-errors")

    answer_all(page, HOPEFUL)
    # the heart question by keyboard alone: focus its first choice, arrow to 'No', Enter submits
    page.focus("#id_heart_0")
    page.keyboard.press("ArrowDown")
    assert page.is_checked("#id_heart_1")
    page.keyboard.press("Enter")
    page.wait_for_selector(".verdict")
    # the study is completed: an interest list, said plainly, never "you may be eligible"
    headline = "This study is not taking new participants: you can join the study team's interest list"
    assert page.locator(".verdict h2").inner_text() == headline
    assert page.locator("#interest-list").is_visible()
    assert "The study team can check these with you." in page.locator(".verdict").inner_text()
    assert accessibility_problems(page) == []
    _shot(page, "public-04-may-be-eligible")
    assert db(Referral.objects.count) == 0

    page.fill("#id_name", "Rosa Parks")
    page.fill("#id_phone", "+1 904 555 0100")
    page.fill("#id_message", "<script>document.title='owned'</script> Mornings are best.")
    page.check("#id_consent")
    page.click("text=Check what will be sent")
    page.wait_for_selector("text=Nothing has been sent yet")
    assert page.title() != "owned" and "<script>document.title='owned'</script>" in page.locator("dd.message").inner_text()
    assert accessibility_problems(page) == []
    _shot(page, "public-05-confirm")
    assert db(Referral.objects.count) == 0

    page.click("button[name=confirm]")
    page.wait_for_selector("text=Your reference is")
    assert "R-0001" in page.locator("main").inner_text()
    assert accessibility_problems(page) == []
    _shot(page, "public-06-sent")
    assert db(lambda: Referral.objects.get().name) == "Rosa Parks"

    db(lambda: create_user("cora", "coordinator", PASSWORD, first_name="Cora", last_name="Tester", validate=False,
                           must_change_password=False))
    _login(page, base, "cora")
    page.click("nav >> text=Screening")
    row = page.locator("tr#R-0001")
    assert "Rosa Parks" in row.inner_text() and "May be eligible" in row.inner_text()
    assert page.title() != "owned"
    _shot(page, "public-07-screening-log-self-referrals")


@pytest.mark.slow
def test_a_patient_on_a_phone_who_had_rituximab_is_told_they_are_probably_not_eligible_and_why(browser_page) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.referrals.models import Referral

    browser, base = browser_page
    page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(f"{base}/study/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling on a phone
    # on a phone the tables stack, each cell saying which column it was
    assert page.evaluate("getComputedStyle(document.querySelector('td[data-label]'), '::before').content") == '"Group: "'
    assert accessibility_problems(page) == []
    _shot(page, "public-11-study-page-phone")
    page.get_by_role("link", name="Join the interest list").click()
    answer_all(page, {**HOPEFUL, "age": "85", "rituximab_cyclophosphamide": "yes", "oxygen_at_rest": "no", "heart": "no"})
    page.click("button[type=submit]")
    page.wait_for_selector(".verdict")
    verdict = page.locator(".verdict").inner_text()
    assert "This study is not taking new participants, and your answers suggest it would not suit you" in verdict
    assert "People who had rituximab or cyclophosphamide in the last 2 months cannot take part." in verdict
    assert "The study is for adults aged 18 to 79." in verdict
    assert "This is not a decision about whether you can take part" in verdict
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert accessibility_problems(page) == []
    _shot(page, "public-12-probably-not-eligible-phone")
    assert db(Referral.objects.count) == 0  # nothing is kept from someone who only asked


@pytest.mark.slow
def test_the_accessibility_check_finds_a_page_that_fails(browser_page) -> None:  # type: ignore[no-untyped-def]
    browser, _ = browser_page
    page = browser.new_page()
    page.set_content('<html><head><title>t</title></head><body><main><img src="data:,"><input type="text">'
                     '<p style="color:#bbb;background:#fff">faint</p></main></body></html>')
    found = {v["id"] for v in accessibility_problems(page)}
    assert {"image-alt", "label", "color-contrast"} <= found

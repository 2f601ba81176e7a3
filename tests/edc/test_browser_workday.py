"""The day's work in a real browser (Debian's chromium via Playwright), as the role that does it: the coordinator's
home page and the calendar it links to, the search in the header, the timeline, an unscheduled visit; the PI's
casebook signature (a wrong password said where the PI is looking) and the data manager's lock; the PI's eligibility
sign-off; and the layout every role sees: tables within 1366 px, the header within 820 px, the current page marked in
the navigation and text that meets 4.5:1 contrast. Screenshots go to $TRIALDESK_ARTIFACTS/browser-desk."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page

from trialdesk.edc.permissions import ROLES

from .conftest import PASSWORD, at_days_ago, days_ago
from .test_browser import _login, _logout
from .test_browser_desk import _shot, browser_page


@pytest.fixture
def workday(trial, users):  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.service import raise_query
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit

    from .test_adverse_events import record

    p = trial.enrol()
    trial.infuse(p, ago=20)
    done = Visit.objects.filter(participant=p, day__gt=0, latest__lt=days_ago(0)).order_by("day").first()
    record_visit(users["coordinator"], done, done_on=done.target, version=done.version)
    record(trial, p, term="Lung infection", grade=3, serious=True, seriousness=["hospitalisation"], onset=days_ago(2),
           learned_at=at_days_ago(1), relatedness="possibly")
    raise_query(users["monitor"], p, target="Vital signs", text="check the pulse")
    trial.ready("Bea")  # consented, to enrol
    return p


def _count(page: Page, key: str) -> int:
    return int(page.locator(f'li[data-item="{key}"] b[data-count]').first.get_attribute("data-count") or "-1")


@pytest.mark.slow
def test_the_coordinator_works_from_the_home_page(live_server, workday) -> None:  # type: ignore[no-untyped-def]
    base = live_server.url
    with browser_page() as page:
        _login(page, base, "coordinator")
        assert page.locator("#work-of-the-day").is_visible()
        assert page.locator('nav a[aria-current="page"]').inner_text() == "Dashboard"
        _shot(page, "coordinator-work-of-the-day")
        week = _count(page, "visits_week")
        page.click('li[data-item="visits_week"] a.work-count')
        page.wait_for_url(f"{base}/calendar/?days=7")
        assert page.locator("tr.calendar-visit").count() == week >= 1
        assert page.locator('nav a[aria-current="page"]').inner_text() == "Calendar"
        _shot(page, "coordinator-calendar")
        page.goto(f"{base}/")
        forms = _count(page, "overdue_forms")
        page.click('li[data-item="overdue_forms"] a.work-count')
        page.wait_for_url(f"{base}/missing-forms/")
        assert page.locator("main table tr").count() - 1 == forms >= 1
        page.goto(f"{base}/")
        assert page.locator('a.enrol').count() == 1  # Bea: consented, below the target
        # search from the header, by family name
        page.fill("#nav-search", "Lovelace")
        page.press("#nav-search", "Enter")
        page.wait_for_url(re.compile(r".*/search/\?q=Lovelace"))
        page.click('#search-results a[href="/participants/001/"]')
        page.wait_for_url(f"{base}/participants/001/")
        page.click("text=Timeline")
        page.wait_for_url(f"{base}/participants/001/timeline/")
        assert page.locator("svg.timeline circle").count() >= 3 and "infusion 1 (day 0)" in page.content()
        _shot(page, "coordinator-timeline")
        # an unscheduled visit
        page.goto(f"{base}/participants/001/")
        page.click("text=Add an unscheduled visit")
        page.fill("#id_done_on", days_ago(3).isoformat())
        page.fill("#id_reason", "new cough and fever")
        page.check('input[name="forms"][value="vital_signs"]')
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/participants/001/visits/U1/")
        assert "new cough and fever" in page.content() and page.locator('a[href="/participants/001/visits/U1/vital_signs/"]').count() == 1
        _shot(page, "coordinator-unscheduled-visit")


@pytest.mark.slow
def test_the_pi_signs_the_casebook_and_the_data_manager_locks_it(live_server, trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.participants.models import Participant

    trial.infuse(trial.enrol())
    base = live_server.url
    with browser_page() as page:
        _login(page, base, "data_manager")
        page.goto(f"{base}/participants/001/casebook/")
        assert "Not signed by the principal investigator" in page.content()
        assert page.locator("#casebook-signature button", has_text="Lock casebook").count() == 0  # nothing to lock yet
        _logout(page)
        _login(page, base, "pi")
        page.goto(f"{base}/participants/001/")
        page.click("text=Sign the casebook")
        page.fill("#id_password", "not-my-password")
        page.click("#sign-casebook button[type=submit]")
        error = page.locator('#sign-casebook p.error[data-field="password"]')
        assert error.is_visible() and error.is_visible() and "the password is not correct" in error.inner_text()
        assert error.evaluate("e => { const r = e.getBoundingClientRect(); return r.top > -2 && r.bottom <= innerHeight; }")
        _shot(page, "pi-casebook-signature-refused")
        page.fill("#id_password", PASSWORD)
        page.click("#sign-casebook button[type=submit]")
        assert page.locator(".signed#signature-state").inner_text().startswith("Signed: Pi Tester")
        _logout(page)
        _login(page, base, "data_manager")
        page.goto(f"{base}/participants/001/casebook/")
        page.click("#casebook-signature button:has-text('Lock casebook')")
        page.wait_for_url(f"{base}/participants/001/")
        assert "Casebook locked" in page.content()
        _shot(page, "data-manager-locked-casebook")
    assert Participant.objects.get().locked


@pytest.mark.slow
def test_the_pi_answers_each_criterion_once_and_sees_a_failed_signature(live_server, trial) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.web import protocol
    from trialdesk.trial.signoff import open_criteria

    p = protocol()
    entry = trial.screen()
    base = live_server.url
    with browser_page() as page:
        _login(page, base, "pi")
        page.goto(f"{base}/screening/{entry.number}/sign/")
        assert page.locator("li.criterion").count() == len(p.eligibility.criteria)
        assert page.locator("li.criterion", has_text="Not met").filter(has=page.locator("text=Exclusion")).count() == 0
        yes = {"consent_and_compliance", "ipaf", "no_improvement"}
        for aid in sorted({aid for _, aid, _ in p.attestation_items()}):
            page.check(f'input[name="answer_{aid}"][value="{"yes" if aid in yes else "no"}"]')
        for cid in open_criteria(p, entry.snapshot):
            page.check(f'input[name="decision_{cid}"][value="{"met" if cid.startswith("I") else "not_met"}"]')
        page.fill("#id_password", "wrong-password")
        page.click("button[type=submit]")
        summary = page.locator("#signoff-errors")
        assert summary.is_visible() and "the password is not correct" in summary.inner_text()
        assert summary.evaluate("e => { const r = e.getBoundingClientRect(); return r.top > -2 && r.top < innerHeight; }")  # scrolled to
        _shot(page, "pi-eligibility-signature-refused")


CONTRAST = """() => {
  const lum = c => { const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                     return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const background = el => { for (let e = el; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
                               if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3); } return [255, 255, 255]; };
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.offsetParent || el.closest("svg")) continue;
    const st = getComputedStyle(el);
    const fg = rgb(st.color).slice(0, 3), bg = background(el);
    let ratio = (Math.max(lum(fg), lum(bg)) + 0.05) / (Math.min(lum(fg), lum(bg)) + 0.05);
    const opacity = [...function*() { for (let e = el; e; e = e.parentElement) yield Number(getComputedStyle(e).opacity); }()]
                    .reduce((a, b) => a * b, 1);
    if (opacity < 1) ratio = 1 + (ratio - 1) * opacity;  // a faded element: a conservative estimate
    const large = parseFloat(st.fontSize) >= 24 || (parseFloat(st.fontSize) >= 18.66 && Number(st.fontWeight) >= 700);
    const what = `${el.tagName.toLowerCase()}.${el.className} "${el.textContent.trim().slice(0, 30)}"`;
    if (ratio < (large ? 3 : 4.5)) out.push(`${what} ${ratio.toFixed(2)}`);
  }
  return out;
}"""


def _pages_of(page: Page, base: str, limit: int = 40) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href^='/']", "as => as.map(a => a.getAttribute('href'))")
    seen: list[str] = []
    for h in ["/", *hrefs]:
        h = h.split("#")[0]
        if h and h not in seen and not h.startswith(("/static/", "/logout/", "/api/")) and "format=" not in h:
            seen.append(h)
    return seen[:limit]


@pytest.mark.slow
@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_every_page_a_role_opens_fits_the_screen_marks_where_it_is_and_is_legible(live_server, workday, role) -> None:  # type: ignore[no-untyped-def]
    base = live_server.url
    problems: list[str] = []
    with browser_page() as page:
        _login(page, base, role)
        for url in _pages_of(page, base):
            page.set_viewport_size({"width": 1366, "height": 900})
            response = page.goto(f"{base}{url}")
            if response is None or response.status != 200 or "html" not in (response.headers.get("content-type") or ""):
                continue
            wide = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
            if wide > 0:
                problems.append(f"{url}: {wide} px wider than 1366")
            problems += [f"{url}: contrast {x}" for x in page.evaluate(CONTRAST)]
            page.set_viewport_size({"width": 820, "height": 900})
            header = page.evaluate("() => { const h = document.querySelector('header.top'); return h.scrollWidth - h.clientWidth; }")
            if header > 0:
                problems.append(f"{url}: the header is {header} px wider than 820")
        page.set_viewport_size({"width": 1366, "height": 900})
        page.goto(f"{base}/participants/001/")
        # the contrast check finds grey text when there is some (#999 on the page's background is under 3:1)
        page.evaluate("() => { const p = document.createElement('p'); p.textContent = 'faint'; p.style.color = '#999';"
                      " document.querySelector('main').append(p); }")
        assert any('"faint"' in x for x in page.evaluate(CONTRAST))
        current = page.locator('nav a[aria-current="page"]')
        assert current.count() == 1 and current.inner_text() == "Participants"
        assert current.evaluate("e => getComputedStyle(e).fontWeight") in ("600", "700")
        _shot(page, f"layout-{role}")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_the_data_manager_downloads_the_flat_export_by_form(live_server, workday) -> None:  # type: ignore[no-untyped-def]
    import io

    from openpyxl import load_workbook

    from trialdesk.edc.quality.models import Query
    from trialdesk.edc.quality.service import answer_query, close_query

    q = Query.objects.get()
    q = answer_query(workday.screening.created_by, q, answer="pulse confirmed", version=q.version)
    close_query(q.raised_by, q, version=q.version)
    base = live_server.url
    with browser_page() as page:
        _login(page, base, "data_manager")
        page.goto(f"{base}/exports/")
        row = page.locator("tr", has_text="Excel workbook, one sheet per form")
        with page.expect_download() as info:
            row.locator("button").click()
        download = info.value
        assert download.suggested_filename.endswith("_by_form.xlsx")
        wb = load_workbook(io.BytesIO(open(download.path(), "rb").read()), read_only=True)  # noqa: SIM115
        assert wb.sheetnames[0] == "codebook" and {"pulmonary_function", "six_minute_walk"} <= set(wb.sheetnames)

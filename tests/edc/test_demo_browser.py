"""The demo trial in a real browser (Debian's chromium driven by Playwright): each role logs in
and sees what it should — and not what it should not (the DSMB and the sponsor see no names);
the monitor raises a query that the coordinator answers and the monitor closes; the DSMB member
opens the safety report; and on a trial with places left, a coordinator screens, the PI signs
eligibility, and the coordinator enrols, records the first infusion and an adverse event.

The data are the demo's own (:func:`trialdesk.edc.demo_trial.conduct_trial`, seeded), built in the
test database. Screenshots go to $TRIALDESK_ARTIFACTS/demo-browser."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from .test_browser import ARGS, CHROMIUM

SHOTS = Path(os.environ.get("TRIALDESK_ARTIFACTS", "/tmp/trialdesk-artifacts")) / "demo-browser"
AS_OF = dt.date(2024, 6, 1)


def _candidates(n: int) -> list:  # type: ignore[type-arg]
    from trialdesk.edc.demo_trial import Candidate

    return [Candidate(str(1000 + i), str(i + 1), "E8", "I3 I4 E5 E6 E10 E11", "female" if i % 2 else "male",
                      dt.date(1950 + i, 3 + i % 9, 10)) for i in range(n)]


def _build(enrol: int | None = None):  # type: ignore[no-untyped-def]
    from trialdesk.edc.demo_trial import conduct_trial

    return conduct_trial(_candidates(16), as_of=AS_OF, seed=20191105, enrol=enrol, say=lambda line: None)


@pytest.fixture
def browser() -> Iterator[Browser]:
    from django.db import connections

    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the live server thread uses the ORM while Playwright's loop runs here
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            yield b
            b.close()
            # Playwright's sync API runs the test in its own context, where Django opens its own connection:
            # close it here, or it outlives the test and blocks dropping the PostgreSQL test database
            connections.close_all()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _login(page: Page, base: str, username: str) -> None:
    from trialdesk.edc.demo_trial import PASSWORD

    page.context.clear_cookies()
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _status(page: Page, url: str) -> int:
    response = page.goto(url)
    assert response is not None
    return response.status


def _nav(page: Page) -> str:
    return page.inner_text("nav")


@pytest.mark.slow
def test_each_role_sees_what_it_should_and_no_more_on_the_demo_trial(live_server, browser) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.models import AdverseEvent
    from trialdesk.edc.participants.models import Participant

    done = _build()
    assert len(done.enrolled) == 10
    names = [p.screening.family_name for p in Participant.objects.select_related("screening")]
    sae = AdverseEvent.objects.get(serious=True)
    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    # the coordinator works with identified data: names on the participant list, every site page
    _login(page, base, "coordinator")
    assert {"Screening", "Participants", "Adverse events", "Queries"} <= set(_nav(page).split("\n"))
    page.goto(f"{base}/participants/")
    assert all(n in page.content() for n in names)
    _shot(page, "coordinator-participants")
    assert _status(page, f"{base}/safety/dsmb/") == 403

    # the PI also sees the DSMB report; the sub-investigator does not
    _login(page, base, "pi")
    assert _status(page, f"{base}/safety/dsmb/") == 200
    _login(page, base, "subi")
    assert _status(page, f"{base}/screening/") == 200
    assert _status(page, f"{base}/safety/dsmb/") == 403

    # the DSMB member: subject ids, no names, no screening log, no verbatim text; opens the safety report
    _login(page, base, "dsmb")
    assert "Screening" not in _nav(page) and "Audit trail" not in _nav(page)
    page.goto(f"{base}/participants/")
    assert "001" in page.content() and not [n for n in names if n in page.content()]
    _shot(page, "dsmb-participants")
    page.goto(f"{base}/adverse-events/{sae.pk}/")
    assert "Lung infection" in page.content() and "right lower lobe" not in page.content()
    assert _status(page, f"{base}/screening/") == 403
    assert _status(page, f"{base}/audit/") == 403
    page.goto(f"{base}/safety/")
    page.click("text=DSMB report")
    assert "DSMB" in page.content() and "Lung infection" in page.content()
    assert not [n for n in names if n in page.content()] and "MRN-" not in page.content()
    _shot(page, "dsmb-safety-report")

    # the sponsor reads de-identified reports but not the audit trail
    _login(page, base, "sponsor")
    page.goto(f"{base}/participants/")
    assert not [n for n in names if n in page.content()]
    assert _status(page, f"{base}/audit/") == 403
    assert _status(page, f"{base}/safety/dsmb/") == 200

    # the data manager exports; the administrator manages accounts and sees no participant
    _login(page, base, "datamanager")
    assert _status(page, f"{base}/exports/") == 200
    _shot(page, "data-manager-exports")
    _login(page, base, "admin")
    assert "Users" in _nav(page) and "Participants" not in _nav(page)
    assert _status(page, f"{base}/participants/") == 403
    assert _status(page, f"{base}/users/") == 200

    # the monitor raises a query, the coordinator answers it, the monitor closes it
    _login(page, base, "monitor")
    assert _status(page, f"{base}/exports/") == 403
    page.goto(f"{base}/participants/003/visits/D7/laboratory/")  # raised beside the field it is about
    page.click("#field-alt summary")
    page.fill("#field-alt textarea[name=text]", "ALT 76 U/L at week 1: please attach the laboratory report.")
    page.click("#field-alt button:has-text('Raise query')")
    assert "please attach the laboratory report" in page.locator("#field-alt").inner_text()
    page.goto(f"{base}/queries/")
    row = page.locator("tr", has_text="please attach the laboratory report")
    assert "Open" in row.inner_text() and "Week 1 · Laboratory · Alanine aminotransferase (ALT)" in row.inner_text()
    _shot(page, "monitor-query-raised")
    _login(page, base, "coordinator")
    page.goto(f"{base}/queries/")
    row = page.locator("tr", has_text="please attach the laboratory report")
    row.locator("input[name=answer]").fill("Report filed in the source binder, page 14.")
    row.locator("button", has_text="Answer").click()
    _login(page, base, "monitor")
    page.goto(f"{base}/queries/")
    row = page.locator("tr", has_text="please attach the laboratory report")
    assert "Answered" in row.inner_text()
    row.locator("button", has_text="Close").click()
    page.goto(f"{base}/queries/?status=closed")
    assert "Closed" in page.locator("tr", has_text="please attach the laboratory report").inner_text()
    _shot(page, "monitor-query-closed")

    from trialdesk.edc.audit.trail import verify
    from trialdesk.edc.quality.models import Query

    q = Query.objects.get(text__contains="please attach the laboratory report")
    assert (q.status, q.raised_by.username, q.answered_by.username, q.closed_by.username) == ("closed", "monitor", "coordinator", "monitor")
    assert verify().ok


@pytest.mark.slow
def test_coordinator_screens_enrols_infuses_and_records_an_ae_after_the_pi_signs(live_server, browser) -> None:  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from trialdesk.edc.demo_trial import PASSWORD
    from trialdesk.edc.web import protocol
    from trialdesk.trial.signoff import manual_worksheet, open_criteria

    _build(enrol=3)
    today = timezone.localdate()

    def ago(n: int) -> str:
        return (today - dt.timedelta(days=n)).isoformat()

    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    p = protocol()

    _login(page, base, "coordinator")
    page.click("nav >> text=Screening")
    page.fill("#id_given_name", "Grace")
    page.fill("#id_family_name", "Hopper")
    page.fill("#id_mrn", "MRN-1906")
    page.fill("#id_birth_date", "1958-12-09")
    page.select_option("#id_sex", "female")
    page.fill("#id_screened_on", ago(12))
    page.click("button[name=screen]")
    page.wait_for_url(f"{base}/screening/S-*/")
    entry_url = page.url
    _shot(page, "coordinator-screened")

    _login(page, base, "pi")
    page.goto(entry_url)
    page.click("text=Review and sign eligibility")
    yes = {"consent_and_compliance", "ipaf", "no_improvement"}
    for aid in sorted({aid for _, aid, _ in p.attestation_items()}):
        page.check(f'input[name="answer_{aid}"][value="{"yes" if aid in yes else "no"}"]')
    for cid in open_criteria(p, manual_worksheet(p, today)):
        page.check(f'input[name="decision_{cid}"][value="{"met" if cid.startswith("I") else "not_met"}"]')
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(entry_url)
    assert "Signed: Ines Moreau" in page.content()
    _shot(page, "pi-signed")

    _login(page, base, "coordinator")
    page.goto(entry_url)
    page.fill("#id_icf_version", "1.0 (2019-10-01)")
    page.fill("#id_signed_at", f"{ago(11)}T10:00")
    page.fill("#id_obtained_by", "Cora Quinn")
    page.check("#id_copy_given")
    page.click("button[name=record_consent]")
    page.fill("#id_enrolled_on", ago(10))
    page.click("button[name=enrol]")
    page.wait_for_url(f"{base}/participants/004/")
    assert "Enrolled as subject 004" in page.content()
    page.click("text=Record infusion 1")
    page.fill("#id_date", ago(2))
    page.fill("#id_started_at", "09:00")
    page.fill("#id_stopped_at", "09:45")
    page.fill("#id_weight_kg", "64")
    page.fill("#id_total_cells", "48000000")
    page.fill("#id_lot", "MSC-24-777")
    page.fill("#id_donor_id", "D-4242")
    page.select_option("#id_interrupted", "no")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/participants/004/")
    assert "0.75 × 10⁶" in page.content()
    _shot(page, "coordinator-infusion")

    page.goto(f"{base}/adverse-events/new/")
    page.select_option("#id_subject_id", "004")
    page.fill("#id_term", "Infusion related reaction")
    # the term search has answered and shows the term's MedDRA coding (and no request is left in flight: the test
    # server shares one SQLite connection between its threads)
    page.locator("#term-coding", has_text="MedDRA").wait_for()
    page.select_option("#id_grade", "1")
    page.fill("#id_description", "Chills 30 minutes into the infusion; settled without treatment")
    page.fill("#id_onset", ago(2))
    page.fill("#id_resolved", ago(2))
    page.select_option("#id_relatedness", "probably")
    page.select_option("#id_serious", "no")
    page.select_option("#id_outcome", "recovered")
    page.select_option("#id_action_taken", "none")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/adverse-events/*/")
    assert "Infusion related reaction" in page.content()
    _shot(page, "coordinator-adverse-event")

    from trialdesk.edc.adverse_events.models import AdverseEvent
    from trialdesk.edc.audit.trail import verify
    from trialdesk.edc.participants.models import Participant

    new = Participant.objects.get(subject_id="004")
    assert new.screening.family_name == "Hopper" and new.screening.signoff.signed
    (inf,) = new.infusions.all()
    assert inf.dose_per_kg == 750_000
    ae = AdverseEvent.objects.filter(participant=new).get()
    from trialdesk.edc.safety.service import current_assessment

    assert (ae.term, ae.grade, ae.relatedness) == ("Infusion related reaction", 1, "probably")
    assert current_assessment(ae) is None  # expectedness is the sponsor-investigator's call, never filled in at entry
    assert verify().ok

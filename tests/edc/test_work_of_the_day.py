"""The work of the day: the home page lists what is due today and this week, each count the same as on the page
its link opens; the visit calendar; search by subject id (and by name or MRN only for roles that see them); the
participant's timeline; the printable casebook the principal investigator signs before the data manager locks it."""

from __future__ import annotations

import re

import pytest

from .conftest import PASSWORD, at_days_ago, days_ago


def _count(page: str, key: str) -> int:
    m = re.search(rf'data-item="{key}"><a [^>]*href="([^"]+)"><b data-count="(\d+)">', page)
    assert m, f"no {key} on the home page"
    return int(m.group(2))


def _href(page: str, key: str) -> str:
    m = re.search(rf'data-item="{key}"><a [^>]*href="([^"]+)"', page)
    assert m
    return m.group(1).replace("&amp;", "&")


@pytest.fixture
def day_of_work(trial, users):  # type: ignore[no-untyped-def]
    from django.test import Client

    from trialdesk.edc.quality.service import raise_query
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import record_visit
    from trialdesk.edc.web import protocol

    from .test_adverse_events import record
    from .test_referrals import refer

    p = trial.enrol()
    trial.infuse(p, ago=20)
    done = Visit.objects.filter(participant=p, day__gt=0, latest__lt=days_ago(0)).order_by("day").first()
    record_visit(users["coordinator"], done, done_on=done.target, version=done.version)  # its forms are now overdue
    sae = record(trial, p, term="Lung infection", grade=3, serious=True, seriousness=["hospitalisation"], onset=days_ago(2),
                 learned_at=at_days_ago(1), relatedness="possibly")
    raise_query(users["monitor"], p, target="Vital signs", text="check the pulse")
    refer(Client(), protocol())
    return {"p": p, "sae": sae}


def test_each_count_on_the_home_page_is_what_its_link_opens(day_of_work, client_as) -> None:  # type: ignore[no-untyped-def]
    from django.core.cache import cache

    cache.clear()
    c = client_as("coordinator")
    home = c.get("/").content.decode()
    week = _count(home, "visits_week")
    calendar = c.get(_href(home, "visits_week")).content.decode()
    assert week >= 1 and calendar.count('class="calendar-visit"') == week
    assert c.get(_href(home, "visits_today")).content.decode().count('class="calendar-visit"') == _count(home, "visits_today")
    missing = c.get("/missing-forms/").content.decode()
    assert _count(home, "overdue_forms") >= 1
    assert missing.count("<tr") - 1 == _count(home, "overdue_forms")  # its rows, less the header
    safety = c.get("/safety/").content.decode()
    table = safety.split('class="grid reports-due"')[1].split("</table>")[0]
    assert _count(home, "sae_clocks") >= 1 and table.count("<tr") - 1 == _count(home, "sae_clocks")
    assert _count(home, "my_queries") == 1  # the coordinator entered 001's data
    assert _count(home, "new_referrals") == 1
    screening = c.get("/screening/").content.decode()
    assert screening.count('<span class="badge">New</span>') == 1


def test_an_answered_query_leaves_the_list_and_a_coordinator_who_entered_nothing_has_none(day_of_work, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.models import Query
    from trialdesk.edc.quality.service import answer_query

    assert _count(client_as("sub_investigator").get("/").content.decode(), "my_queries") == 0  # entered none of 001's data
    q = Query.objects.get()
    answer_query(users["coordinator"], q, answer="pulse confirmed", version=q.version)
    assert _count(client_as("coordinator").get("/").content.decode(), "my_queries") == 0
    assert _count(client_as("monitor").get("/").content.decode(), "my_queries") == 1  # the monitor's, to close


def test_enrol_is_offered_below_the_target_and_not_at_it(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.web import protocol

    target = protocol().enrolment.target
    entry = trial.ready("Eleventh")
    home = client_as("coordinator").get("/").content.decode()
    assert f'href="/screening/{entry.number}/enrol/">Enrol</a>' in home and "Eligible, to consent and enrol" in home
    for i in range(target):
        trial.enrol(f"P{i:02d}")
    home = client_as("coordinator").get("/").content.decode()
    assert "/enrol/" not in home and "the enrolment target is reached" in home
    assert home.count(f"/screening/{entry.number}/") == 1  # listed, not offered


def test_search_by_subject_id_for_all_and_by_name_or_mrn_only_for_identified_roles(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    trial.enrol()
    trial.screen("Zoe")
    coordinator = client_as("coordinator")
    assert 'href="/participants/001/"' in coordinator.get("/search/?q=001").content.decode()
    by_name = coordinator.get("/search/?q=ada lovelace").content.decode()
    assert 'href="/participants/001/"' in by_name and "S-0002" not in by_name
    assert 'href="/screening/S-0002/"' in coordinator.get("/search/?q=MRN-Zoe").content.decode()
    dsmb = client_as("dsmb")
    assert 'href="/participants/001/"' in dsmb.get("/search/?q=001").content.decode()
    for q in ("Lovelace", "MRN-Ada", "S-0001"):
        page = dsmb.get(f"/search/?q={q}").content.decode()
        assert "/participants/001/" not in page and "Nothing found" in page and "Lovelace" not in page.replace(q, "")


def test_the_timeline_puts_consent_infusions_visits_and_aes_on_study_days(day_of_work, client_as) -> None:  # type: ignore[no-untyped-def]
    p, sae = day_of_work["p"], day_of_work["sae"]
    page = client_as("coordinator").get("/participants/001/timeline/").content.decode()
    assert "<svg" in page and "infusion 1 (day 0)" in page and "consent signed (day -10)" in page
    assert f"{sae.ae_id} Lung infection, grade 3, serious: onset day 18" in page and f'href="/adverse-events/{sae.pk}/"' in page
    assert p.enrolled_on.isoformat() in page  # the site's dates, for a role that sees them
    dsmb = client_as("dsmb").get("/participants/001/timeline/").content.decode()
    assert "infusion 1 (day 0)" in dsmb and p.enrolled_on.isoformat() not in dsmb and "/visits/" not in dsmb


def test_the_casebook_is_locked_only_after_the_pi_signed_it_as_it_is(trial, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.dosing.service import edit_infusion
    from trialdesk.edc.participants.models import Participant

    inf = trial.infuse(trial.enrol())
    dm = client_as("data_manager")
    dm.post("/participants/001/lock/", {"lock": "1"})
    assert not Participant.objects.get().locked  # refused: not signed
    page = dm.get("/participants/001/casebook/").content.decode()
    assert "Not signed by the principal investigator" in page and "Lock casebook" not in page
    assert client_as("sub_investigator").post("/participants/001/casebook/sign/", {}).status_code == 403
    pi = client_as("pi")
    wrong = pi.post("/participants/001/casebook/sign/", {"printed_name": "Pi Tester", "password": "not-it"})
    assert wrong.status_code == 422
    form = wrong.content.decode().split('id="sign-casebook"')[1].split("</form>")[0]
    assert "the password is not correct" in form  # at the signature form, where the PI is looking
    assert pi.post("/participants/001/casebook/sign/", {"printed_name": "Pi Tester", "password": PASSWORD}).status_code == 302
    assert "Signed: Pi Tester — Principal investigator" in dm.get("/participants/001/casebook/").content.decode()
    # a change after the signature: the lock is refused until the PI signs again
    edit_infusion(users["coordinator"], inf, changes={"lot": "LOT-2"}, reason="typo", version=inf.version)
    dm.post("/participants/001/lock/", {"lock": "1"})
    assert not Participant.objects.get().locked
    assert "changed after that signature" in dm.get("/participants/001/casebook/").content.decode()
    trial.sign_casebook(Participant.objects.get())
    dm.post("/participants/001/lock/", {"lock": "1"})
    assert Participant.objects.get().locked
    assert "Signed: Pi Tester" in dm.get("/participants/001/casebook/").content.decode()  # locking keeps the signature


def test_the_casebook_prints_every_record_of_the_participant(day_of_work, users, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.visits.models import Visit
    from trialdesk.edc.visits.service import save_form

    v = Visit.objects.filter(done_on__isnull=False, day__gt=0).first()
    assert "vital_signs" in v.forms
    save_form(users["coordinator"], v, "vital_signs", {"vs_date": v.done_on, "sysbp": 131, "diabp": 82})
    page = client_as("monitor").get("/participants/001/casebook/").content.decode()
    assert "Lovelace" in page and "LOT-1" in page and "Lung infection" in page and "@media print" not in page
    assert "Sign the casebook" not in page  # the monitor reads it and signs nothing
    assert "<dt>Systolic blood pressure (mmHg)</dt><dd>131</dd>" in page
    assert client_as("dsmb").get("/participants/001/casebook/").status_code == 403  # identified: not for the DSMB

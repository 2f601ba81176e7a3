"""The public face in the trial desk: the study page and the self-referral questionnaire open
without a login; nothing is stored until the person confirms; a confirmed referral lands in the
coordinators' screening log (not the DSMB's or the sponsor's), audited; CSRF, the rate limit,
repeats and a script typed into a free-text field are handled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client

from tests.public.pagetext import expected_on_study_page, visible_text
from tests.public.test_questionnaire import hopeful

SECOND = Path(__file__).resolve().parents[1] / "fixtures" / "protocols" / "hand_trial.yaml"
CONTACT = {"name": "Rosa Parks", "phone": "+1 904 555 0100", "email": "rosa@example.org", "message": "", "consent": "on"}


@pytest.fixture(autouse=True)
def _fresh_rate_limit():  # type: ignore[no-untyped-def]
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def p():  # type: ignore[no-untyped-def]
    from trialdesk.edc.web import protocol

    return protocol()


def _token(response) -> str:  # type: ignore[no-untyped-def]
    m = re.search(r'name="token" value="([^"]+)"', response.content.decode())
    assert m, response.content.decode()[:2000]
    return m.group(1)


def answer(client: Client, p, **changes: str):  # type: ignore[no-untyped-def]
    return client.post("/study/questions/", hopeful(p, **changes))


def give_contact(client: Client, p, contact: dict[str, str] | None = None, **changes: str):  # type: ignore[no-untyped-def]
    result = answer(client, p, **changes)
    assert result.status_code == 200
    return client.post("/study/contact/", {"token": _token(result), **(contact or CONTACT)})


def refer(client: Client, p, contact: dict[str, str] | None = None, **changes: str):  # type: ignore[no-untyped-def]
    confirm = give_contact(client, p, contact, **changes)
    assert confirm.status_code == 200, confirm.content.decode()
    return client.post("/study/confirm/", {"token": _token(confirm)})


def _referrals() -> int:
    from trialdesk.edc.referrals.models import Referral

    return Referral.objects.count()


@pytest.mark.django_db
def test_the_study_page_opens_without_login_and_says_what_the_protocol_file_says(p) -> None:  # type: ignore[no-untyped-def]
    response = Client().get("/study/")
    assert response.status_code == 200
    text = visible_text(response.content.decode())
    assert [s for s in expected_on_study_page(p) if s not in text] == []
    assert 'href="/study/questions/"' in response.content.decode()


@pytest.mark.django_db
def test_the_questionnaire_opens_without_login_sets_no_tracking_cookie_and_is_not_cached(p) -> None:  # type: ignore[no-untyped-def]
    response = Client().get("/study/questions/")
    assert response.status_code == 200
    text = visible_text(response.content.decode())
    assert all(q.text in text for q in p.self_referral.questions)
    assert set(response.cookies) <= {"csrftoken"}
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert not re.search(r"<script|<link|<img|<iframe|src=|url\(|@import", html)  # nothing loaded, from here or elsewhere


@pytest.mark.django_db
def test_a_post_without_the_csrf_token_is_refused_and_stores_nothing(p) -> None:  # type: ignore[no-untyped-def]
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/study/questions/", hopeful(p)).status_code == 403
    assert strict.post("/study/confirm/", {"token": "x"}).status_code == 403
    assert _referrals() == 0


@pytest.mark.django_db
def test_nothing_is_stored_until_the_person_confirms_and_the_referral_is_audited(p) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit.models import AuditEntry

    client = Client()
    confirm = give_contact(client, p)
    assert confirm.status_code == 200
    assert "Nothing has been sent yet" in confirm.content.decode()
    assert _referrals() == 0 and AuditEntry.objects.count() == 0

    done = client.post("/study/confirm/", {"token": _token(confirm)})
    assert done.status_code == 200 and "Your reference is R-0001" in visible_text(done.content.decode())
    from trialdesk.edc.referrals.models import Referral

    r = Referral.objects.get()
    assert (r.name, r.phone, r.email, r.verdict, r.consent_to_contact) == ("Rosa Parks", "+1 904 555 0100", "rosa@example.org",
                                                                            "may_be_eligible", True)
    assert r.answers["age"] == 18 and r.answers["heart"] == "no"
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.model, entry.username, entry.role, entry.screening_id) == (
        "create", "referrals.Referral", "public self-referral", "public", "R-0001")
    assert entry.changes["name"] == [None, "Rosa Parks"]
    from trialdesk.edc.audit.trail import verify

    assert verify().ok


@pytest.mark.django_db
def test_probably_not_eligible_is_said_with_the_reason_and_can_still_be_referred(p) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    result = answer(client, p, stem_cells="yes")
    text = visible_text(result.content.decode())
    assert "This study is not taking new participants, and your answers suggest it would not suit you" in text  # completed
    assert "People who have had mesenchymal stem cell treatment before cannot take part." in text
    assert "This is not a decision about whether you can take part" in text
    done = client.post("/study/confirm/", {"token": _token(client.post("/study/contact/", {"token": _token(result), **CONTACT}))})
    assert done.status_code == 200
    from trialdesk.edc.referrals.models import Referral

    assert Referral.objects.get().reasons == ["People who have had mesenchymal stem cell treatment before cannot take part."]


@pytest.mark.django_db
def test_missing_contradictory_and_implausible_answers_are_named_beside_their_questions(p) -> None:  # type: ignore[no-untyped-def]
    raw = hopeful(p, age="212", ild="no", autoimmune="yes")
    del raw["heart"]
    response = Client().post("/study/questions/", raw)
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="id_age_error">212 is not a possible age', html)
    assert re.search(r'id="id_heart_error">Please answer this question.', html)
    assert re.search(r'id="id_autoimmune_error">You said no doctor has told you', html)
    assert 'aria-invalid="true"' in html and "Please check 3 answers" in html
    assert 'value="212"' in html  # the person's entry is kept for correction
    assert _referrals() == 0


@pytest.mark.django_db
def test_contact_needs_a_phone_or_email_and_the_consent_box(p) -> None:  # type: ignore[no-untyped-def]
    response = give_contact(Client(), p, {"name": "Rosa Parks", "phone": "", "email": "", "message": ""})
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="id_phone_error">Give a phone number or an email address', html)
    assert re.search(r'id="id_consent_error">Tick this box to ask the study team to contact you', html)
    bad = give_contact(Client(), p, {**CONTACT, "phone": "call me", "email": "not-an-email"})
    assert bad.status_code == 400 and "Please give a phone number with digits only" in bad.content.decode()
    assert _referrals() == 0


@pytest.mark.django_db
def test_a_script_in_the_message_is_stored_as_plain_text_and_shown_escaped(p, client_as) -> None:  # type: ignore[no-untyped-def]
    script = '<script>alert("x")</script> <img src=x onerror=alert(1)>'
    client = Client()
    confirm = give_contact(client, p, {**CONTACT, "message": script})
    html = confirm.content.decode()
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert "It will be kept exactly as you typed it, as plain text" in html
    client.post("/study/confirm/", {"token": _token(confirm)})
    from trialdesk.edc.referrals.models import Referral

    assert Referral.objects.get().message == script
    log = client_as("coordinator").get("/screening/").content.decode()
    assert "<script>alert" not in log and "<img src=x" not in log and "&lt;script&gt;alert" in log


@pytest.mark.django_db
def test_a_name_with_markup_is_refused_beside_the_field(p) -> None:  # type: ignore[no-untyped-def]
    response = give_contact(Client(), p, {**CONTACT, "name": "<b>Rosa</b>"})
    assert response.status_code == 400
    assert re.search(r'id="id_name_error">A name cannot contain', response.content.decode())


@pytest.mark.django_db
def test_pressing_confirm_twice_or_referring_again_stores_one_referral(p) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    confirm = give_contact(client, p)
    first = client.post("/study/confirm/", {"token": _token(confirm)})
    again = client.post("/study/confirm/", {"token": _token(confirm)})
    assert "R-0001" in first.content.decode()
    assert "We already have your referral" in again.content.decode() and "Nothing new was stored" in again.content.decode()
    later = refer(Client(), p, {**CONTACT, "name": "  rosa   PARKS ", "phone": "+1 (904) 555-0100"}, heart="yes")
    assert "We already have your referral" in later.content.decode()
    assert _referrals() == 1
    other = refer(Client(), p, {**CONTACT, "name": "Claudette Colvin", "email": "cc@example.org", "phone": ""})
    assert "R-0002" in other.content.decode() and _referrals() == 2


@pytest.mark.django_db
def test_a_tampered_or_missing_token_is_refused_and_nothing_is_stored(p) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    confirm = give_contact(client, p)
    token = _token(confirm)
    forged = client.post("/study/confirm/", {"token": token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")})
    assert forged.status_code == 400 and "please answer the questions again" in forged.content.decode().lower()
    assert client.post("/study/contact/", CONTACT).status_code == 400
    assert _referrals() == 0


@pytest.mark.django_db
def test_posts_beyond_the_hourly_allowance_are_refused_per_address(p, settings) -> None:  # type: ignore[no-untyped-def]
    settings.TRIALDESK_REFERRAL_POSTS_PER_HOUR = 3
    client = Client(REMOTE_ADDR="203.0.113.7")
    codes = [answer(client, p).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = answer(client, p)
    assert refused.status_code == 429 and "too many submissions" in refused.content.decode() and refused["Retry-After"] == "3600"
    assert client.get("/study/questions/").status_code == 200  # reading is never limited
    assert answer(Client(REMOTE_ADDR="198.51.100.9"), p).status_code == 200


@pytest.mark.django_db
def test_the_referral_appears_in_the_coordinators_screening_log_and_not_for_dsmb_or_sponsor(p, client_as) -> None:  # type: ignore[no-untyped-def]
    refer(Client(), p, oxygen_at_rest="not_sure")
    log = client_as("coordinator").get("/screening/")
    text = visible_text(log.content.decode())
    assert "Self-referrals" in text and "R-0001" in text and "Rosa Parks" in text and "rosa@example.org" in text
    assert "May be eligible" in text and "Not sure: 1 question" in text
    for role in ("dsmb", "sponsor"):
        response = client_as(role).get("/screening/")
        assert response.status_code == 403 and "Rosa" not in response.content.decode()


@pytest.mark.django_db
def test_a_second_protocol_file_gets_its_own_page_and_questionnaire_in_the_desk(settings) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.web import protocol

    settings.TRIALDESK_PROTOCOL = str(SECOND)
    second = protocol()
    assert second.id == "hand-trial"
    client = Client()
    assert "Northshore Hand Clinic, Bergen: call the research nurse" in visible_text(client.get("/study/").content.decode())
    page = visible_text(client.get("/study/questions/").content.decode())
    assert "Have you had an operation on that hand in the last 12 months?" in page and "rituximab" not in page
    result = client.post("/study/questions/", {"age": "49", "thumb_pain": "yes", "hand_surgery": "no"})
    assert "The study is for people aged 50 or older." in visible_text(result.content.decode())


@pytest.mark.django_db
def test_change_my_details_goes_back_with_the_entries_kept_and_consent_asked_again(p) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    confirm = give_contact(client, p)
    html = confirm.content.decode()
    answers_token = re.findall(r'name="token" value="([^"]+)"', html)[1]
    back = client.post("/study/contact/", {"token": answers_token, "edit": "1", "name": "Rosa Parks", "phone": "+1 904 555 0100",
                                           "email": "rosa@example.org", "message": ""})
    assert back.status_code == 200
    page = back.content.decode()
    assert 'value="Rosa Parks"' in page and "you can join the study team&#x27;s interest list" in page
    assert not re.search(r'<input[^>]*name="consent"[^>]*checked', page)
    assert _referrals() == 0


@pytest.mark.django_db
def test_a_protocol_without_a_questionnaire_has_a_study_page_and_no_questions(p, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = SECOND.read_text(encoding="utf-8")
    bare = tmp_path / "bare.yaml"
    bare.write_text(text[: text.index("self_referral:")], encoding="utf-8")
    settings.TRIALDESK_PROTOCOL = str(bare)
    client = Client()
    page = client.get("/study/")
    assert page.status_code == 200 and "Splint Therapy" in page.content.decode() and "/study/questions/" not in page.content.decode()
    assert client.get("/study/questions/").status_code == 404


@pytest.mark.django_db
def test_a_coordinator_marks_a_referral_contacted_with_a_reason_and_it_is_audited(p, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.audit.models import AuditEntry
    from trialdesk.edc.referrals.models import Referral

    refer(Client(), p)
    coordinator = client_as("coordinator")
    no_reason = coordinator.post("/referrals/R-0001/status/", {"status": "contacted", "version": "1", "reason": ""}, follow=True)
    assert "R-0001 not changed" in no_reason.content.decode() and Referral.objects.get().status == "new"
    done = coordinator.post("/referrals/R-0001/status/", {"status": "contacted", "version": "1", "reason": "phoned, visit booked"},
                            follow=True)
    assert "R-0001 marked contacted." in done.content.decode()
    assert Referral.objects.get().status == "contacted"
    entry = AuditEntry.objects.order_by("-seq").first()
    assert entry is not None
    assert (entry.action, entry.username, entry.changes, entry.reason) == ("update", "coordinator", {"status": ["new", "contacted"]},
                                                                           "phoned, visit booked")
    stale = coordinator.post("/referrals/R-0001/status/", {"status": "closed", "version": "1", "reason": "x"}, follow=True)
    assert "was changed by someone else" in stale.content.decode() and Referral.objects.get().status == "contacted"
    for role in ("dsmb", "sponsor", "monitor"):
        assert client_as(role).post("/referrals/R-0001/status/", {"status": "closed", "version": "2", "reason": "x"}).status_code == 403
    assert Client().post("/referrals/R-0001/status/", {"status": "closed", "version": "2", "reason": "x"}).status_code == 302  # to login
    assert Referral.objects.get().status == "contacted"

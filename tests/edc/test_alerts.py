"""E-mail alerts through Django's mail backend (locmem in the suite): a new self-referral to the staff who screen,
a new query to the site staff who entered the participant's data; no names or contact details in an e-mail."""

from __future__ import annotations

from django.core import mail


def _emails(users, **who: str) -> None:  # type: ignore[no-untyped-def]
    for role, address in who.items():
        users[role].email = address
        users[role].save()


def test_a_new_self_referral_is_e_mailed_to_the_staff_who_screen_without_the_persons_details(users, client) -> None:  # type: ignore[no-untyped-def]
    from django.core.cache import cache

    from trialdesk.edc.audit.models import AuditEntry
    from trialdesk.edc.referrals.models import Referral
    from trialdesk.edc.web import protocol

    from .test_referrals import refer

    cache.clear()
    _emails(users, coordinator="coord@example.org", pi="pi@example.org", monitor="cra@example.org", dsmb="dsmb@example.org")
    refer(client, protocol())
    r = Referral.objects.get()
    assert len(mail.outbox) == 1
    msg = mail.outbox[0]
    assert sorted(msg.to) == ["coord@example.org", "pi@example.org"]  # who screens; not the monitor or the DSMB
    assert r.number in msg.subject and f"/screening/#{r.number}" in msg.body
    for private in (r.name, r.phone, r.email):
        assert not private or private not in msg.body + msg.subject
    assert AuditEntry.objects.filter(action="notify", form="referral").count() == 1
    cache.clear()


def test_a_query_is_e_mailed_to_the_site_staff_who_entered_the_data(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.quality.service import raise_query

    _emails(users, coordinator="coord@example.org", sub_investigator="subi@example.org", monitor="cra@example.org")
    p = trial.enrol()  # the coordinator screened, consented and enrolled: 001's data are theirs
    mail.outbox.clear()
    raise_query(users["monitor"], p, target="Vital signs, pulse", text="please check the pulse against the source")
    assert len(mail.outbox) == 1
    msg = mail.outbox[0]
    assert msg.to == ["coord@example.org"]  # not the sub-investigator, who entered nothing of 001; not the monitor
    assert "subject 001" in msg.subject and "please check the pulse" in msg.body and "Lovelace" not in msg.body


def test_a_query_on_data_no_one_at_the_site_entered_goes_to_every_site_account_that_answers(trial, users) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.alerts import query_assignees
    from trialdesk.edc.quality.models import Query

    _emails(users, coordinator="coord@example.org", sub_investigator="subi@example.org", pi="pi@example.org")
    p = trial.enrol()
    users["coordinator"].email = ""
    users["coordinator"].save()  # the one who entered the data has no address: the site's other staff are told
    q = Query(participant=p, target="x", text="check")
    assert sorted(u.username for u in query_assignees(q)) == ["pi", "sub_investigator"]


def test_a_refused_query_sends_nothing(trial, users) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from trialdesk.edc.quality.service import raise_query
    from trialdesk.trial.errors import ConductError

    _emails(users, coordinator="coord@example.org")
    p = trial.enrol()
    mail.outbox.clear()
    with pytest.raises(ConductError):
        raise_query(users["monitor"], p, target="x", text="  ")
    assert mail.outbox == []

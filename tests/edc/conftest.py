"""The EDC suite runs on SQLite by default and on PostgreSQL when
TRIALDESK_TEST_DATABASE_URL is set (e.g. postgresql://postgres@127.0.0.1:5432/trialdesk_test;
pytest-django creates and drops test_<name> there)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

os.environ["DJANGO_SETTINGS_MODULE"] = "trialdesk.edc.settings"
os.environ.setdefault("TRIALDESK_SECRET_KEY", "test-only-secret-key-for-the-edc-suite")
os.environ["TRIALDESK_SECURE_COOKIES"] = "0"
os.environ["TRIALDESK_HTTPS"] = "0"  # the test client and the browser tests' server speak plain HTTP on loopback
if os.environ.get("TRIALDESK_TEST_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["TRIALDESK_TEST_DATABASE_URL"]
else:
    os.environ.pop("DATABASE_URL", None)

import django
import pytest

# pytest-django configures Django at start-up only when DJANGO_SETTINGS_MODULE is already set;
# this folder sets it, so Django is set up here, before the test modules import models.
django.setup()

from trialdesk.edc.permissions import ROLES  # noqa: E402

PASSWORD = "Correct-horse-42"


@pytest.fixture(autouse=True)
def _fast_hashing(settings):  # type: ignore[no-untyped-def]
    # argon2 is the production hasher (tested in test_accounts); MD5 keeps this suite fast
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def users(db):  # type: ignore[no-untyped-def]
    from trialdesk.edc.accounts.service import create_user

    return {role: create_user(role, role, PASSWORD, first_name=role.replace("_", " ").title(), last_name="Tester",
                              validate=False, must_change_password=False) for role in ROLES}


@pytest.fixture
def client_as(users):  # type: ignore[no-untyped-def]
    from django.test import Client

    def make(role: str) -> Client:
        c = Client()
        c.force_login(users[role])
        return c

    return make


def days_ago(n: int) -> dt.date:
    from django.utils import timezone

    return timezone.localdate() - dt.timedelta(days=n)


def at_days_ago(n: int, hour: int = 10) -> dt.datetime:
    from django.utils import timezone

    d = days_ago(n)
    return timezone.make_aware(dt.datetime(d.year, d.month, d.day, hour, 0))


def eligible_answers(protocol) -> tuple[dict[str, bool], dict[str, str]]:  # type: ignore[no-untyped-def]
    answers = {aid: False for _, aid, _ in protocol.attestation_items()}
    answers.update(consent_and_compliance=True, ipaf=True, no_improvement=True)
    return answers, {}


class Trial:
    """Drives the life cycle through the services, as the views and the API do."""

    def __init__(self, users) -> None:  # type: ignore[no-untyped-def]
        self.users = users

    def screen(self, name: str = "Ada", screened_ago: int = 40):  # type: ignore[no-untyped-def]
        from trialdesk.edc.screening.service import screen_by_hand

        return screen_by_hand(self.users["coordinator"], screened_on=days_ago(screened_ago), given_name=name, family_name="Lovelace",
                              mrn=f"MRN-{name}", birth_date=dt.date(1960, 5, 1), sex="female")

    def sign(self, entry, *, eligible: bool = True):  # type: ignore[no-untyped-def]
        from trialdesk.edc.screening.service import sign_off
        from trialdesk.edc.web import protocol
        from trialdesk.trial.signoff import open_criteria

        p = protocol()
        answers, _ = eligible_answers(p)
        if not eligible:
            answers["contraception"] = True
        decisions = {cid: ("met" if cid.startswith("I") else "not_met") for cid in open_criteria(p, entry.snapshot)}
        pi = self.users["pi"]
        return sign_off(pi, entry, answers=answers, decisions=decisions, password=PASSWORD, printed_name=pi.get_full_name())

    def consent(self, entry, ago: int = 30):  # type: ignore[no-untyped-def]
        from trialdesk.edc.participants.service import record_consent

        return record_consent(self.users["coordinator"], entry, icf_version="1.0 (2019-10-01)", signed_at=at_days_ago(ago),
                              obtained_by="Coordinator Tester", copy_given=True)

    def ready(self, name: str = "Ada"):  # type: ignore[no-untyped-def]
        entry = self.screen(name)
        self.sign(entry)
        entry.refresh_from_db()
        self.consent(entry)
        entry.refresh_from_db()
        return entry

    def enrol(self, name: str = "Ada", ago: int = 25):  # type: ignore[no-untyped-def]
        from trialdesk.edc.participants.service import enrol

        entry = self.ready(name)
        return enrol(self.users["coordinator"], entry, enrolled_on=days_ago(ago))

    def infuse(self, participant, ago: int = 20, total_cells: float = 52_500_000, weight: float = 70.0, number: int = 1):  # type: ignore[no-untyped-def]
        from trialdesk.edc.dosing.service import record_infusion

        return record_infusion(self.users["coordinator"], participant, number=number, date=days_ago(ago), started_at=dt.time(9, 0),
                               stopped_at=dt.time(9, 45), weight_kg=weight, total_cells=total_cells, lot="LOT-1", donor_id="D-7",
                               premedication="", vitals={"before": {"sbp": 120}}, interrupted=False, interruptions="")

    def sign_casebook(self, participant):  # type: ignore[no-untyped-def]
        """The principal investigator signs the participant's casebook as it is now (so the data manager may lock it)."""
        from trialdesk.edc.casebook.service import sign

        pi = self.users["pi"]
        return sign(pi, participant, password=PASSWORD, printed_name=pi.get_full_name())


@pytest.fixture
def trial(users):  # type: ignore[no-untyped-def]
    return Trial(users)


@contextlib.contextmanager
def tampering() -> Iterator[Any]:
    """A cursor that writes behind the trial desk's back, as someone with database access would.
    On PostgreSQL the audit table's append-only trigger is disabled first (a table owner can;
    inside the test's transaction, so the rollback restores it)."""
    from django.db import connection

    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_append_only")
        yield cur

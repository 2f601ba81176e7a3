from __future__ import annotations

from django.test import Client

from trialdesk.edc import settings as edc_settings
from trialdesk.edc.accounts.service import create_user


def test_passwords_are_hashed_with_argon2_in_production_settings() -> None:
    assert edc_settings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


def test_sessions_time_out_and_cookies_are_secure_unless_told_otherwise() -> None:
    assert edc_settings.SESSION_COOKIE_AGE == 15 * 60 and edc_settings.SESSION_SAVE_EVERY_REQUEST
    assert "django.middleware.csrf.CsrfViewMiddleware" in edc_settings.MIDDLEWARE


def test_an_account_created_by_an_administrator_must_change_its_password_first(db) -> None:  # type: ignore[no-untyped-def]
    create_user("nina", "coordinator", "Temporary-pass-99", first_name="Nina", last_name="Nurse")
    c = Client()
    r = c.post("/login/", {"username": "nina", "password": "Temporary-pass-99"})
    assert r.status_code == 302
    assert c.get("/participants/")["Location"] == "/password/"
    r = c.post("/password/", {"old_password": "Temporary-pass-99", "new_password1": "My-own-secret-2024",
            "new_password2": "My-own-secret-2024"})
    assert r.status_code == 302
    assert c.get("/participants/").status_code == 200


def test_five_failed_logins_lock_the_account(db) -> None:  # type: ignore[no-untyped-def]
    create_user("omar", "monitor", "Right-password-1", must_change_password=False)
    c = Client()
    for _ in range(5):
        c.post("/login/", {"username": "omar", "password": "wrong"})
    r = c.post("/login/", {"username": "omar", "password": "Right-password-1"})
    assert r.status_code in (403, 429) and "locked" in r.content.decode().lower()


def test_administrator_creates_accounts_and_user_ids_are_unique(client_as) -> None:  # type: ignore[no-untyped-def]
    c = client_as("admin")
    form = {"username": "sue", "first_name": "Sue", "last_name": "Sub", "role": "sub_investigator", "password": "Temporary-pass-77"}
    assert c.post("/users/", form).status_code == 302
    again = c.post("/users/", form)
    assert again.status_code == 200 and "taken" in again.content.decode()


def test_the_users_command_creates_an_account(db) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from trialdesk.edc.commands import app

    r = CliRunner().invoke(app, ["users", "create", "rita", "--role", "coordinator", "--password", "Temporary-pass-55"])
    assert r.exit_code == 0 and "must change the password" in r.output
    bad = CliRunner().invoke(app, ["users", "create", "rob", "--role", "chief", "--password", "Temporary-pass-55"])
    assert bad.exit_code == 2 and "unknown role" in bad.output

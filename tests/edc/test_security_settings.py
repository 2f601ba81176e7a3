"""Production settings: Django's deployment checks pass with nothing to report, the server
refuses to start without a secret key, and the responses carry the security headers and
cookie flags a hospital's security review looks for (HSTS, CSP, no framing, no sniffing,
Secure and HttpOnly cookies).

Settings are read once per process, so production is started in a fresh interpreter with the
environment a deployment has (no TRIALDESK_DEBUG, a long random key, HTTPS in front)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: what this suite sets for itself and a deployment would not
TEST_ONLY = ("TRIALDESK_DEBUG", "TRIALDESK_SECURE_COOKIES", "TRIALDESK_HTTPS", "DATABASE_URL", "TRIALDESK_TEST_DATABASE_URL",
             "DJANGO_ALLOW_ASYNC_UNSAFE")  # the browser tests' switch for their live-server thread


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TEST_ONLY and not k.startswith("PYTEST")}
    env.update(DJANGO_SETTINGS_MODULE="trialdesk.edc.settings", TRIALDESK_SECRET_KEY=secrets.token_urlsafe(50),
               TRIALDESK_ALLOWED_HOSTS="trialdesk.example.org", TRIALDESK_DATA_DIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300, cwd=REPO)


@pytest.mark.slow
def test_the_deployment_checks_find_nothing_to_report_in_production_settings(tmp_path: Path) -> None:
    r = run(["-m", "django", "check", "--deploy", "--fail-level", "DEBUG"], production_env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "System check identified no issues (0 silenced)" in r.stdout or "no issues" in r.stdout, r.stdout + r.stderr


@pytest.mark.slow
def test_the_deployment_checks_do_complain_when_debug_is_on(tmp_path: Path) -> None:
    # the check above could pass by checking nothing; with DEBUG on it must speak up
    r = run(["-m", "django", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path, TRIALDESK_DEBUG="1"))
    assert r.returncode != 0 and "security.W018" in r.stdout + r.stderr


@pytest.mark.slow
def test_the_server_refuses_to_start_in_production_without_a_secret_key(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    del env["TRIALDESK_SECRET_KEY"]
    cli = "import sys; from trialdesk.cli import app; sys.argv = ['trialdesk', 'serve', '--production', '--port', '8999']; app()"
    r = run(["-c", cli], env)
    assert r.returncode == 2
    assert "TRIALDESK_SECRET_KEY is not set" in r.stderr
    # and the WSGI application itself (what gunicorn or waitress would load) refuses too
    r = run(["-c", "import trialdesk.edc.wsgi"], env)
    assert r.returncode != 0 and "TRIALDESK_SECRET_KEY is not set" in r.stderr


PROBE = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from trialdesk.edc.accounts.service import create_user
create_user("nina", "coordinator", "Correct-horse-42", must_change_password=False)
c = Client(HTTP_HOST="trialdesk.example.org")
plain = c.get("/login/")
print("REDIRECT", plain.status_code, plain.get("Location"))
page = c.get("/login/", secure=True)
for name in ("Strict-Transport-Security", "Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"):
    print("HEADER", name, page.get(name))
signed_in = c.post("/login/", {"username": "nina", "password": "Correct-horse-42"}, secure=True)
for morsel in signed_in.cookies.values():
    print("COOKIE", morsel.key, "secure" if morsel["secure"] else "-", "httponly" if morsel["httponly"] else "-", morsel["samesite"])
"""


@pytest.mark.slow
def test_production_answers_carry_hsts_csp_and_secure_cookies(tmp_path: Path) -> None:
    r = run(["-c", PROBE], production_env(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "REDIRECT 301 https://trialdesk.example.org/login/" in lines
    headers = {line.split(" ", 2)[1]: line.split(" ", 2)[2] for line in lines if line.startswith("HEADER")}
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    csp = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'" and csp["object-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'" and "unsafe-inline" not in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    cookies = {line.split()[1]: line.split()[2:] for line in lines if line.startswith("COOKIE")}
    assert cookies["sessionid"] == ["secure", "httponly", "Lax"]
    assert cookies["csrftoken"][0] == "secure"


@pytest.mark.slow
def test_a_loopback_server_without_secure_cookies_is_not_sent_to_https(tmp_path: Path) -> None:
    # tests and benchmarks serve plain HTTP on 127.0.0.1 with TRIALDESK_SECURE_COOKIES=0; they must not be redirected
    probe = ("import django; django.setup(); from django.test import Client; "
             "print('STATUS', Client(HTTP_HOST='127.0.0.1').get('/login/').status_code)")
    r = run(["-c", probe], production_env(tmp_path, TRIALDESK_SECURE_COOKIES="0", TRIALDESK_ALLOWED_HOSTS="127.0.0.1"))
    assert "STATUS 200" in r.stdout, r.stdout + r.stderr


def test_every_page_carries_the_content_security_policy(client_as) -> None:  # type: ignore[no-untyped-def]
    page = client_as("coordinator").get("/participants/")
    assert page.status_code == 200 and "script-src 'self'" in page["Content-Security-Policy"]


def test_the_api_offers_its_schema_and_no_docs_page_that_would_load_scripts_from_a_cdn(client_as) -> None:  # type: ignore[no-untyped-def]
    import json

    coordinator = client_as("coordinator")
    schema = coordinator.get("/api/openapi.json")
    assert schema.status_code == 200 and "/api/participants/{subject_id}/infusions" in json.loads(schema.content)["paths"]
    docs = coordinator.get("/api/docs")
    assert docs.status_code == 404, "a Swagger UI page would fetch scripts from a CDN that the Content Security Policy refuses"
    assert b"cdn.jsdelivr" not in docs.content and b"swagger-ui" not in docs.content


def test_the_dsmb_report_may_use_its_own_inline_style_and_no_other(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    import base64
    import hashlib
    import re

    r = client_as("dsmb").get("/safety/dsmb/")
    assert r.status_code == 200
    css = re.search(rb"<style[^>]*>(.*?)</style>", r.content, flags=re.S)
    assert css is not None
    digest = base64.b64encode(hashlib.sha256(css.group(1)).digest()).decode()
    policy = dict(part.strip().split(" ", 1) for part in r["Content-Security-Policy"].split(";"))
    assert f"'sha256-{digest}'" in policy["style-src"] and "unsafe-inline" not in policy["style-src"]
    assert policy["script-src"] == "'self'"
    assert policy.get("style-src-attr") == "'unsafe-inline'"  # the swimmer plot's SVG styles its elements with attributes


@pytest.mark.slow
def test_the_browser_enforces_the_policy_and_the_pages_still_work(trial, live_server) -> None:  # type: ignore[no-untyped-def]
    """In Chromium, which enforces the Content Security Policy: the AE form's term search (a script
    file) still suggests terms, the DSMB report keeps its own style, and nothing is refused."""
    from playwright.sync_api import sync_playwright

    from .test_browser import ARGS, CHROMIUM, SHOTS, _login

    p = trial.enrol()
    trial.infuse(p)
    violations: list[str] = []
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the live server thread uses the ORM while Playwright's loop runs here
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            _login(page, live_server.url, "coordinator")
            page.goto(f"{live_server.url}/adverse-events/new/")
            page.fill("[data-ctcae-search]", "Headache")
            page.locator("#term-coding", has_text="MedDRA").wait_for(timeout=10_000)
            shots = SHOTS.parent / "security"  # beside, not inside, the walk-through's numbered screenshots
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "csp-ae-term-search.png"), full_page=True)
            page.context.clear_cookies()
            _login(page, live_server.url, "dsmb")
            page.goto(f"{live_server.url}/safety/dsmb/")
            margin = page.locator("body").evaluate("body => getComputedStyle(body).margin")
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    assert margin != "8px", "the DSMB report's own style was refused"  # 8px is the browser's default body margin
    assert not violations, violations

"""The authorisation matrix: every page of the trial desk (found by walking Django's URL resolver)
and every API operation (read from the OpenAPI schema), tried by every role, a stranger, an
inactive account and an account of another site, checked against the one permission table.

- A URL or API operation with no entry in ``permissions.PAGES`` / ``permissions.API`` fails.
- A view guarded by ``@requires(action)`` must be registered with that same action.
- The expected matrix is derived from TABLE, PAGES and API and compared with the frozen copy in
  ``authorisation_matrix.txt`` beside this file: a change to the table shows there as a diff
  that someone has to make on purpose. To accept a change, regenerate it with
  ``PYTHONPATH=src python -m tests.edc.test_authorisation_matrix > tests/edc/authorisation_matrix.txt``
  and review the diff.
- Every signed-in role the table refuses gets 403; a stranger, an inactive account and an
  account of another site are sent to sign in (pages) or get 401 (API); nobody gets a 5xx.
- A role that sees de-identified data finds no name, MRN, birth date or screening number of a
  participant on any page or API answer it may open.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trialdesk.edc.permissions import API, PAGES, PUBLIC, ROLES, SIGNED_IN, TABLE

FROZEN = Path(__file__).with_name("authorisation_matrix.txt")
#: who is tried besides the roles: nobody signed in, a deactivated account, an account of another site
OUTSIDERS = ("anonymous", "inactive", "other_site")
OTHER_SITE = "Mayo Clinic in Arizona"
#: what identifies a participant in the scenario (family name, MRN, birth year, screening number)
IDENTIFIERS = ("Lovelace", "MRN-Ada", "1960", "S-0001")


# --- the expected matrix, derived from the permission module ------------------------------------


def _who(action: str) -> list[str]:
    if action == PUBLIC:
        return [*ROLES, *OUTSIDERS]
    if action == SIGNED_IN:
        return list(ROLES)
    return [r for r in ROLES if r in TABLE[action]]


def derived_matrix() -> list[str]:
    """One line per action, page and API operation: who may, and who sees it de-identified."""
    identified = TABLE["view_identified"]
    lines = ["# derived from trialdesk.edc.permissions (TABLE, PAGES, API); regenerate: see tests/edc/test_authorisation_matrix.py"]
    for action in sorted(TABLE):
        lines.append(f"action {action}: {' '.join(_who(action)) or '-'}")
    for kind, registry in (("page", PAGES), ("api", API)):
        for name in sorted(registry):
            who = _who(registry[name])
            hidden = [r for r in who if r in ROLES and r not in identified]
            tail = f" | de-identified: {' '.join(hidden)}" if hidden else ""
            lines.append(f"{kind} {name} [{registry[name]}]: {' '.join(who) or '-'}{tail}")
    return lines


def test_the_permission_table_matches_its_frozen_matrix() -> None:
    frozen = FROZEN.read_text(encoding="utf-8").splitlines()
    derived = derived_matrix()
    added = sorted(set(derived) - set(frozen))
    removed = sorted(set(frozen) - set(derived))
    assert not added and not removed, (
        "the permission table changed; review and regenerate tests/edc/authorisation_matrix.txt\n"
        + "\n".join([f"+ {x}" for x in added] + [f"- {x}" for x in removed]))


# --- the URL patterns and API operations the project actually has --------------------------------


def _walk(resolver: Any, prefix: str = "", namespace: str | None = None) -> Iterator[tuple[str, str, Any]]:
    from django.urls import URLResolver

    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p, prefix + str(p.pattern), p.namespace or namespace)
        else:
            name = f"{namespace}:{p.name}" if namespace and p.name else p.name
            yield name or f"<unnamed {prefix}{p.pattern}>", prefix + str(p.pattern), p.callback


def url_patterns() -> dict[str, tuple[str, Any]]:
    from django.urls import get_resolver

    return {name: (route, callback) for name, route, callback in _walk(get_resolver())}


def api_operations() -> set[str]:
    from trialdesk.edc.api import api

    return {f"{method.upper()} {path}" for path, ops in api.get_openapi_schema()["paths"].items() for method in ops}


def _is_api_operation(route: str, callback: Any) -> bool:
    return route.startswith("api/") and getattr(callback, "__name__", "") == "sync_view_wrapper"


def test_every_page_of_the_project_is_in_the_registry(db) -> None:  # type: ignore[no-untyped-def]
    pages = {name for name, (route, cb) in url_patterns().items() if not _is_api_operation(route, cb)}
    assert not pages - set(PAGES), f"pages with no entry in permissions.PAGES: {sorted(pages - set(PAGES))}"
    assert not set(PAGES) - pages, f"entries in permissions.PAGES with no page: {sorted(set(PAGES) - pages)}"


def test_every_api_operation_is_in_the_registry(db) -> None:  # type: ignore[no-untyped-def]
    ops = api_operations()
    assert ops == set(API), f"missing from permissions.API: {sorted(ops - set(API))}; no such operation: {sorted(set(API) - ops)}"


def test_every_registered_action_is_one_the_table_knows() -> None:
    for name, action in {**PAGES, **API}.items():
        assert action in TABLE or action in (PUBLIC, SIGNED_IN), f"{name}: unknown action {action!r}"


def test_each_guarded_view_asks_the_action_its_page_is_registered_with(db) -> None:  # type: ignore[no-untyped-def]
    wrong = []
    for name, (_route, callback) in url_patterns().items():
        guarded_by = getattr(callback, "required_action", None)
        registered = PAGES.get(name)
        if registered in TABLE and guarded_by != registered:
            wrong.append(f"{name}: registered {registered!r}, the view asks {guarded_by!r}")
        if registered in (PUBLIC, SIGNED_IN) and guarded_by is not None:
            wrong.append(f"{name}: registered {registered!r}, but the view asks {guarded_by!r}")
    assert not wrong, "; ".join(wrong)


# --- the scenario the pages are opened on --------------------------------------------------------


def _scenario(trial) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from trialdesk.edc.adverse_events.service import record_adverse_event, record_death
    from trialdesk.edc.participants.service import record_pause
    from trialdesk.edc.quality.service import raise_query

    from .conftest import at_days_ago, days_ago

    p = trial.enrol()
    inf = trial.infuse(p)
    entry = trial.screen("Second")
    ae = record_adverse_event(trial.users["coordinator"], p, term="Headache", grade=2, description="Lovelace said her head ached",
                              onset=days_ago(10), resolved=None, serious=False, seriousness=[], relatedness="unrelated",
                              outcome="recovering", action_taken="none", learned_at=at_days_ago(9), suggested_from="")
    q = raise_query(trial.users["monitor"], p, target="x", text="check")
    pause = record_pause(trial.users["pi"], rule_id="S3", action="", since=days_ago(1), description="")
    dead = trial.enrol("Dora", ago=2)  # a recorded death report, which whoever sees participants may read
    from .test_adverse_events import record
    from .test_death_dsmb_medwatch import FATAL

    fatal = record(trial, dead, **(FATAL | {"onset": days_ago(1), "learned_at": at_days_ago(1)}))
    record_death(trial.users["pi"], dead, adverse_event=fatal, date_of_death=days_ago(1), causes="Respiratory failure", autopsy="no",
                 relatedness=fatal.relatedness, narrative="admitted with dyspnoea; died the same night")
    from django.test import Client

    from trialdesk.edc.referrals.models import Referral
    from trialdesk.edc.web import protocol

    from .test_referrals import refer

    refer(Client(), protocol())  # a self-referral, whose status coordinators record
    referral = Referral.objects.get()
    return {"p": p, "inf": inf, "entry": entry, "ae": ae, "q": q, "pause": pause, "dead": dead,
            "referral": referral} | _scenario_outsiders()


def _url(name: str, route: str, s: dict[str, Any]) -> str:
    from django.urls import reverse

    values = {"number": s["entry"].number, "subject_id": s["p"].subject_id, "code": "D1", "form_id": "vital_signs", "pk": s["ae"].pk,
              "path": "edc/app.css", "kind": "sdtm" if name == "export_download" else "candidates"}
    if name in ("infusion_edit", "infusion_entered_in_error"):
        values["number"] = s["inf"].number
    if name == "death_report":
        values["subject_id"] = s["dead"].subject_id
    if name == "referral_status":
        values["number"] = s["referral"].number
    import re

    wanted = re.findall(r"<(?:\w+:)?(\w+)>", route)
    unknown = [k for k in wanted if k not in values]
    assert not unknown, f"{name} ({route}): give the URL parameter(s) {unknown} a value from the scenario in _url()"
    return reverse(name, kwargs={k: values[k] for k in wanted})


#: pages that only answer POST (a GET is 405 for a role that may, 403 for one that may not)
POST_ONLY = {"logout", "export_download", "referral_contact", "referral_confirm", "referral_status"}


def _client(principal: str, s: dict[str, Any], users: dict[str, Any]) -> Any:
    from django.test import Client

    c = Client()
    if principal in ROLES:
        c.force_login(users[principal])
    elif principal != "anonymous":
        c.force_login(s[principal])
    return c


def _sends_to_sign_in(r: Any) -> bool:
    return r.status_code == 302 and r["Location"].startswith("/login/")


def _check_page(principal: str, name: str, url: str, c: Any, users: dict[str, Any]) -> str | None:
    action = PAGES[name]
    data = {"cutoff": dt.date.today().isoformat()} if name == "export_download" else {}
    r = c.post(url, data) if name in POST_ONLY else c.get(url)
    if r.status_code >= 500:
        return f"HTTP {r.status_code}"
    may = principal in _who(action)
    if action == PUBLIC:
        ok = r.status_code in (200, 302, 400, 404, 422)  # /api/ answers 404 unless DEBUG; an empty self-referral step 400 or 422
    elif principal in OUTSIDERS or name == "logout":  # signing out sends everyone to sign in
        ok = _sends_to_sign_in(r)
    elif may:
        ok = r.status_code in (200, 302, 400, 409) and not _sends_to_sign_in(r)
    else:
        ok = r.status_code == 403
    if not ok:
        return f"HTTP {r.status_code}{' -> ' + r['Location'] if r.status_code == 302 else ''} (may={may})"
    if r.status_code == 200 and (principal not in ROLES or principal not in TABLE["view_identified"]):
        body = (b"".join(r.streaming_content) if r.streaming else r.content).decode("utf-8", errors="replace")
        leaked = [x for x in IDENTIFIERS if x in body]
        if leaked:
            return f"shows identified data {leaked}"
    return None


def _check_api(principal: str, op: str, c: Any, s: dict[str, Any]) -> str | None:
    method, path = op.split(" ", 1)
    path = path.replace("{number}", s["entry"].number).replace("{subject_id}", s["p"].subject_id)
    if method == "GET":
        r = c.get(path, {"cutoff": dt.date.today().isoformat(), "q": "head"})
    else:
        r = c.post(path, {}, content_type="application/json")  # an empty body: refused by role (403) before validation (422)
    if r.status_code >= 500:
        return f"HTTP {r.status_code}"
    action = API[op]
    may = principal in _who(action)
    if principal in OUTSIDERS:
        ok = r.status_code == 401
    elif may:
        ok = r.status_code in ((200,) if method == "GET" else (201, 422))
    else:
        ok = r.status_code == 403
    if not ok:
        return f"HTTP {r.status_code} (may={may})"
    if r.status_code == 200 and principal not in TABLE["view_identified"]:
        leaked = [x for x in IDENTIFIERS if x in r.content.decode()]
        if leaked:
            return f"answers identified data {leaked}"
    return None


def _try_everything(principal: str, trial, users) -> list[str]:  # type: ignore[no-untyped-def]
    from django.core.cache import cache

    cache.clear()  # the self-referral pages count POSTs per address per hour
    s = _scenario(trial)
    cache.clear()
    c = _client(principal, s, users)
    wrong = []
    # signing out comes last, after the API, so that the rest is tried signed in
    pages = sorted(url_patterns().items(), key=lambda item: (item[0] == "logout", item[0]))
    for op in sorted(API):
        problem = _check_api(principal, op, c, s)
        if problem:
            wrong.append(f"{op}: {problem}")
    for name, (route, callback) in pages:
        if _is_api_operation(route, callback):
            continue
        url = _url(name, route, s)
        problem = _check_page(principal, name, url, c, users)
        if problem:
            wrong.append(f"{name} ({url}): {problem}")
    return wrong


@pytest.mark.parametrize("principal", [*ROLES, *OUTSIDERS])
def test_every_page_and_api_operation_allows_or_refuses_as_the_table_says(principal: str, trial, users) -> None:  # type: ignore[no-untyped-def]
    wrong = _try_everything(principal, trial, users)
    assert not wrong, f"{principal}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("principal", OUTSIDERS)
def test_no_action_of_the_table_is_open_to_a_stranger_an_inactive_account_or_another_site(principal: str, trial, users) -> None:  # type: ignore[no-untyped-def]
    from .test_permissions import ENDPOINTS
    from .test_permissions import _scenario as action_scenario

    s = action_scenario(trial) | _scenario_outsiders()
    c = _client(principal, s, users)
    wrong = []
    for action, request in ENDPOINTS.items():
        r = request(c, s)
        if not _sends_to_sign_in(r):
            wrong.append(f"{action}: HTTP {r.status_code}")
    assert not wrong, f"{principal}: " + "; ".join(wrong)


def _scenario_outsiders() -> dict[str, Any]:
    from trialdesk.edc.accounts.models import User
    from trialdesk.edc.accounts.service import create_user

    from .conftest import PASSWORD

    inactive = create_user("former", "coordinator", PASSWORD, validate=False, must_change_password=False)
    User.objects.filter(pk=inactive.pk).update(is_active=False)
    other = create_user("elsewhere", "pi", PASSWORD, validate=False, must_change_password=False, site=OTHER_SITE)
    return {"inactive": User.objects.get(pk=inactive.pk), "other_site": other}


def test_an_account_of_another_site_cannot_sign_in_and_one_of_this_site_can(db, client) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.accounts.service import create_user
    from trialdesk.edc.web import protocol

    from .conftest import PASSWORD

    create_user("elsewhere", "pi", PASSWORD, validate=False, must_change_password=False, site=OTHER_SITE)
    create_user("here", "pi", PASSWORD, validate=False, must_change_password=False, site=protocol().locations[0].facility)
    refused = client.post("/login/", {"username": "elsewhere", "password": PASSWORD})
    assert refused.status_code == 200 and "correct username and password" in refused.content.decode()
    assert client.post("/login/", {"username": "here", "password": PASSWORD}).status_code == 302
    assert client.get("/participants/").status_code == 200


def test_an_open_session_ends_when_the_account_moves_to_another_site(trial, client_as) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.accounts.models import User

    c = client_as("coordinator")
    assert c.get("/participants/").status_code == 200
    User.objects.filter(username="coordinator").update(site=OTHER_SITE)
    assert _sends_to_sign_in(c.get("/participants/"))
    assert c.get("/api/participants").status_code == 401


def test_the_users_command_records_the_site(db) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from trialdesk.edc.accounts.models import User
    from trialdesk.edc.commands import app

    args = ["users", "create", "visiting", "--role", "monitor", "--site", OTHER_SITE, "--password", "Temporary-pass-55"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert User.objects.get(username="visiting").site == OTHER_SITE


if __name__ == "__main__":
    print("\n".join(derived_matrix()))

"""Schema-driven fuzzing of the REST API with Schemathesis, signed in as each role.

Schemathesis reads the OpenAPI schema django-ninja publishes (/api/openapi.json) and sends
what the schema allows and what it does not (wrong types, missing fields, strings where dates
go, NUL bytes, huge numbers ...) to every operation, through the WSGI application in this
process, with a fixed seed and a bounded number of examples, so a run is repeatable and takes
a few minutes at most on two cores. Each answer must:

- not be a server error (5xx);
- carry a status code, content type and body that the schema documents;
- and leave the database as the core's rules allow: after every request, every stored
  participant, infusion, consent and screening entry still passes those rules (no dose outside
  the protocol's range, no enrolment beyond the target, no vital sign outside its range, nothing
  longer than its column or outside its choices), and the audit trail's hash chain is intact.

Path parameters are pointed at records that exist (a signed screening entry for consent, a
consented one for enrolment, an enrolled participant for infusions), so the bodies reach the
core's rules rather than stopping at "not found"; unknown ids are in the input catalogue.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from trialdesk.edc.permissions import ROLES
from trialdesk.edc.wsgi import application

SEED = 3929120  # NCT03929120
EXAMPLES = 12
CONFIG = SchemathesisConfig.from_dict({
    "seed": SEED,
    # the session cookie is ours to send, not the fuzzer's to vary
    "generation": {"max-examples": EXAMPLES, "mode": "all", "database": "none", "deterministic": True, "with-security-parameters": False},
    "phases": {"stateful": {"enabled": False}, "coverage": {"unexpected-methods": []}},
})
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application, config=CONFIG)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance, negative_data_rejection]
CSRF = "fuzzingfuzzingfuzzingfuzzing0123"  # a 32-character secret, sent as cookie and header


@pytest.fixture
def in_test_transaction() -> Any:
    """Keep the test's database connection open across the WSGI requests, as Django's own test client does.

    Django closes connections at the start and end of each request; inside the test's transaction
    (on PostgreSQL) that would drop the connection and everything the test set up."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def records(trial, in_test_transaction) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A participant to infuse, a consented entry to enrol and a signed one to consent."""
    participant = trial.enrol("Ada")
    consented = trial.ready("Bea")
    signed = trial.screen("Cleo")
    trial.sign(signed)
    return {"subject_id": participant.subject_id, "enrol": consented.number, "consent": signed.number}


def _session(user: Any) -> str:
    from django.conf import settings as django_settings
    from django.test import Client

    c = Client()
    c.force_login(user)
    return c.cookies[django_settings.SESSION_COOKIE_NAME].value


def core_rules_hold() -> list[str]:
    """What is stored, re-read and held to the rules the core applies when it is written."""
    from trialdesk.edc.audit import trail
    from trialdesk.edc.dosing.models import Infusion
    from trialdesk.edc.dosing.service import _vitals
    from trialdesk.edc.participants.models import Consent, Participant
    from trialdesk.edc.screening.models import ScreeningEntry
    from trialdesk.edc.web import protocol, today
    from trialdesk.trial.dosing import WEIGHT_KG
    from trialdesk.trial.errors import ConductError

    p = protocol()
    broken = []
    if Participant.objects.count() > p.enrolment.target:
        broken.append(f"{Participant.objects.count()} participants enrolled; the target is {p.enrolment.target}")
    rng = p.study_intervention.dose
    for inf in Infusion.objects.select_related("participant"):
        where = f"infusion {inf.number} of {inf.participant.subject_id}"
        if rng is not None and not rng.min * 0.99 <= inf.dose_per_kg <= rng.max * 1.01:
            broken.append(f"{where}: dose {inf.dose_per_kg:g} outside {rng.min:g}–{rng.max:g}")
        if abs(inf.dose_per_kg - inf.total_cells / inf.weight_kg) > 1e-6 * inf.dose_per_kg:
            broken.append(f"{where}: dose per kg does not follow from total cells and weight")
        if not WEIGHT_KG[0] <= inf.weight_kg <= WEIGHT_KG[1] or inf.date > today() or not inf.lot.strip() or not inf.donor_id.strip():
            broken.append(f"{where}: weight, date, lot or donor id outside the rules")
        try:
            _vitals(inf.vitals)
        except ConductError as e:
            broken.append(f"{where}: {e.message}")
    for c in Consent.objects.all():
        if not c.copy_given or not c.icf_version.strip() or not c.obtained_by.strip() or c.signed_at.date() > today():
            broken.append(f"consent {c.pk}: stored against the consent rules")
    for e in ScreeningEntry.objects.all():
        if e.screened_on > today() or e.sex not in ("female", "male", "unknown"):
            broken.append(f"screening {e.number}: date in the future or sex {e.sex!r}")
        if len(e.given_name) > 100 or len(e.family_name) > 100 or len(e.mrn) > 40:
            broken.append(f"screening {e.number}: a name or MRN longer than its column")
    result = trail.verify()
    if not result.ok:
        broken.append(f"audit trail: {result.sentence()}")
    return broken


@pytest.mark.slow
@pytest.mark.parametrize("role", list(ROLES))
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_the_api_answers_every_input_as_its_schema_says_and_stores_nothing_the_rules_refuse(case, role, users, records) -> None:  # type: ignore[no-untyped-def]
    from django.conf import settings as django_settings

    params = dict(case.path_parameters or {})
    if "number" in params:
        params["number"] = records["consent" if case.path.endswith("/consent") else "enrol"]
    if "subject_id" in params:
        params["subject_id"] = records["subject_id"]
    case.path_parameters = params
    cookies = {django_settings.SESSION_COOKIE_NAME: _session(users[role]), django_settings.CSRF_COOKIE_NAME: CSRF}
    case.call_and_validate(cookies=cookies, headers={"X-CSRFToken": CSRF}, checks=CHECKS)
    broken = core_rules_hold()
    assert not broken, f"{case.method} {case.formatted_path} as {role} left: " + "; ".join(broken)

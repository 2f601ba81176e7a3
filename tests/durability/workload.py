"""Writers and checkers the durability tests run as separate processes against a PostgreSQL
database (``DATABASE_URL``), through the trial desk's own services, as the views and the API do.

    python -m tests.durability.workload prepare  --enrol 8 --infuse 4
    python -m tests.durability.workload write    --kind ae|infusion|form --seed N --log FILE --stop FILE
    python -m tests.durability.workload check    --log FILE ...
    python -m tests.durability.workload enrol    --screening S-0010 --at EPOCH
    python -m tests.durability.workload race-infusions --first-ago 20 --second-ago 20

``write`` records every write the service acknowledged (returned from, so committed) as one
JSON line, flushed before the next write; the server may be killed under it at any moment,
and the writer reconnects and carries on. ``check`` then holds the database to those lines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("TRIALDESK_SECRET_KEY", "durability-tests-only")
os.environ["DJANGO_SETTINGS_MODULE"] = "trialdesk.edc.settings"
os.environ.setdefault("TRIALDESK_PROTOCOL", "nct03929120")  # the trial the workload conducts (the desk serves one protocol)
if not os.environ.get("DATABASE_URL") and not os.environ.get("TRIALDESK_DATA_DIR"):
    sys.exit("workload: set DATABASE_URL (PostgreSQL) or TRIALDESK_DATA_DIR (SQLite) to the database to drive")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import DatabaseError, InterfaceError, connections  # noqa: E402
from django.utils import timezone  # noqa: E402

from trialdesk.edc.permissions import ROLES  # noqa: E402
from trialdesk.trial.errors import ConductError  # noqa: E402

if os.environ.get("WORKLOAD_PRODUCTION_HASHING") != "1":  # sign-off checks passwords; argon2 is tested elsewhere
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PASSWORD = "Correct-horse-42"
STAGGER = 14  # the protocol's stagger_days: first infusions are at least this far apart
NEWEST_INFUSION_AGO = 20


def days_ago(n: int) -> dt.date:
    return timezone.localdate() - dt.timedelta(days=n)


def at_days_ago(n: int, hour: int = 10) -> dt.datetime:
    d = days_ago(n)
    return timezone.make_aware(dt.datetime(d.year, d.month, d.day, hour, 0))


def user(role: str) -> Any:
    from trialdesk.edc.accounts.models import User

    return User.objects.get(username=role)


def emit(obj: Any) -> None:
    print(json.dumps(obj, default=str), flush=True)


# --- prepare ---------------------------------------------------------------------------------------


def infusion_ago(i: int, n: int) -> int:
    """Participant i of n gets the first infusion this many days ago (oldest first, staggered)."""
    return NEWEST_INFUSION_AGO + STAGGER * (n - 1 - i)


def ready(name: str, ago: int) -> Any:
    """Screened, eligibility signed and consented, ready to enrol ``ago`` days before today."""
    from tests.edc.conftest import Trial

    trial = Trial({role: user(role) for role in ROLES})
    entry = trial.screen(name, screened_ago=ago + 15)
    trial.sign(entry)
    entry.refresh_from_db()
    trial.consent(entry, ago=ago + 10)
    entry.refresh_from_db()
    return entry


def enrol_one(name: str, ago: int) -> Any:
    from trialdesk.edc.participants.service import enrol

    return enrol(user("coordinator"), ready(name, ago), enrolled_on=days_ago(ago + 5))


def infuse(participant: Any, ago: int, weight: float = 70.0) -> Any:
    from trialdesk.edc.dosing.service import record_infusion

    return record_infusion(user("coordinator"), participant, number=1, date=days_ago(ago), started_at=dt.time(9, 0),
                           stopped_at=dt.time(9, 45), weight_kg=weight, total_cells=52_500_000.0, lot="LOT-1", donor_id="D-7",
                           premedication="", vitals={"before": {"sbp": 120}}, interrupted=False, interruptions="")


def prepare(args: argparse.Namespace) -> None:
    from django.core.management import call_command

    from trialdesk.edc.accounts.service import create_user

    if args.migrate:
        if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
            Path(settings.DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
    for role in ROLES:
        create_user(role, role, PASSWORD, first_name=role.replace("_", " ").title(), last_name="Tester", validate=False,
                    must_change_password=False)
    out = []
    for i in range(args.enrol):
        p = enrol_one(f"P{i}", infusion_ago(i, args.enrol))
        if i < args.infuse:
            infuse(p, infusion_ago(i, args.enrol))
        out.append(p.subject_id)
    ready_only = [ready(f"R{j}", NEWEST_INFUSION_AGO).number for j in range(args.ready)]
    if args.visits_done:
        from trialdesk.edc.visits.models import Visit
        from trialdesk.edc.visits.service import record_visit

        for v in Visit.objects.filter(done_on__isnull=True, target__lte=timezone.localdate()).order_by("pk"):
            record_visit(user("coordinator"), v, done_on=v.target, version=v.version)
    emit({"enrolled": out, "ready": ready_only})


# --- writers ---------------------------------------------------------------------------------------


def write_ae(rng: random.Random) -> dict[str, Any]:
    from trialdesk.edc.adverse_events.models import AdverseEvent
    from trialdesk.edc.adverse_events.service import edit_adverse_event, record_adverse_event
    from trialdesk.edc.participants.models import Participant

    mine = list(AdverseEvent.objects.filter(description__startswith="crash-test"))
    if mine and rng.random() < 0.3:
        ae = rng.choice(mine)
        outcome = rng.choice(["recovering", "recovered", "not_recovered", "unknown"])
        ae = edit_adverse_event(user("coordinator"), ae, changes={"outcome": outcome}, reason="follow-up from the clinic",
                                version=ae.version)
        return {"model": "adverse_events.AdverseEvent", "pk": ae.pk, "version": ae.version, "fields": {"outcome": outcome}}
    participant = rng.choice(list(Participant.objects.filter(infusions__isnull=False).distinct()))
    token = f"crash-test {uuid.uuid4()}"
    ae = record_adverse_event(user("coordinator"), participant, term="Headache", grade=1, description=token,
                              onset=days_ago(rng.randint(1, 10)),
                              resolved=None, serious=False, seriousness=[], relatedness="unrelated", outcome="unknown",
                              action_taken="none", learned_at=None, suggested_from="")
    return {"model": "adverse_events.AdverseEvent", "pk": ae.pk, "version": ae.version, "fields": {"description": token, "grade": 1}}


def write_infusion(rng: random.Random) -> dict[str, Any]:
    from trialdesk.edc.dosing.models import Infusion
    from trialdesk.edc.dosing.service import edit_infusion
    from trialdesk.edc.participants.models import Participant

    waiting = list(Participant.objects.filter(infusions__isnull=True).order_by("subject_id"))
    if waiting:  # the next first infusion, the protocol's stagger after the latest one
        p = waiting[0]
        latest = Infusion.objects.filter(number=1).order_by("-date").values_list("date", flat=True).first()
        weight = float(rng.randint(60, 80))
        inf = infuse(p, (timezone.localdate() - latest).days - STAGGER, weight=weight)
        return {"model": "dosing.Infusion", "pk": inf.pk, "version": inf.version, "fields": {"weight_kg": weight},
                "subject_id": p.subject_id}
    inf = rng.choice(list(Infusion.objects.all()))
    weight = float(rng.randint(60, 80))
    inf = edit_infusion(user("coordinator"), inf, changes={"weight_kg": weight}, reason="weight re-measured", version=inf.version)
    return {"model": "dosing.Infusion", "pk": inf.pk, "version": inf.version, "fields": {"weight_kg": weight}}


def write_form(rng: random.Random) -> dict[str, Any]:
    from trialdesk.edc.visits.models import FormEntry, Visit
    from trialdesk.edc.visits.service import record_visit, save_form

    due = list(Visit.objects.filter(done_on__isnull=True, target__lte=timezone.localdate()).select_related("participant"))
    if due and rng.random() < 0.2:
        v = rng.choice(due)
        v = record_visit(user("coordinator"), v, done_on=v.target, version=v.version)
        return {"model": "visits.Visit", "pk": v.pk, "version": v.version, "fields": {"done_on": v.target.isoformat()}}
    v = rng.choice(list(Visit.objects.filter(done_on__isnull=False)))
    data = {"vs_date": v.done_on, "sysbp": rng.randint(100, 160), "diabp": rng.randint(60, 95), "pulse": rng.randint(55, 110)}
    existing = FormEntry.objects.filter(visit=v, form="vital_signs").first()
    entry = save_form(user("coordinator"), v, "vital_signs", data, reason="transcription corrected",
                      version=existing.version if existing else None)
    return {"model": "visits.FormEntry", "pk": entry.pk, "version": entry.version,
            "fields": {"data": {**data, "vs_date": v.done_on.isoformat()}}}


WRITERS = {"ae": write_ae, "infusion": write_infusion, "form": write_form}


def write(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    stop = Path(args.stop)
    counts = {"acked": 0, "refused": 0, "db_errors": 0}
    with open(args.log, "a", encoding="utf-8") as log:
        while not stop.exists():
            try:
                ack = WRITERS[args.kind](rng)
            except ConductError as e:  # a rule refused it (a stale version when two writers meet): nothing stored
                counts["refused"] += 1
                print(f"refused: {e.field}: {e.message}", file=sys.stderr)
                continue
            except (DatabaseError, InterfaceError) as e:  # the server died under us: not acknowledged
                counts["db_errors"] += 1
                print(f"database error: {type(e).__name__}: {str(e).strip()[:120]}", file=sys.stderr)
                connections.close_all()
                time.sleep(0.2)
                continue
            ack["at"] = time.time()
            log.write(json.dumps(ack, default=str) + "\n")
            log.flush()
            counts["acked"] += 1
    emit(counts)


# --- check -----------------------------------------------------------------------------------------


def audited_models() -> list[Any]:
    from django.apps import apps

    from trialdesk.edc.records import TrialRecord

    return [m for m in apps.get_models() if issubclass(m, TrialRecord)]


def check(args: argparse.Namespace) -> None:
    """Every acknowledged write present; no record without its audit history; doses and visits whole."""
    from django.apps import apps

    from trialdesk.edc.audit.models import AuditEntry
    from trialdesk.edc.audit.trail import values
    from trialdesk.edc.dosing.models import Infusion
    from trialdesk.edc.participants.models import Participant
    from trialdesk.edc.web import protocol

    problems: list[str] = []
    history: dict[tuple[str, str], list[str]] = {}
    for model, object_id, action in AuditEntry.objects.order_by("seq").values_list("model", "object_id", "action"):
        history.setdefault((model, object_id), []).append(action)
    acked = 0
    for name in args.log:
        for line in Path(name).read_text(encoding="utf-8").splitlines():
            ack = json.loads(line)
            acked += 1
            row = apps.get_model(ack["model"]).objects.filter(pk=ack["pk"]).first()
            if row is None:
                problems.append(f"acknowledged {ack['model']} {ack['pk']} (version {ack['version']}) is missing")
                continue
            if row.version < ack["version"]:
                problems.append(f"{ack['model']} {ack['pk']} is at version {row.version}, but version {ack['version']} was acknowledged")
            elif row.version == ack["version"]:
                stored = {k: json.loads(v) if k == "data" else v for k, v in values(row).items()}
                for field, expected in ack["fields"].items():
                    got = stored[field]
                    if (float(got) if isinstance(expected, float) else got) != (float(expected) if isinstance(expected, float) else
                                                                                  str(expected) if not isinstance(expected, dict) else
                                                                                  expected):
                        problems.append(f"{ack['model']} {ack['pk']}: {field} is {got!r}, acknowledged {expected!r}")
    records = 0
    for model in audited_models():
        label = model._meta.label
        live = set()
        for pk, version in model.objects.values_list("pk", "version"):
            records += 1
            live.add(str(pk))
            actions = history.get((label, str(pk)), [])
            if actions.count("create") != 1:
                problems.append(f"{label} {pk} has {actions.count('create')} create entries in the audit trail (expected 1)")
            if actions.count("update") != version - 1:
                problems.append(f"{label} {pk} is at version {version} but has {actions.count('update')} update entries")
        for (m, object_id), actions in history.items():
            if m == label and object_id not in live and "create" in actions and "delete" not in actions:
                problems.append(f"the audit trail records the creation of {label} {object_id}, which is not in the database")
    n_visits = len(protocol().schedule.visits)
    for inf in Infusion.objects.all():
        if not inf.dose_per_kg or abs(inf.dose_per_kg - inf.total_cells / inf.weight_kg) > 1e-6 * inf.dose_per_kg:
            problems.append(f"infusion {inf.pk}: dose {inf.dose_per_kg} is not total cells / weight")
    for p in Participant.objects.all():
        has_first = p.infusions.filter(number=1).exists()
        visits = p.visits.count()
        if has_first and visits != n_visits:
            problems.append(f"{p.subject_id} has infusion 1 but {visits} of {n_visits} scheduled visits")
        if not has_first and visits:
            problems.append(f"{p.subject_id} has visits but no first infusion")
        if has_first and not p.visits.filter(infusion_number=1, done_on__isnull=False).exists():
            problems.append(f"{p.subject_id}: the infusion 1 visit is not marked done")
    emit({"acked": acked, "records": records, "audit_entries": sum(len(a) for a in history.values()), "problems": problems})
    sys.exit(1 if problems else 0)


def digest(args: argparse.Namespace) -> None:
    """A fingerprint of every trial record's values and of the audit chain, to compare two databases."""
    import hashlib

    from trialdesk.edc.audit.models import AuditEntry, ChainHead
    from trialdesk.edc.audit.trail import values

    h = hashlib.sha256()
    counts = {}
    for model in audited_models():
        rows = sorted(json.dumps({"pk": o.pk, "version": o.version, **values(o)}, sort_keys=True) for o in model.objects.all())
        counts[model._meta.label] = len(rows)
        h.update("\n".join(rows).encode())
    head = ChainHead.objects.filter(pk=1).first()
    emit({"sha256": h.hexdigest(), "records": counts, "audit_entries": AuditEntry.objects.count(),
          "last_hash": head.last_hash if head else None})


def one_ae(args: argparse.Namespace) -> None:
    ack = write_ae(random.Random(args.seed))
    emit(ack)


# --- enrol (one coordinator of two racing for the last slot) -----------------------------------------


def enrol_at(args: argparse.Namespace) -> None:
    from trialdesk.edc.participants.service import enrol
    from trialdesk.edc.screening.models import ScreeningEntry

    entry = ScreeningEntry.objects.get(number=args.screening)
    coordinator = user("coordinator")
    connections["default"].ensure_connection()
    while time.time() < args.at:  # both processes start the transaction at the same instant
        time.sleep(0.0005)
    try:
        p = enrol(coordinator, entry, enrolled_on=days_ago(NEWEST_INFUSION_AGO + 5))
    except ConductError as e:
        emit({"screening": args.screening, "enrolled": None, "refusal": f"{e.field}: {e.message}"})
    else:
        emit({"screening": args.screening, "enrolled": p.subject_id, "refusal": None})


# --- two API requests recording the same participant's infusion at once -----------------------------


def race_infusions(args: argparse.Namespace) -> None:
    """Enrol one participant, then POST /api/participants/{subject}/infusions from two threads (two
    coordinators' sessions): the first to reach the dosing check (inside the service's lock) waits
    there a moment, and the second request is sent meanwhile. Prints both answers and what is stored."""
    import threading

    from django.db import connection
    from django.test import Client

    from trialdesk.edc.dosing import service
    from trialdesk.edc.dosing.models import Infusion

    participant = enrol_one("Race", args.first_ago)
    inside = threading.Event()
    real = service.check_infusion

    def slow(*a: Any, **k: Any) -> float:
        if not inside.is_set():
            inside.set()
            time.sleep(0.5)
        return real(*a, **k)

    service.check_infusion = slow  # type: ignore[assignment]  # this process only: hold the lock while the other request arrives
    answers: list[Any] = [None, None]

    def post(i: int, ago: int) -> None:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user(("coordinator", "sub_investigator")[i]))
        body = {"date": days_ago(ago).isoformat(), "started_at": "09:00", "stopped_at": "09:45", "weight_kg": 70,
                "total_cells": 52_500_000, "lot": "LOT-1", "donor_id": "D-7", "vitals": {"before": {"sbp": 120}}}
        try:
            r = client.post(f"/api/participants/{participant.subject_id}/infusions", body, content_type="application/json")
            answers[i] = [r.status_code, r.content.decode()]
        finally:
            connection.close()

    first = threading.Thread(target=post, args=(0, args.first_ago))
    first.start()
    if not inside.wait(60):
        sys.exit("race-infusions: the first request never reached the dosing check")
    second = threading.Thread(target=post, args=(1, args.second_ago))
    second.start()
    first.join(120)
    second.join(120)
    rows = Infusion.objects.filter(participant=participant).order_by("number").values_list("number", "date")
    stored = [[n, d.isoformat()] for n, d in rows]
    emit({"subject": participant.subject_id, "answers": answers, "stored": stored})


def main() -> None:
    parser = argparse.ArgumentParser(prog="workload")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--enrol", type=int, default=8)
    p.add_argument("--infuse", type=int, default=4)
    p.add_argument("--ready", type=int, default=0, help="also screen, sign and consent this many people, not enrolled")
    p.add_argument("--migrate", action="store_true")
    p.add_argument("--visits-done", action="store_true", help="enter the date of every visit due by today")
    w = sub.add_parser("write")
    w.add_argument("--kind", choices=sorted(WRITERS), required=True)
    w.add_argument("--seed", type=int, required=True)
    w.add_argument("--log", required=True)
    w.add_argument("--stop", required=True)
    c = sub.add_parser("check")
    c.add_argument("--log", action="append", default=[])
    e = sub.add_parser("enrol")
    e.add_argument("--screening", required=True)
    e.add_argument("--at", type=float, required=True)
    sub.add_parser("digest")
    sub.add_parser("one-ae").add_argument("--seed", type=int, default=1)
    r = sub.add_parser("race-infusions")
    r.add_argument("--first-ago", type=int, required=True, help="the first request's infusion date, days before today")
    r.add_argument("--second-ago", type=int, required=True, help="the second request's infusion date, days before today")
    args = parser.parse_args()
    {"prepare": prepare, "write": write, "check": check, "enrol": enrol_at, "digest": digest, "one-ae": one_ae,
     "race-infusions": race_infusions}[args.command](args)


if __name__ == "__main__":
    main()

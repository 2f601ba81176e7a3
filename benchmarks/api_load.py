"""The trial desk under load: concurrent clients against a production server on PostgreSQL.

    python benchmarks/api_load.py [--clients 20] [--seconds 15] [--workers 2] [--keep]

1. Creates its own database (``trialdesk_bench_durability`` on 127.0.0.1:5432 unless
   ``--server-url``), migrates it and fills it through the trial desk's services: 8 enrolled
   and infused participants with every visit due by today dated (the crash test's workload
   module), accounts with the production password hasher (argon2).
2. Serves it with gunicorn (``--workers`` processes; sync workers, or ``--threads`` N gthread
   workers) on a free loopback port,
   with the trial desk's own settings and one extra minimal view (benchmarks/api_load_site.py).
3. ``--clients`` threads each log in as the study coordinator (own session), then run the
   phases one after another (after a short unmeasured warm-up), each for ``--seconds`` or ``--max-requests``, whichever is first,
   back to back (the worst case: every client always waiting; ``--think S`` adds a pause drawn
   uniformly from 0 to 2S after each request, as a person reading the page):
   - minimal: GET of a view that only checks the login and returns two bytes (the floor:
     server, middleware, session and database round trip, no trialdesk work);
   - dashboard: GET /participants/<subject>/ (the participant's page: visits, forms, infusions);
   - ae_list: GET /api/adverse-events (JSON);
   - form_save: POST of a vital-signs form at one visit per client, as a correction with a reason
     (the page's form: the API has no form endpoint);
   - ae_create: POST /adverse-events/new/ (the page's form: the API has no AE-create endpoint);
     each new AE is checked by the core and the stopping rules run on the whole data cut;
   - mixed: 40% dashboard, 30% AE list, 20% form save, 10% AE create.
4. Prints per phase: requests, requests/s, p50/p95/p99 latency (ms), errors, and the ratio of
   the phase's p50 to the minimal view's (the cost of trialdesk's own work). Then stops the
   server and drops the database (unless ``--keep``).

The load generator runs on the same machine (Python threads with requests), so it competes
with the server for the 2 cores; figures are what one machine does, client included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "Correct-horse-42"  # the workload's accounts
PHASES = ("minimal", "dashboard", "ae_list", "form_save", "ae_create", "mixed")
MIX = (("dashboard", 40), ("ae_list", 30), ("form_save", 20), ("ae_create", 10))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRIALDESK_DATA_DIR", "TRIALDESK_DEBUG")}
    env.update(DATABASE_URL=database_url, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO / "benchmarks"), str(REPO)]),
               TRIALDESK_SECRET_KEY=secrets.token_urlsafe(50), TRIALDESK_SECURE_COOKIES="0",  # plain HTTP on loopback
               TRIALDESK_ALLOWED_HOSTS="127.0.0.1", WORKLOAD_PRODUCTION_HASHING="1")
    env.setdefault("TRIALDESK_PROTOCOL", "nct03929120")  # the trial the workload conducts (the desk serves one protocol)
    return env


def prepare(server_url: str, name: str) -> str:
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{server_url}/{name}"
    subprocess.run([sys.executable, "-m", "tests.durability.workload", "prepare", "--migrate", "--enrol", "8", "--infuse", "8",
                    "--visits-done"], env=env_for(url), cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return url


def drop(server_url: str, name: str) -> None:
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_server(url: str, workers: int, port: int, log: Any, threads: int) -> subprocess.Popen[bytes]:
    kind = ["--worker-class", "sync"] if threads <= 1 else ["--worker-class", "gthread", "--threads", str(threads)]
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}", *kind,
                               "--backlog", "256", "--timeout", "60", "--log-level", "warning", "trialdesk.edc.wsgi:application"],
                              env={**env_for(url), "DJANGO_SETTINGS_MODULE": "api_load_site"}, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/login/", timeout=30).status_code == 200:
                return server
        except requests.RequestException:
            time.sleep(0.2)
    server.terminate()
    server.wait()
    raise SystemExit("gunicorn did not answer within 60 s")


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    by_kind: dict[str, list[float]] = field(default_factory=dict)  # the mixed phase, per kind of request


class Client:
    """One coordinator at a browser: a session, and the visit whose vital signs she keeps correcting."""

    def __init__(self, base: str, visit: tuple[str, str], subjects: list[str], seed: int) -> None:
        self.base, self.visit, self.subjects = base, visit, subjects
        self.rng = random.Random(seed)
        self.s = requests.Session()
        self.s.get(f"{base}/login/")
        r = self.s.post(f"{base}/login/", data={"username": "coordinator", "password": PASSWORD,
                                                "csrfmiddlewaretoken": self.s.cookies["csrftoken"]}, allow_redirects=False)
        if r.status_code != 302:
            raise SystemExit(f"login failed: {r.status_code} {r.text[:300]}")
        page = self.s.get(self._crf()).text
        found = re.search(r'name="version" value="(\d+)"', page)
        self.version = int(found.group(1)) if found else None
        self.sysbp = 120

    def _crf(self) -> str:
        subject, code = self.visit
        return f"{self.base}/participants/{subject}/visits/{code}/vital_signs/"

    def _post(self, url: str, data: dict[str, str]) -> requests.Response:
        return self.s.post(url, data=data, headers={"X-CSRFToken": self.s.cookies["csrftoken"]}, allow_redirects=False)

    def minimal(self) -> tuple[bool, str]:
        r = self.s.get(f"{self.base}/bench/minimal/", allow_redirects=False)
        return r.status_code == 200, str(r.status_code)

    def dashboard(self) -> tuple[bool, str]:
        r = self.s.get(f"{self.base}/participants/{self.rng.choice(self.subjects)}/", allow_redirects=False)
        return r.status_code == 200, str(r.status_code)

    def ae_list(self) -> tuple[bool, str]:
        r = self.s.get(f"{self.base}/api/adverse-events", allow_redirects=False)
        return r.status_code == 200 and r.text.startswith("["), str(r.status_code)

    def form_save(self) -> tuple[bool, str]:
        self.sysbp = 121 if self.sysbp == 120 else 120  # a real change each time, so each save is a new version
        data = {"vs_date": self.visit_date, "sysbp": str(self.sysbp), "diabp": "80", "pulse": "72",
                "version": "" if self.version is None else str(self.version), "reason": "transcription corrected"}
        r = self._post(self._crf(), data)
        if r.status_code == 302:
            self.version = 1 if self.version is None else self.version + 1
            return True, "302"
        return False, f"{r.status_code} (form refused)" if r.status_code == 200 else str(r.status_code)

    def ae_create(self) -> tuple[bool, str]:
        onset = (dt.date.today() - dt.timedelta(days=self.rng.randint(1, 5))).isoformat()
        data = {"subject_id": self.rng.choice(self.subjects), "term": "Headache", "grade": "1", "description": "load test",
                "onset": onset, "resolved": "", "relatedness": "unrelated", "outcome": "unknown", "action_taken": "none",
                "learned_at": "", "suggested_from": ""}
        r = self._post(f"{self.base}/adverse-events/new/", data)
        return r.status_code == 302, str(r.status_code) if r.status_code != 200 else "200 (refused)"

    def mixed(self) -> tuple[bool, str]:
        kind = self.rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
        action: Callable[[], tuple[bool, str]] = getattr(self, kind)
        self.last_kind = kind
        return action()

    last_kind = ""

    visit_date = ""


def run_phase(clients: list[Client], phase: str, seconds: float, max_requests: int, think: float = 0.0) -> Result:
    result = Result()
    lock = threading.Lock()
    budget = [max_requests]
    start = threading.Barrier(len(clients) + 1)

    def work(c: Client) -> None:
        action: Callable[[], tuple[bool, str]] = getattr(c, phase)
        start.wait()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            t0 = time.perf_counter()
            try:
                ok, what = action()
            except requests.RequestException as e:
                ok, what = False, type(e).__name__
            elapsed = time.perf_counter() - t0
            with lock:
                result.latencies.append(elapsed)
                if phase == "mixed":
                    result.by_kind.setdefault(c.last_kind, []).append(elapsed)
                if not ok:
                    result.errors[what] = result.errors.get(what, 0) + 1
            if think:
                time.sleep(c.rng.uniform(0, 2 * think))  # a person reading the page before the next click

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - t0
    return result


def pct(sorted_ms: list[float], p: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, round(p / 100 * (len(sorted_ms) - 1)))]


def visits_for(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return [(s, c, d.isoformat()) for s, c, d in conn.execute(
            "SELECT p.subject_id, v.code, v.done_on FROM visits_visit v JOIN participants_participant p ON p.id = v.participant_id"
            " WHERE v.done_on IS NOT NULL AND v.forms::text LIKE '%vital_signs%' ORDER BY p.subject_id, v.day").fetchall()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server (no database name)")
    ap.add_argument("--database", default="trialdesk_bench_durability")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    ap.add_argument("--max-requests", type=int, default=20_000, help="at most this many requests in a phase")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    ap.add_argument("--threads", type=int, default=1, help="threads per worker (1: sync workers; more: gthread workers)")
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--think", type=float, default=0.0, help="mean pause (s) of each client between requests; 0: back to back")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = ap.parse_args()

    t0 = time.perf_counter()
    url = prepare(args.server_url, args.database)
    print(f"database {args.database} prepared in {time.perf_counter() - t0:.1f} s", flush=True)
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="api-load-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    try:
        server = start_server(url, args.workers, port, log, args.threads)
    except BaseException:
        drop(args.server_url, args.database)
        raise
    try:
        base = f"http://127.0.0.1:{port}"
        visits = visits_for(url)
        if len(visits) < args.clients:
            print(f"note: {len(visits)} visits for {args.clients} clients; some share a form and will see 'changed by someone else'")
        subjects = sorted({s for s, _, _ in visits})
        clients = []
        for i in range(args.clients):
            subject, code, done_on = visits[i % len(visits)]
            c = Client(base, (subject, code), subjects, seed=i)
            c.visit_date = done_on
            clients.append(c)
        for phase in PHASES[:-1]:  # warm-up, not measured: each worker loads the protocol, CTCAE catalogue and templates once
            run_phase(clients[: args.workers * 2], phase, 60.0, args.workers * 4)
        kind = "sync workers" if args.threads <= 1 else f"gthread workers x {args.threads} threads"
        pause = f"mean think time {args.think:g} s" if args.think else "no think time"
        print(f"gunicorn, {args.workers} {kind}, {args.clients} clients logged in ({pause}); {args.seconds:g} s per phase", flush=True)
        header = f"{'phase':<10} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6} {'p50 / minimal':>13}"
        print(header)
        floor = None
        for phase in args.phases.split(","):
            r = run_phase(clients, phase, args.seconds, args.max_requests, args.think)
            ms = sorted(x * 1000 for x in r.latencies)
            if not ms:
                print(f"{phase:<10} no requests")
                continue
            p50 = pct(ms, 50)
            if phase == "minimal":
                floor = p50
            ratio = f"{p50 / floor:.1f}x" if floor else "-"
            errors = sum(r.errors.values())
            print(f"{phase:<10} {len(ms):>8} {len(ms) / r.seconds:>7.1f} {p50:>7.1f} {pct(ms, 95):>7.1f} {pct(ms, 99):>7.1f} {errors:>6}"
                  f" {ratio:>13}" + (f"   {r.errors}" if errors else ""), flush=True)
            for kind, lat in sorted(r.by_kind.items()):
                k = sorted(x * 1000 for x in lat)
                print(f"  {kind:<10} {len(k):>6} {'':>7} {pct(k, 50):>7.1f} {pct(k, 95):>7.1f} {pct(k, 99):>7.1f}", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        if not args.keep:
            drop(args.server_url, args.database)
        log.seek(0)
        errors = log.read().strip()
        log.close()
        os.unlink(log.name)
        if errors:
            print(f"gunicorn's log:\n{errors[-3000:]}")


if __name__ == "__main__":
    main()

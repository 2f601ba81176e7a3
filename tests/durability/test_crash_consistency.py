"""The server dies mid-write and nothing acknowledged is lost, nothing is half-written.

Three writers (adverse events, infusions, visit forms) run through the trial desk's services
while the PostgreSQL server is killed with SIGKILL (postmaster and backends together, as in
a crash) at seeded random moments and restarted; crash recovery replays the WAL. Afterwards
every write a writer saw acknowledged is in the database at that version or later, every
record has its complete audit history (and no audit entry names a record that is not there),
every infusion has its dose and its scheduled visits, and ``trialdesk audit verify`` passes.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.durability.conftest import REPO, Cluster, trialdesk_cli, workload, workload_env

SEED = int(os.environ.get("TRIALDESK_CRASH_SEED", "20261125"))
KILLS = 4
pytestmark = [pytest.mark.slow]


def test_acknowledged_writes_survive_a_killed_server_and_none_is_half_written(cluster: Cluster, tmp_path: Path) -> None:
    url = cluster.database("trialdesk_crash")
    workload(url, "prepare", "--enrol", "8", "--infuse", "4")
    rng = random.Random(SEED)
    stop = tmp_path / "stop"
    writers = []
    for n, kind in enumerate(["ae", "infusion", "form", "form"]):
        log = tmp_path / f"{kind}-{n}.jsonl"
        err = open(tmp_path / f"{kind}-{n}.err", "w")  # noqa: SIM115  (closed below)
        proc = subprocess.Popen([sys.executable, "-m", "tests.durability.workload", "write", "--kind", kind, "--seed", str(SEED + n),
                                 "--log", str(log), "--stop", str(stop)], env=workload_env(url), cwd=REPO, stdout=subprocess.PIPE,
                                stderr=err, text=True)
        writers.append((proc, log, err))
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(1.5, 5.0))
            cluster.pg.kill()
            time.sleep(rng.uniform(0.0, 1.0))
            cluster.pg.start()
        acked_before_last = sum(len(log.read_text().splitlines()) for _, log, _ in writers if log.exists())
        time.sleep(4.0)  # the writers reconnect and go on writing after the last recovery
    finally:
        stop.touch()
        outcomes = []
        for proc, _, err in writers:
            out, _ = proc.communicate(timeout=120)
            err.close()
            outcomes.append(out)
    logs = [log for _, log, _ in writers]
    acked = sum(len(log.read_text().splitlines()) for log in logs)
    assert all(proc.returncode == 0 for proc, _, _ in writers), outcomes
    errors = "".join((tmp_path / f"{kind}-{n}.err").read_text() for n, kind in enumerate(["ae", "infusion", "form", "form"]))
    assert "database error" in errors, "no writer was interrupted: the kills did not hit a write"
    assert acked > acked_before_last, "no write was acknowledged after the last restart"

    report = workload(url, "check", *[a for log in logs for a in ("--log", str(log))], check=False)
    assert report.get("problems") == [], report
    assert report["acked"] == acked

    verify = trialdesk_cli(url, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit trail intact" in verify.stdout

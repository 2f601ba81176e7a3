"""Fixtures of the durability suite.

The tests that need PostgreSQL itself (a server to kill, real concurrent transactions) run on a
private cluster of their own (:mod:`tests.durability.pgcluster`), whatever database the rest of
the suite uses; the others use the trial desk suite's fixtures (SQLite by default, PostgreSQL
when TRIALDESK_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.durability.pgcluster import PrivatePostgres
from tests.edc.conftest import _fast_hashing, client_as, trial, users  # noqa: F401  (fixtures shared with the trial desk suite)

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = "trialdesk_durability_template"


def workload_env(db: str) -> dict[str, str]:
    """The environment of a child process on ``db``: a PostgreSQL URL, or an SQLite data directory."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRIALDESK_TEST_DATABASE_URL", "DATABASE_URL", "TRIALDESK_DATA_DIR")}
    env.update(PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]), TRIALDESK_SECRET_KEY="durability-tests-only",
               TRIALDESK_SECURE_COOKIES="0")
    env.update(DATABASE_URL=db) if db.startswith("postgresql://") else env.update(TRIALDESK_DATA_DIR=db)
    return env


def workload(url: str, *args: str, check: bool = True, timeout: float = 300) -> Any:
    """Run one workload command against ``url``; return its last JSON line."""
    done = subprocess.run([sys.executable, "-m", "tests.durability.workload", *args], env=workload_env(url), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"workload {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {"returncode": done.returncode, "stderr": done.stderr}


def trialdesk_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``trialdesk <args>`` for the trial desk's commands (the EDC's own command group: the same functions the
    main command line mounts, without importing the analytics stack at every start)."""
    return subprocess.run([sys.executable, "-c", "from trialdesk.edc.commands import app; app()", *args], env=workload_env(url), cwd=REPO,
                          capture_output=True, text=True, timeout=300)


class Cluster:
    """A started private cluster with a migrated template database to copy."""

    def __init__(self, pg: PrivatePostgres) -> None:
        self.pg = pg

    def database(self, name: str) -> str:
        self.pg.psql("postgres", f"DROP DATABASE IF EXISTS {name}")
        self.pg.psql("postgres", f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.pg.url(name)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    pg = PrivatePostgres()
    try:
        pg.start()
        pg.psql("postgres", f"CREATE DATABASE {TEMPLATE}")
        subprocess.run([sys.executable, "-c", "import trialdesk.edc as e; e.setup(); from django.core.management import call_command;"
                        " call_command('migrate', interactive=False, verbosity=0)"], env=workload_env(pg.url(TEMPLATE)), cwd=REPO,
                       check=True, timeout=300)
        yield Cluster(pg)
    finally:
        pg.remove()

"""``trialdesk backup`` and ``trialdesk restore`` on SQLite and PostgreSQL: a round trip gives
back exactly the data and audit trail of the moment of the backup; a damaged, truncated or
foreign file is refused with the reason, and the database is left as it was."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.durability.conftest import Cluster, trialdesk_cli, workload

pytestmark = [pytest.mark.slow]


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        target = str(tmp_path / "data")
        workload(target, "prepare", "--enrol", "2", "--infuse", "1", "--migrate")
    else:
        cluster: Cluster = request.getfixturevalue("cluster")
        target = cluster.database("trialdesk_backup")
        workload(target, "prepare", "--enrol", "2", "--infuse", "1")
    return target


def _damaged(good: Path, tmp_path: Path) -> dict[str, Path]:
    data = good.read_bytes()
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    corrupted = tmp_path / "corrupted.tar"
    corrupted.write_bytes(bytes(flipped))
    not_a_backup = tmp_path / "notes.tar"
    not_a_backup.write_text("minutes of the DSMB meeting\n")
    return {"truncated": truncated, "corrupted": corrupted, "not_a_backup": not_a_backup}


def test_backup_and_restore_round_trip_and_a_damaged_file_changes_nothing(db: str, tmp_path: Path) -> None:
    file = tmp_path / "trial.tdbackup"
    made = trialdesk_cli(db, "backup", "--out", str(file))
    assert made.returncode == 0, made.stderr
    assert "backup written to" in made.stdout and "SHA-256" in made.stdout
    at_backup = workload(db, "digest")
    with tarfile.open(file) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["audit"] == {"entries": at_backup["audit_entries"], "last_hash": at_backup["last_hash"]}
    assert manifest["records"] == at_backup["records"] and "audit.0002_append_only_on_postgresql" in manifest["migrations"]

    workload(db, "one-ae")  # the trial goes on after the backup
    later = workload(db, "digest")
    assert later["sha256"] != at_backup["sha256"]

    for kind, bad in _damaged(file, tmp_path).items():
        refused = trialdesk_cli(db, "restore", str(bad), "--yes")
        assert refused.returncode == 2, (kind, refused.stdout, refused.stderr)
        assert "the database was not changed" in refused.stderr
        assert {"truncated": "damaged or truncated", "corrupted": "damaged", "not_a_backup": "damaged or truncated"}[kind] in refused.stderr
        assert workload(db, "digest") == later, f"a refused restore ({kind}) changed the database"

    restored = trialdesk_cli(db, "restore", str(file), "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "audit trail intact" in restored.stdout
    assert workload(db, "digest") == at_backup
    if db.startswith("postgresql://"):  # the audit table's append-only trigger came back with the data
        import psycopg

        with psycopg.connect(db) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("DELETE FROM audit_auditentry WHERE seq = 1")


def test_a_postgresql_backup_is_not_restored_into_sqlite(cluster: Cluster, tmp_path: Path) -> None:
    url = cluster.database("trialdesk_backup_engine")
    workload(url, "prepare", "--enrol", "1", "--infuse", "0")
    file = tmp_path / "pg.tdbackup"
    assert trialdesk_cli(url, "backup", "--out", str(file)).returncode == 0
    sqlite_dir = tmp_path / "sqlite"
    workload(str(sqlite_dir), "prepare", "--enrol", "0", "--migrate")
    before = workload(str(sqlite_dir), "digest")
    refused = trialdesk_cli(str(sqlite_dir), "restore", str(file), "--yes")
    assert refused.returncode == 2 and "this backup is of a postgresql database" in refused.stderr
    assert workload(str(sqlite_dir), "digest") == before

"""Backing up and restoring the trial desk's database: one file, checked before anything is touched.

A backup is an uncompressed tar with two members:

- ``manifest.json``: format, when, which trialdesk and database engine, the migrations applied,
  the audit chain's length and last hash, the number of each kind of trial record, and the
  payload's size and SHA-256;
- the payload: ``database.dump`` (PostgreSQL, ``pg_dump --format=custom``) or
  ``database.sqlite3`` (SQLite, a copy made with SQLite's online backup API).

The database's own tools, not Django's ``dumpdata``, make the payload: they copy one consistent
snapshot while the desk keeps running, keep exactly what is stored (sequences, constraints, the
audit table's append-only trigger, float and time values bit for bit), and restore atomically
(``pg_restore --single-transaction``; SQLite's backup API writes the whole file in one step).
``dumpdata`` would serialise row by row through the models, lose the trigger and sequences, and
``loaddata`` cannot replace a database in one transaction. The price: a backup restores only
into the same engine (the manifest says which, and restore says so).

``restore`` reads the whole file first: a truncated tar, a manifest that does not parse, a
payload whose size or checksum differs, another engine, or migrations this trialdesk does not
know — each is refused with what is wrong and the database is left as it was. After a restore,
pending migrations are applied and the audit chain is compared with the manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "trialdesk-backup/1"
MANIFEST = "manifest.json"
PAYLOAD = {"postgresql": "database.dump", "sqlite": "database.sqlite3"}


class BackupError(Exception):
    """A backup that cannot be made or restored; the message says why and what to do."""


def _engine() -> str:
    from django.db import connection

    if connection.vendor not in PAYLOAD:
        raise BackupError(f"backups support PostgreSQL and SQLite, not {connection.vendor}")
    return str(connection.vendor)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pg_env() -> tuple[list[str], dict[str, str]]:
    """libpq connection arguments and environment for pg_dump/pg_restore from Django's settings."""
    from django.db import connection

    s = connection.settings_dict
    args = ["--dbname", s["NAME"]]
    if s.get("HOST"):
        args += ["--host", s["HOST"]]
    if s.get("PORT"):
        args += ["--port", str(s["PORT"])]
    if s.get("USER"):
        args += ["--username", s["USER"]]
    env = dict(os.environ)
    if s.get("PASSWORD"):
        env["PGPASSWORD"] = s["PASSWORD"]
    return args, env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed; install the PostgreSQL client (Debian: postgresql-client) matching the server")
    return found


def _state() -> dict[str, Any]:
    """What the manifest records of the live database and what a restore is compared with."""
    from django.apps import apps
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    from trialdesk.edc.audit.models import AuditEntry, ChainHead
    from trialdesk.edc.records import TrialRecord

    head = ChainHead.objects.filter(pk=1).first()
    return {
        "migrations": sorted(f"{app}.{name}" for app, name in MigrationRecorder(connection).applied_migrations()),
        "audit": {"entries": AuditEntry.objects.count(), "last_hash": head.last_hash if head else None},
        "records": {m._meta.label: m._base_manager.count() for m in apps.get_models() if issubclass(m, TrialRecord)},
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trialdesk")
    except PackageNotFoundError:
        return "unknown"


def backup(out: Path) -> dict[str, Any]:
    """Write a backup of the configured database to ``out`` (replaced only once complete)."""
    from django.conf import settings
    from django.db import connection, transaction

    engine = _engine()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="trialdesk-backup-", dir=out.parent) as tmp:
        payload = Path(tmp) / PAYLOAD[engine]
        # the manifest describes exactly the copied state: counted in the snapshot pg_dump copies,
        # or (SQLite) while this connection's write lock keeps every writer out
        with transaction.atomic():
            if engine == "postgresql":
                with connection.cursor() as cur:
                    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    cur.execute("SELECT pg_export_snapshot()")
                    snapshot = cur.fetchone()[0]
                state = _state()
                args, env = _pg_env()
                done = subprocess.run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--snapshot={snapshot}", "--file",
                                       str(payload), *args], env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
            else:
                state = _state()
                source = sqlite3.connect(str(settings.DATABASES["default"]["NAME"]))
                target = sqlite3.connect(str(payload))
                try:
                    source.backup(target)
                finally:
                    target.close()
                    source.close()
        manifest = {"format": FORMAT, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "trialdesk": _version(), "engine": engine,
                    "database": str(connection.settings_dict["NAME"]), "protocol": settings.TRIALDESK_PROTOCOL,
                    "payload": {"name": payload.name, "bytes": payload.stat().st_size, "sha256": _sha256(payload)}, **state}
        partial = Path(tmp) / "backup.tar"
        with tarfile.open(partial, "w") as tar:
            data = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            tar.add(payload, arcname=payload.name)
        os.replace(partial, out)
    return manifest


@dataclass
class Checked:
    manifest: dict[str, Any]
    payload: Path


def check(path: Path, workdir: Path) -> Checked:
    """Read and verify the whole backup; extract the payload into ``workdir``. Touches no database."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path} does not exist or is not a file")
    try:
        with tarfile.open(path, "r:") as tar:
            names = tar.getnames()
            if MANIFEST not in names:
                raise BackupError(f"{path} has no {MANIFEST}; it is not a trialdesk backup")
            raw = tar.extractfile(MANIFEST)
            assert raw is not None
            try:
                manifest = json.loads(raw.read().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise BackupError(f"{path}: {MANIFEST} is damaged ({e})") from None
            if manifest.get("format") != FORMAT:
                raise BackupError(f"{path}: unknown backup format {manifest.get('format')!r} (this trialdesk reads {FORMAT})")
            expected = manifest.get("payload") or {}
            name = expected.get("name")
            if name not in PAYLOAD.values() or name not in names:
                raise BackupError(f"{path}: the database copy {name!r} named in the manifest is missing")
            tar.extract(name, workdir, filter="data")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise BackupError(f"{path} is damaged or truncated ({type(e).__name__}: {e})") from None
    payload = workdir / name
    size, digest = payload.stat().st_size, _sha256(payload)
    if size != expected.get("bytes"):
        raise BackupError(f"{path}: the database copy has {size} bytes but the manifest says {expected.get('bytes')}; the file is damaged")
    if digest != expected.get("sha256"):
        raise BackupError(f"{path}: the database copy's SHA-256 is {digest}, not {expected.get('sha256')} as the manifest says;"
                          " the file is damaged or was altered")
    return Checked(manifest, payload)


def _check_fits(manifest: dict[str, Any]) -> None:
    """Same engine, and no migration this code does not know (a backup from a newer trialdesk)."""
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    engine = _engine()
    if manifest.get("engine") != engine:
        raise BackupError(f"this backup is of a {manifest.get('engine')} database; the trial desk is configured for {engine}."
                          " Restore it into the same kind of database (set DATABASE_URL accordingly)")
    known = {f"{app}.{name}" for app, name in MigrationLoader(connection, ignore_no_migrations=True).disk_migrations}
    unknown = sorted(set(manifest.get("migrations", [])) - known)
    if unknown:
        raise BackupError(f"this backup was made by a newer trialdesk (migrations not known here: {', '.join(unknown)});"
                          " upgrade trialdesk before restoring it")


def restore(path: Path) -> dict[str, Any]:
    """Replace the configured database with the backup's, or refuse and leave it untouched."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    with tempfile.TemporaryDirectory(prefix="trialdesk-restore-") as tmp:
        checked = check(path, Path(tmp))
        _check_fits(checked.manifest)
        connection.close()
        if checked.manifest["engine"] == "postgresql":
            listed = subprocess.run([_tool("pg_restore"), "--list", str(checked.payload)], capture_output=True, text=True)
            if listed.returncode != 0:
                raise BackupError(f"pg_restore cannot read the dump: {listed.stderr.strip()}")
            args, env = _pg_env()
            done = subprocess.run([_tool("pg_restore"), "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
                                   "--no-owner", *args, str(checked.payload)], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise BackupError(f"pg_restore failed and rolled back; the database is unchanged: {done.stderr.strip()[-2000:]}")
        else:
            Path(settings.DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
            source = sqlite3.connect(str(checked.payload))
            try:
                problems = source.execute("PRAGMA integrity_check").fetchall()
                if problems != [("ok",)]:
                    raise BackupError(f"the SQLite copy in the backup fails its integrity check: {problems[:5]}")
                target = sqlite3.connect(str(settings.DATABASES["default"]["NAME"]))
                try:
                    source.backup(target)
                finally:
                    target.close()
            finally:
                source.close()
    call_command("migrate", interactive=False, verbosity=0)
    restored = _state()
    differs = [k for k in ("audit", "records") if restored[k] != checked.manifest.get(k)]
    return {"manifest": checked.manifest, "restored": restored, "differs": differs}

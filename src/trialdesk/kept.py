"""What the command line keeps on disk between processes: the work that depends only on the
code and on input files, never on a patient's data — a protocol read and checked, a screen's
SQL compiled, answers about units (``trialdesk.terminology.units``). Each kept item is found
by a SHA-256 key over everything it was made from (the inputs' bytes, and
:func:`code_fingerprint`: every module of trialdesk and the versions of the libraries
involved), so a change to any of them makes it afresh; a file that cannot be read is ignored
and written again.

Off unless :func:`keep_in` names a folder: ``trialdesk patient check`` does for its run; a
library caller, the trial desk and the tests work in process as before.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from importlib import metadata
from pathlib import Path

_FOLDER: list[Path] = []
#: called when a :func:`keeping` block ends, to write what was kept as the block went (the units' answers)
_AT_END: list[Callable[[], None]] = []
#: at most this many kept items of one kind; the oldest go first
KEEP = 64


def default_folder() -> Path:
    """``$TRIALDESK_CACHE_DIR``, else ``$XDG_CACHE_HOME/trialdesk``, else ``~/.cache/trialdesk``."""
    base = os.environ.get("TRIALDESK_CACHE_DIR")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trialdesk"


@contextmanager
def keeping(folder: Path | None = None) -> Iterator[None]:
    """Keep items in ``folder`` (default: :func:`default_folder`) while the block runs."""
    before = list(_FOLDER)
    _FOLDER[:] = [folder or default_folder()]
    try:
        yield
    finally:
        try:
            for write_what_was_kept in _AT_END:
                write_what_was_kept()
        finally:
            _FOLDER[:] = before


def at_end(write_what_was_kept: Callable[[], None]) -> None:
    """Call ``write_what_was_kept`` whenever a :func:`keeping` block ends (once however often it is given)."""
    if write_what_was_kept not in _AT_END:
        _AT_END.append(write_what_was_kept)


def folder(kind: str) -> Path | None:
    """Where items of ``kind`` are kept now (None: nothing is kept)."""
    return _FOLDER[0] / kind if _FOLDER else None


@cache
def code_fingerprint() -> str:
    """SHA-256 over every module of trialdesk and the versions of the libraries that shape what is kept."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    for dist in ("ibis-framework", "sqlglot", "duckdb", "pydantic", "ruamel.yaml", "ucumvert", "pint"):
        try:
            h.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            h.update(dist.encode())
    return h.hexdigest()


def key_file(kind: str, key: bytes, suffix: str) -> Path | None:
    """The file of the item of ``kind`` made from ``key`` (None when nothing is kept)."""
    where = folder(kind)
    if where is None:
        return None
    return where / f"{hashlib.sha256(code_fingerprint().encode() + key).hexdigest()}{suffix}"


def write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and keep the newest :data:`KEEP` files of its folder;
    a folder that cannot be written keeps nothing (the command goes on)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        kept = sorted((p for p in path.parent.iterdir() if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime)
        for old in kept[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        return

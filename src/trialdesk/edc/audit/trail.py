"""Writing trial data: every create, change and delete goes through here and is audited.

An edit after first entry needs a reason; the edit carries the version the writer read,
and if someone saved in between, :class:`StaleEdit` tells the second writer (whose input
the form keeps) instead of overwriting. A change to a locked casebook is refused, and a
change to signed data voids the signature.

:func:`verify` checks both halves of the evidence: the hash chain (every entry whose content
or link no longer holds), then every trial record against its audit history replayed from the
first entry, so a row changed, inserted or deleted directly in the database is named with the
field and the entry that last set it. (The chain alone would only protect the history.)
The bookkeeping columns (version, created_at, updated_at) are not in the history; the version
is checked against the number of changes. A migration that fills a new column of existing
records must append an audit entry for each (``append(None, "migrate", model=..., object_id=...,
changes={column: [None, value]})``), or verify reports the new column as changed outside the desk.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from trialdesk.edc.audit.models import AuditEntry, ChainHead
from trialdesk.trial.errors import ConductError

GENESIS = "0" * 64


class StaleEdit(ConductError):
    def __init__(self, current: Any) -> None:
        super().__init__("version", f"{current.FORM} was changed by someone else (now version {current.version}) while you edited it;"
                                    " your entries are kept below — compare them with the saved values and save again")
        self.current = current


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    if isinstance(value, float | Decimal):
        return repr(float(value)) if isinstance(value, float) else str(value)
    return str(value)


def _fields(obj: models.Model) -> list[models.Field[Any, Any]]:
    exclude = set(getattr(obj, "AUDIT_EXCLUDE", ())) | {"id"}
    return [f for f in obj._meta.concrete_fields if f.name not in exclude]


def values(obj: models.Model) -> dict[str, str | None]:
    return {f.name: _text(getattr(obj, f.attname)) for f in _fields(obj)}


def _who(user: Any) -> tuple[str, str]:
    if user is None:
        return "system", "system"
    return user.get_username(), getattr(user, "role", "") or ""


def lock_chain() -> None:
    """Take the audit chain's lock for the rest of the caller's transaction: every audited write and every
    numbering that must not interleave with one goes through here (the one place the lock is taken)."""
    ChainHead.objects.select_for_update().get_or_create(pk=1)


def append(user: Any, action: str, *, model: str, object_id: str = "", subject_id: str = "", screening_id: str = "",
           form: str = "", changes: dict[str, Any] | None = None, reason: str = "") -> AuditEntry:
    """Add one entry at the end of the chain (inside the caller's transaction)."""
    if _has_nul(reason):
        raise ConductError("reason", "the reason contains a NUL character (\\x00), which cannot be stored; remove it")
    with transaction.atomic():
        head, _ = ChainHead.objects.select_for_update().get_or_create(pk=1)
        username, role = _who(user)
        entry = AuditEntry(seq=head.length + 1, at=timezone.now().astimezone(dt.UTC), username=username, role=role, action=action,
                           model=model, object_id=object_id, subject_id=subject_id, screening_id=screening_id, form=form,
                           changes=changes or {}, reason=reason, prev_hash=head.last_hash)
        entry.hash = entry.compute_hash()
        entry.save()
        ChainHead.objects.filter(pk=1).update(length=entry.seq, last_hash=entry.hash)
        return entry


def _entry(user: Any, action: str, obj: Any, changes: dict[str, Any], reason: str = "") -> AuditEntry:
    return append(user, action, model=obj._meta.label, object_id=str(obj.pk), subject_id=obj.audit_subject(),
                  screening_id=obj.audit_screening(), form=obj.FORM, changes=changes, reason=reason)


def _check_lock(obj: Any) -> None:
    book = obj.casebook()
    if book is not None and book.pk is not None and type(book).objects.filter(pk=book.pk, locked=True).exists():
        raise ConductError("casebook", f"the casebook of {book.subject_id} is locked; ask the data manager to unlock it before any change")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def check_storable(obj: models.Model) -> None:
    """Refuse, naming the field, a value the database would cut, refuse or store outside the field's choices.

    Forms check lengths and choices before the services run; the API and the command line do not
    always, so the one place every write passes checks again (on SQLite nothing else would)."""
    for f in obj._meta.concrete_fields:
        value = getattr(obj, f.attname)
        label = str(f.verbose_name)
        if _has_nul(value):
            raise ConductError(f.name, f"{label} contains a NUL character (\\x00), which cannot be stored; remove it")
        if isinstance(value, str) and f.max_length is not None and len(value) > f.max_length:
            raise ConductError(f.name, f"{label} is {len(value)} characters long; at most {f.max_length} are kept — shorten it")
        if isinstance(value, str) and f.choices and value not in {str(k) for k, _ in f.flatchoices} and not (value == "" and f.blank):
            raise ConductError(f.name, f"{value[:40]!r} is not a {label}; choose one of {', '.join(str(k) for k, _ in f.flatchoices)}")


def create(obj: Any, user: Any) -> Any:
    with transaction.atomic():
        _check_lock(obj)
        check_storable(obj)
        obj.save()
        _entry(user, "create", obj, {name: [None, new] for name, new in values(obj).items() if new not in (None, "")})
    return obj


def update(obj: Any, user: Any, *, changes: dict[str, Any], reason: str, version: int) -> Any:
    """Apply ``changes`` (field -> new value) to the saved record read at ``version``."""
    cls = type(obj)
    with transaction.atomic():
        current = cls._base_manager.select_for_update().get(pk=obj.pk)
        if current.version != version:
            raise StaleEdit(current)
        _check_lock(current)
        before = values(current)
        for name, value in changes.items():
            setattr(current, name, value)
        check_storable(current)
        after = values(current)
        diff = {name: [before[name], after[name]] for name in after if before[name] != after[name]}
        if not diff:
            return current
        if not reason.strip():
            raise ConductError("reason", "give the reason for this change (required for any edit after first entry)")
        written = cls._base_manager.filter(pk=obj.pk, version=version).update(
            **{name: getattr(current, name) for name in diff}, version=version + 1, updated_at=timezone.now())
        if written != 1:
            raise StaleEdit(cls._base_manager.get(pk=obj.pk))
        current.refresh_from_db()
        _entry(user, "update", current, diff, reason.strip())
        from trialdesk.edc.signatures.service import revalidate

        for target in current.signed_dependants():
            revalidate(target, user, cause=f"{current.FORM} changed ({', '.join(diff)})")
    return current


def delete(obj: Any, user: Any, *, reason: str) -> None:
    if not reason.strip():
        raise ConductError("reason", "give the reason for deleting this record")
    with transaction.atomic():
        _check_lock(obj)
        _entry(user, "delete", obj, {name: [old, None] for name, old in values(obj).items() if old not in (None, "")}, reason.strip())
        dependants = [t for t in obj.signed_dependants() if t is not obj]
        obj.delete()
        from trialdesk.edc.signatures.service import revalidate

        for target in dependants:
            revalidate(target, user, cause=f"{obj.FORM} deleted")


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str = ""
    #: every problem found, one sentence each: broken entries first, then records that no longer match their history
    findings: tuple[str, ...] = ()
    records: int = 0

    def sentence(self) -> str:
        if self.ok:
            return (f"audit trail intact: {self.checked} entries, every hash matches its content and the one before;"
                    f" {self.records} records match their audit history")
        if self.broken_seq is not None:
            return f"audit trail BROKEN at entry {self.broken_seq}: {self.problem}"
        return f"audit trail BROKEN: {self.problem}"

    def report(self) -> str:
        """The sentence, then every finding on its own line."""
        more = self.findings[1:] if len(self.findings) > 1 else ()
        return "\n".join([self.sentence(), *(f"- {f}" for f in more)])


def _chain() -> tuple[int, list[tuple[int | None, str]]]:
    """Walk the whole chain; every entry whose content or link does not hold (seq, sentence)."""
    found: list[tuple[int | None, str]] = []
    prev = GENESIS
    expected_seq = 1
    count = 0
    for entry in AuditEntry.objects.order_by("seq").iterator(chunk_size=2000):
        if entry.seq != expected_seq:
            gap = f"entry {expected_seq} is" if entry.seq == expected_seq + 1 else f"entries {expected_seq}–{entry.seq - 1} are"
            found.append((entry.seq, f"{gap} missing (the next stored entry is {entry.seq})"))
        elif entry.prev_hash != prev:
            found.append((entry.seq, "its link to the previous entry does not match (an entry before it was changed or removed)"))
        if entry.compute_hash() != entry.hash:
            found.append((entry.seq, f"its content no longer matches its hash ({entry.model} {entry.object_id}, {entry.action})"))
        prev = entry.hash
        expected_seq = entry.seq + 1
        count += 1
    head = ChainHead.objects.filter(pk=1).first()
    if head is not None and head.length != count:
        found.append((count + 1 if head.length > count else count,
                      f"the chain holds {count} entries but {head.length} were written (entries at the end were removed)"))
    elif head is not None and head.last_hash != prev:
        found.append((count, "the last entry's hash is not the one written (it was changed and its hash recomputed)"))
    return count, found


def _same(field: models.Field[Any, Any], stored: str | None, audited: str | None) -> bool:
    """The value in the row against the value its audit history gives, compared as the field's type
    (the history keeps text: 70 and 70.0 are one weight). A first entry leaves out empty values."""
    if stored in (None, "") or audited in (None, ""):
        return stored in (None, "") and audited in (None, "")
    if stored == audited:
        return True
    try:
        return _text(field.to_python(stored)) == _text(field.to_python(audited))
    except (ValueError, TypeError, ValidationError):
        return False


def _records() -> tuple[int, list[str]]:
    """Replay the audit history of every trial record and compare it with the row in the database.

    The chain proves the history was not changed; this proves the data was not changed outside
    the history: a direct edit of a row, a row inserted or deleted behind the trial desk's back.
    Reported per record and field, naming the last audit entry that set the field."""
    from trialdesk.edc.records import TrialRecord

    history: dict[tuple[str, str], dict[str, Any]] = {}
    for seq, model, object_id, action, changes in (AuditEntry.objects.filter(action__in=("create", "update", "delete", "migrate"))
                                                   .order_by("seq").values_list("seq", "model", "object_id", "action", "changes")
                                                   .iterator(chunk_size=2000)):
        h = history.setdefault((model, object_id), {"values": {}, "set_by": {}, "created": 0, "updates": 0, "deleted": False})
        if action != "migrate":  # a migration's entry sets values without a new version
            h["created" if action == "create" else "updates" if action == "update" else "deleted"] += 1
        for name, pair in (changes or {}).items():
            if isinstance(pair, list) and len(pair) == 2:
                h["values"][name] = pair[1]
                h["set_by"][name] = seq
    findings: list[str] = []
    count = 0
    for model in (m for m in apps.get_models() if issubclass(m, TrialRecord)):
        label = model._meta.label
        fields = [f for f in model._meta.concrete_fields if f.name not in set(model.AUDIT_EXCLUDE) | {"id"}]
        seen = set()
        for obj in model._base_manager.all().iterator(chunk_size=2000):
            count += 1
            key = (label, str(obj.pk))
            seen.add(key)
            h = history.get(key)
            what = f"{label} {obj.pk} ({obj.FORM})"
            if h is None or not h["created"]:
                findings.append(f"{what} has no entry in the audit trail: it was written outside the trial desk")
                continue
            for f in fields:
                stored, audited = _text(getattr(obj, f.attname)), h["values"].get(f.name)
                if not _same(f, stored, audited):
                    by = f"entry {h['set_by'][f.name]}" if f.name in h["set_by"] else "its first entry, which left it empty"
                    findings.append(f"{what}: {f.name} is {stored!r} in the database but {audited!r} in the audit trail ({by});"
                                    " the row was changed outside the trial desk")
            if obj.version != 1 + h["updates"]:
                findings.append(f"{what} is at version {obj.version} but the audit trail holds {h['updates']} changes to it")
        for key, h in history.items():
            if key[0] == label and key not in seen and h["created"] and not h["deleted"]:
                findings.append(f"{label} {key[1]} is in the audit trail but not in the database: it was deleted outside the trial desk")
    return count, findings


def verify() -> Verification:
    """Check the chain (every entry, not only the first broken one), then every record against its history."""
    count, broken = _chain()
    records, changed = _records()
    findings = tuple([f"entry {seq}: {text}" for seq, text in broken] + changed)
    if broken:
        seq, text = broken[0]
        return Verification(False, count, seq, text, findings, records)
    if changed:
        return Verification(False, count, None, changed[0], findings, records)
    return Verification(True, count, records=records)

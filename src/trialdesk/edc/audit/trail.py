"""Writing trial data: every create, change and delete goes through here and is audited.

An edit after first entry needs a reason; the edit carries the version the writer read,
and if someone saved in between, :class:`StaleEdit` tells the second writer (whose input
the form keeps) instead of overwriting. A change to a locked casebook is refused, and a
change to signed data voids the signature.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

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
        current = cls.objects.select_for_update().get(pk=obj.pk)
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
        written = cls.objects.filter(pk=obj.pk, version=version).update(
            **{name: getattr(current, name) for name in diff}, version=version + 1, updated_at=timezone.now())
        if written != 1:
            raise StaleEdit(cls.objects.get(pk=obj.pk))
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

    def sentence(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.checked} entries, every hash matches its content and the one before"
        return f"audit trail BROKEN at entry {self.broken_seq}: {self.problem}"


def verify() -> Verification:
    """Walk the chain from the start; report the first entry that does not match."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    for entry in AuditEntry.objects.order_by("seq").iterator(chunk_size=2000):
        if entry.seq != expected_seq:
            return Verification(False, count, entry.seq, f"entry {expected_seq} is missing (the next stored entry is {entry.seq})")
        if entry.prev_hash != prev:
            return Verification(False, count, entry.seq,
                    "its link to the previous entry does not match (an entry before it was changed or removed)")
        if entry.compute_hash() != entry.hash:
            return Verification(False, count, entry.seq,
                    f"its content no longer matches its hash ({entry.model} {entry.object_id}, {entry.action})")
        prev = entry.hash
        expected_seq += 1
        count += 1
    head = ChainHead.objects.filter(pk=1).first()
    if head is not None and (head.length != count or head.last_hash != prev):
        return Verification(False, count, count + 1 if head.length > count else count,
                            f"the chain holds {count} entries but {head.length} were written (entries at the end were removed)")
    return Verification(True, count)

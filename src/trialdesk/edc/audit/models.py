"""The audit trail: append-only, hash-chained.

Each entry stores the SHA-256 of its own content together with the previous entry's hash,
so changing, removing or reordering any stored entry breaks the chain from that entry on;
``trialdesk audit verify`` reports the first entry that no longer matches.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import models


class AppendOnly(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise PermissionError("the audit trail is append-only: entries cannot be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("the audit trail is append-only: entries cannot be deleted")


class AuditEntry(models.Model):
    seq = models.PositiveBigIntegerField(unique=True)
    at = models.DateTimeField(help_text="UTC")
    username = models.CharField(max_length=150)
    role = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=32)  # create, update, delete, sign, void_signature, login...
    model = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64, blank=True)
    subject_id = models.CharField(max_length=32, blank=True, db_index=True)
    screening_id = models.CharField(max_length=32, blank=True, db_index=True)
    form = models.CharField(max_length=64, blank=True, db_index=True)
    changes = models.JSONField(default=dict)  # field -> [old, new], values as text
    reason = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AppendOnly.as_manager()

    class Meta:
        ordering = ["seq"]

    def content(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "username": self.username, "role": self.role, "action": self.action,
                "model": self.model, "object_id": self.object_id, "subject_id": self.subject_id, "screening_id": self.screening_id,
                "form": self.form, "changes": self.changes, "reason": self.reason, "prev_hash": self.prev_hash}

    def compute_hash(self) -> str:
        text = json.dumps(self.content(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError("the audit trail is append-only: entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("the audit trail is append-only: entries cannot be deleted")


class ChainHead(models.Model):
    """One row: the last hash and length of the chain. Locking it serialises appends."""

    length = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

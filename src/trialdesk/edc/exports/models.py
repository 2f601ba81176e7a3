"""The study's date-shift key: the secret the de-identified SDTM export derives each participant's
date offset from (:func:`trialdesk.analysis.sdtm.shift_days`). Made once, on the first de-identified
export, and kept, so every later export shifts a participant's dates by the same number of days and
cuts can be merged and compared. Never shown on a page or written into an export; anyone who can read
this table can read the real dates anyway. ``TRIALDESK_DATE_SHIFT_KEY`` overrides it (the command
line's ``trialdesk export sdtm`` reads the same variable, so both give the same offsets)."""

from __future__ import annotations

import os
import secrets

from django.db import models, transaction


class DateShiftKey(models.Model):
    key = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "date-shift key"


def date_shift_key() -> bytes:
    """The key of this study's de-identified exports (the environment's, else the stored one, made once)."""
    configured = os.environ.get("TRIALDESK_DATE_SHIFT_KEY", "").strip()
    if configured:
        return configured.encode("utf-8")
    with transaction.atomic():
        row, _ = DateShiftKey.objects.select_for_update().get_or_create(pk=1, defaults={"key": secrets.token_hex(32)})
    return row.key.encode("utf-8")

"""Signing, and voiding a signature when the signed data changes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from trialdesk.edc.signatures.models import Signature
from trialdesk.trial.errors import ConductError


def data_hash(obj: Any) -> str:
    content = obj.signed_content()
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def signatures_of(obj: Any) -> list[Signature]:
    return list(Signature.objects.filter(model=obj._meta.label, object_id=str(obj.pk)))


def current_signature(obj: Any) -> Signature | None:
    return Signature.objects.filter(model=obj._meta.label, object_id=str(obj.pk), voided_at__isnull=True).order_by("-signed_at").first()


def sign(obj: Any, user: Any, *, password: str, printed_name: str, meaning: str) -> Signature:
    """Sign ``obj`` after the signer re-enters their password (both components, 11.200(a)(1))."""
    from trialdesk.edc.audit import trail

    if not printed_name.strip():
        raise ConductError("printed_name", "type your full name as it should appear on the signature")
    expected = (user.get_full_name() or "").strip()
    if expected and printed_name.strip().casefold() != expected.casefold():
        raise ConductError("printed_name", f"the printed name must be your own name as registered ({expected})")
    if not password or not user.check_password(password):
        raise ConductError("password", "the password is not correct; re-enter your own password to sign")
    with transaction.atomic():
        sig = Signature.objects.create(model=obj._meta.label, object_id=str(obj.pk), signer=user, printed_name=printed_name.strip(),
                                       meaning=meaning, signed_at=timezone.now(), data_hash=data_hash(obj))
        trail.append(user, "sign", model=obj._meta.label, object_id=str(obj.pk), subject_id=obj.audit_subject(),
                     screening_id=obj.audit_screening(), form=obj.FORM,
                     changes={"signature": [None, sig.manifestation()], "data_hash": [None, sig.data_hash]})
    return sig


def revalidate(obj: Any, user: Any, *, cause: str) -> list[Signature]:
    """Void every signature on ``obj`` whose signed data no longer matches; return them."""
    from trialdesk.edc.audit import trail

    if not hasattr(obj, "signed_content"):
        return []
    obj.refresh_from_db()
    now_hash = data_hash(obj)
    voided = []
    for sig in Signature.objects.select_for_update().filter(model=obj._meta.label, object_id=str(obj.pk), voided_at__isnull=True):
        if sig.data_hash != now_hash:
            sig.voided_at = timezone.now()
            sig.void_reason = f"the signed data changed after signing: {cause}"
            sig.save(update_fields=["voided_at", "void_reason"])
            trail.append(user, "void_signature", model=obj._meta.label, object_id=str(obj.pk), subject_id=obj.audit_subject(),
                         screening_id=obj.audit_screening(), form=obj.FORM,
                         changes={"signature": [sig.manifestation(), "VOID"]}, reason=sig.void_reason)
            voided.append(sig)
    return voided

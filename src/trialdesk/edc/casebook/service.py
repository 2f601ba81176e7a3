"""The casebook's signed content, the principal investigator's signature over it, and the rule the lock
follows: a casebook is locked only when the PI's signature holds for its data as they are now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trialdesk.edc.audit.trail import values
from trialdesk.edc.participants.models import Participant
from trialdesk.edc.signatures.models import Signature
from trialdesk.trial.errors import ConductError

#: what the investigator's signature on a casebook means (21 CFR 11.50(a)(3))
MEANING = "Principal investigator: I reviewed this casebook; its data are complete and accurate"


def _rows(records: Any) -> list[dict[str, Any]]:
    return [values(r) for r in records]


def content(p: Participant) -> dict[str, Any]:
    """Every clinical record of the casebook (what the signature covers); not the lock or the bookkeeping,
    so locking a signed casebook keeps its signature."""
    visits = []
    for v in p.visits.prefetch_related("entries").order_by("day", "code"):
        visits.append({"visit": values(v), "forms": {e.form: {"data": e.data, "not_done": e.not_done_reason}
                                                     for e in v.entries.all()}})
    participant = {k: v for k, v in values(p).items() if k not in ("locked", "locked_by", "locked_at")}
    cohort = p.cohort_assignments.first()  # in force (one marked in error is not); only dose-finding trials have one
    if cohort is not None:
        participant["cohort_assignment"] = values(cohort)
    return {"participant": participant, "consent": values(p.current_consent()), "infusions": _rows(p.infusions.all()),
            "visits": visits, "adverse_events": _rows(p.adverse_events.all()), "medications": _rows(p.medications.all()),
            "medical_history": _rows(p.medical_history.all())}


@dataclass(frozen=True)
class SignatureState:
    signature: Signature | None
    holds: bool  # signed, and the data have not changed since

    @property
    def sentence(self) -> str:
        if self.signature is None:
            return "Not signed by the principal investigator."
        if not self.holds:
            return (f"Signed ({self.signature.manifestation()}), but the casebook changed after that signature: the principal"
                    " investigator must sign it again before it can be locked.")
        return f"Signed: {self.signature.manifestation()}."


def signature_state(p: Participant) -> SignatureState:
    from trialdesk.edc.signatures.service import current_signature, data_hash

    sig = current_signature(p)
    if sig is not None and sig.meaning != MEANING:
        sig = None
    return SignatureState(sig, sig is not None and sig.data_hash == data_hash(p))


def sign(user: Any, p: Participant, *, password: str, printed_name: str) -> Signature:
    """The principal investigator signs the casebook as it is now (password and printed name, 11.200(a)(1))."""
    from trialdesk.edc.permissions import allowed
    from trialdesk.edc.signatures.service import sign as e_sign

    if not allowed(user, "sign_casebook"):
        raise ConductError("signature", "only the principal investigator signs a casebook")
    if p.locked:
        raise ConductError("signature", f"the casebook of {p.subject_id} is locked; it was signed before it was locked")
    return e_sign(p, user, password=password, printed_name=printed_name, meaning=MEANING)


def check_may_lock(p: Participant) -> None:
    """A casebook is locked only over a signature of the principal investigator that holds for its data now."""
    state = signature_state(p)
    if state.signature is None:
        raise ConductError("signature", f"the principal investigator has not signed the casebook of {p.subject_id};"
                                        " it can be locked once it is signed")
    if not state.holds:
        raise ConductError("signature", f"the casebook of {p.subject_id} changed after the principal investigator signed it;"
                                        " it can be locked once it is signed again")

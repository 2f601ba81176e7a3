"""Screening: add people to the log (by hand, from the pre-screen's candidates.csv, or from
a FHIR record through the eligibility worksheet), re-screen, and the investigator's sign-off."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.db import transaction

from trialdesk.edc.audit import trail
from trialdesk.edc.context import lock_audit_chain
from trialdesk.edc.screening.models import EligibilitySignoff, ScreeningEntry
from trialdesk.edc.signatures.service import current_signature, sign
from trialdesk.edc.web import protocol, today, value_sets
from trialdesk.trial.errors import ConductError
from trialdesk.trial.identity import RecordIdentity, discrepancies, to_fill
from trialdesk.trial.signoff import decide, manual_worksheet, prescreen_worksheet

SIGN_MEANING = "I confirm eligibility: I reviewed the worksheet and answered every attestation"
CANDIDATE_COLUMNS = ("person_id", "overall", "unknown_criteria", "needs_review_criteria")


def _next_number() -> str:
    lock_audit_chain()  # serialises numbering with every audited write
    last = ScreeningEntry.objects.order_by("-number").values_list("number", flat=True).first()
    n = int(last.split("-")[1]) + 1 if last else 1
    return f"S-{n:04d}"


def _check_dates(screened_on: dt.date, as_of: dt.date) -> None:
    if screened_on > today():
        raise ConductError("screened_on", f"screening cannot be dated in the future ({screened_on})")
    if as_of > screened_on:
        raise ConductError("as_of", f"the data cannot be as of a date ({as_of}) after the screening ({screened_on})")


def _create(user: Any, *, snapshot: dict[str, Any], source: str, source_ref: str = "", screened_on: dt.date,
            previous: ScreeningEntry | None = None, **person: Any) -> ScreeningEntry:
    p = protocol()
    with transaction.atomic():
        entry = ScreeningEntry(number=_next_number(), snapshot=snapshot, source=source, source_ref=source_ref, screened_on=screened_on,
                               protocol_id=p.id, protocol_version=str(snapshot.get("protocol_version") or p.version),
                               data_as_of=dt.date.fromisoformat(snapshot["as_of"]), previous=previous, created_by=user, **person)
        if snapshot.get("overall") == "not_eligible":
            entry.outcome = "screen_failed"
            entry.failed_criteria = excluding(snapshot)
        return trail.create(entry, user)


def excluding(snapshot: Mapping[str, Any]) -> list[str]:
    """The criteria that exclude on a worksheet (an inclusion not met, an exclusion met), by each criterion's role."""
    from trialdesk.criteria.status import Status, excludes

    roles = protocol().eligibility.roles
    return [c["id"] for c in snapshot.get("criteria", [])
            if c["id"] in roles and excludes(roles[c["id"]], Status.from_label(c["status"]))]


def screen_by_hand(user: Any, *, screened_on: dt.date, previous: ScreeningEntry | None = None, **person: Any) -> ScreeningEntry:
    _check_dates(screened_on, screened_on)
    return _create(user, snapshot=manual_worksheet(protocol(), screened_on), source="manual", screened_on=screened_on,
                   previous=previous, **person)


def import_candidates(user: Any, text: str, *, as_of: dt.date, screened_on: dt.date) -> list[ScreeningEntry]:
    """One entry per row of the pre-screen's candidates.csv (all or nothing)."""
    _check_dates(screened_on, as_of)
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ConductError("file", "candidates.csv has no rows; upload the file 'trialdesk screen' wrote")
    missing = [c for c in CANDIDATE_COLUMNS if c not in rows[0]]
    if missing:
        raise ConductError("file", f"candidates.csv lacks the column(s) {', '.join(missing)}; upload the file 'trialdesk screen' wrote")
    known = {c.id for c in protocol().eligibility.criteria}
    out = []
    with transaction.atomic():
        for line, row in enumerate(rows, start=2):
            unknown = (row["unknown_criteria"] or "").split()
            review = (row["needs_review_criteria"] or "").split()
            strange = [c for c in unknown + review if c not in known]
            if strange:
                raise ConductError("file", f"line {line}: criterion id(s) {', '.join(strange)} are not in protocol {protocol().id}")
            sheet = prescreen_worksheet(protocol(), as_of, person_id=row["person_id"], unknown=unknown, needs_review=review,
                                        rank=row.get("rank"))
            out.append(_create(user, snapshot=sheet, source="prescreen", source_ref=f"OMOP person {row['person_id']}",
                               screened_on=screened_on))
    return out


def screen_fhir(user: Any, path: Path, *, as_of: dt.date, screened_on: dt.date, label: str = "") -> list[ScreeningEntry]:
    """One entry per patient in a FHIR Bundle or Bulk export, with the engine's worksheet."""
    from trialdesk.eligibility.worksheet import check_fhir

    _check_dates(screened_on, as_of)
    try:
        sheets = check_fhir(path, protocol(), as_of, value_sets=value_sets())
    except (ValueError, OSError) as e:
        raise ConductError("file", f"the FHIR record could not be read: {e}") from e
    if not sheets:
        raise ConductError("file", "the FHIR record holds no Patient; upload a Bundle or Bulk export with one")
    out = []
    with transaction.atomic():
        for sheet in sheets:
            snap = sheet.to_json()
            # an upload's problems that belong to no patient stay on each entry: each entry is read and signed
            # on its own, and a record among them (a Condition whose subject is not in the file) may be this patient's
            snap["problems"] = [*snap["problems"], *sheets.problems]
            snap["source"] = "fhir"
            ref = f"{label or path.name}: Patient/{sheet.patient}"
            snap["patient_record"] = RecordIdentity.from_fhir(sheet.birth_date, sheet.gender, f"FHIR record ({ref})").as_snapshot()
            entry = _create(user, snapshot=snap, source="fhir", source_ref=ref, screened_on=screened_on)
            out.append(identity_from_record(user, entry))
    return out


def identity_from_record(user: Any, entry: ScreeningEntry) -> ScreeningEntry:
    """Copy the record's birth date and sex into the fields of ``entry`` nobody has filled (an audited change
    with the record as its reason); a value already entered is never overwritten (see :func:`record_discrepancies`)."""
    record = RecordIdentity.from_snapshot(entry.snapshot)
    if record is None:
        return entry
    fill = to_fill({"birth_date": entry.birth_date, "sex": entry.sex}, record)
    if not fill:
        return entry
    return trail.update(entry, user, changes=fill, reason=f"copied from the {record.source}", version=entry.version)  # type: ignore[no-any-return]


def record_discrepancies(entry: ScreeningEntry) -> list[str]:
    """Where the entered birth date or sex differs from the record the entry was screened from."""
    record = RecordIdentity.from_snapshot(entry.snapshot)
    return [] if record is None else discrepancies({"birth_date": entry.birth_date, "sex": entry.sex}, record)


def rescreen(user: Any, entry: ScreeningEntry, *, screened_on: dt.date) -> ScreeningEntry:
    """A new entry (by hand) linked to the previous one; the previous entry is kept as it was."""
    if hasattr(entry, "participant"):
        subject = entry.participant.subject_id
        raise ConductError("screening", f"{entry.number} is enrolled as {subject}; an enrolled person is not re-screened")
    if entry.rescreens.exists():
        raise ConductError("screening", f"{entry.number} was already re-screened as {entry.rescreens.first()}; re-screen the latest entry")
    return screen_by_hand(user, screened_on=screened_on, previous=entry, given_name=entry.given_name, family_name=entry.family_name,
                          mrn=entry.mrn, birth_date=entry.birth_date, sex=entry.sex)


def sign_off(user: Any, entry: ScreeningEntry, *, answers: Mapping[str, bool], decisions: Mapping[str, str], password: str,
             printed_name: str, note: str = "", reason: str = "") -> EligibilitySignoff:
    """The investigator's decision, signed; refused (and nothing stored) if anything is missing."""
    if hasattr(entry, "participant"):
        raise ConductError("screening", "this person is enrolled; eligibility cannot be signed again")
    decision = decide(protocol(), entry.snapshot, answers, decisions)
    if not user.check_password(password or ""):
        raise ConductError("password", "the password is not correct; re-enter your own password to sign")
    with transaction.atomic():
        existing = EligibilitySignoff.objects.filter(screening=entry).first()
        fields = {"answers": dict(answers), "decisions": dict(decisions), "statuses": decision.statuses, "overall": decision.overall,
                  "failed_criteria": decision.failed, "note": note, "investigator": user}
        if existing is None:
            signoff = trail.create(EligibilitySignoff(screening=entry, **fields), user)
        else:
            if current_signature(existing) is not None:
                raise ConductError("screening", f"eligibility for {entry.number} is already signed; re-screen to decide again")
            signoff = trail.update(existing, user, changes=fields, reason=reason or "re-signed after the signature was voided",
                                   version=existing.version)
        sign(signoff, user, password=password, printed_name=printed_name, meaning=SIGN_MEANING)
        outcome = "eligible" if decision.overall == "eligible" else "screen_failed"
        trail.update(entry, user, changes={"outcome": outcome, "failed_criteria": decision.failed},
                     reason=f"eligibility signed: {decision.overall}", version=entry.version)
    return signoff


def signed_decision(entry: ScreeningEntry) -> tuple[bool, str]:
    """(signed and valid, overall) for the enrolment rule."""
    signoff = EligibilitySignoff.objects.filter(screening=entry).first()
    if signoff is None:
        return False, "needs_review"
    return current_signature(signoff) is not None, signoff.overall

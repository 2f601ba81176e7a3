"""The person screened: birth date and sex as the record they were screened from gives them.

Enrolment needs a birth date and a sex on the screening entry. A FHIR Patient resource names
both, so an entry screened from a FHIR record takes them from it — but only into fields nobody
has filled: a value a person entered was checked against the patient or the chart and stands.
Where an entered value and the record disagree, both are shown so the coordinator can resolve it
(with Edit and a reason); nothing is changed silently in either direction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: the sexes a screening entry records; FHIR's "other" and "unknown" leave the entry's sex unset
SEXES = ("female", "male")
LABELS = {"birth_date": "Date of birth", "sex": "Sex"}


@dataclass(frozen=True)
class RecordIdentity:
    """What the source record says about the person (None where it says nothing usable)."""

    birth_date: dt.date | None = None
    sex: str | None = None
    source: str = ""

    def as_snapshot(self) -> dict[str, str | None]:
        return {"birth_date": self.birth_date.isoformat() if self.birth_date else None, "sex": self.sex, "source": self.source}

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> RecordIdentity | None:
        """The identity kept in a screening entry's worksheet snapshot, or None if it has none (by hand, pre-screen)."""
        kept = snapshot.get("patient_record")
        if not isinstance(kept, Mapping):
            return None
        birth = kept.get("birth_date")
        return cls(dt.date.fromisoformat(birth) if birth else None, kept.get("sex") or None, str(kept.get("source") or ""))

    @classmethod
    def from_fhir(cls, birth_date: dt.date | None, gender: str | None, source: str) -> RecordIdentity:
        return cls(birth_date, gender if gender in SEXES else None, source)

    def values(self) -> dict[str, Any]:
        return {"birth_date": self.birth_date, "sex": self.sex}


def _blank(field: str, value: Any) -> bool:
    return value is None or value == "" or (field == "sex" and value == "unknown")


def to_fill(entered: Mapping[str, Any], record: RecordIdentity) -> dict[str, Any]:
    """The fields the record may fill: those the entry leaves blank and the record gives."""
    return {f: v for f, v in record.values().items() if v is not None and _blank(f, entered.get(f))}


def discrepancies(entered: Mapping[str, Any], record: RecordIdentity) -> list[str]:
    """One sentence per field where an entered value and the record disagree (the entered value is kept)."""
    out = []
    for f, from_record in record.values().items():
        mine = entered.get(f)
        if from_record is None or _blank(f, mine) or mine == from_record:
            continue
        shown = from_record.isoformat() if isinstance(from_record, dt.date) else from_record
        kept = mine.isoformat() if isinstance(mine, dt.date) else mine
        out.append(f"{LABELS[f]}: entered {kept}, but the {record.source or 'source record'} says {shown}. The entered value is kept;"
                   " check the patient's identity and correct the entry (Edit, with a reason) if the record is right.")
    return out

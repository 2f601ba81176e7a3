"""Statuses and how they combine.

A status is the truth of a criterion's own sentence for one person. They are ordered
``not_met < unknown < needs_review < met`` so that ALL is the least of its parts and
ANY the greatest (Kleene's three-valued logic, with "a person must judge" between
"the data cannot say" and "true"); NOT swaps met and not_met and keeps the rest.
The codes are small integers so the same rules run inside any SQL backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntEnum


class Status(IntEnum):
    NOT_MET = 0
    UNKNOWN = 1
    NEEDS_REVIEW = 2
    MET = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Status:
        return cls[label.upper()]


def all_of(parts: Iterable[Status]) -> Status:
    return min(parts)


def any_of(parts: Iterable[Status]) -> Status:
    return max(parts)


def negate(s: Status) -> Status:
    return {Status.MET: Status.NOT_MET, Status.NOT_MET: Status.MET}.get(s, s)


OVERALL = ("eligible", "not_eligible", "needs_review")


def overall(statuses: Mapping[str, Status]) -> str:
    """Eligible = every inclusion met and no exclusion met; an inclusion not met or an
    exclusion met excludes; anything else needs a person."""
    excluded = any(
        (cid.startswith("I") and s == Status.NOT_MET) or (cid.startswith("E") and s == Status.MET)
        for cid, s in statuses.items()
    )
    if excluded:
        return "not_eligible"
    clean = all(
        (cid.startswith("I") and s == Status.MET) or (cid.startswith("E") and s == Status.NOT_MET)
        for cid, s in statuses.items()
    )
    return "eligible" if clean else "needs_review"


def excludes(criterion_id: str, s: Status) -> bool:
    return (criterion_id.startswith("I") and s == Status.NOT_MET) or (criterion_id.startswith("E") and s == Status.MET)


def settled(criterion_id: str, s: Status) -> bool:
    """The criterion needs no more checking for this person."""
    return (criterion_id.startswith("I") and s == Status.MET) or (criterion_id.startswith("E") and s == Status.NOT_MET)

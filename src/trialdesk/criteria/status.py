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
from typing import Any, Literal


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

#: what a criterion is for: an inclusion must be met, an exclusion must not be
Role = Literal["inclusion", "exclusion"]


def excluding_status(role: Role) -> Status:
    """The status by which a criterion excludes: an inclusion not met, an exclusion met."""
    return Status.NOT_MET if role == "inclusion" else Status.MET


def settled_status(role: Role) -> Status:
    """The status that needs no more checking: an inclusion met, an exclusion not met."""
    return Status.MET if role == "inclusion" else Status.NOT_MET


def excludes(role: Role, s: Status) -> bool:
    return s == excluding_status(role)


def settled(role: Role, s: Status) -> bool:
    return s == settled_status(role)


def overall(statuses: Mapping[str, Status], roles: Mapping[str, Role]) -> str:
    """The one verdict: eligible = every inclusion met and no exclusion met; an inclusion
    not met or an exclusion met excludes; anything else needs a person."""
    if any(excludes(roles[cid], s) for cid, s in statuses.items()):
        return "not_eligible"
    return "eligible" if all(settled(roles[cid], s) for cid, s in statuses.items()) else "needs_review"


def overall_codes(columns: Mapping[str, Any], roles: Mapping[str, Role]) -> Any:
    """:func:`overall` for many persons at once: ``columns`` maps each criterion id to a NumPy
    array of status codes; returns an array of verdicts (the same rule, vectorised)."""
    import numpy as np

    n = len(next(iter(columns.values()))) if columns else 0
    excluded = np.zeros(n, dtype=bool)
    clean = np.ones(n, dtype=bool)
    for cid, codes in columns.items():
        excluded |= codes == int(excluding_status(roles[cid]))
        clean &= codes == int(settled_status(roles[cid]))
    return np.where(excluded, "not_eligible", np.where(clean, "eligible", "needs_review"))

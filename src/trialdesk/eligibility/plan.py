"""What a protocol's criteria ask of the data: the leaves of every criterion's tree, each
with a key, the table it reads and the dates of its window.

A leaf is a node that reads records (an occurrence, a duration, a measurement) or the
person row (age, sex). Identical leaves are one leaf, whichever criteria use them, so the
data are read for each once. Leaves under an attestation's ``supporting`` parts are
evaluated for their evidence only: they never decide a status.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from trialdesk.criteria.language import (
    Age,
    All,
    AnyOf,
    Attestation,
    Duration,
    Expression,
    Measurement,
    Not,
    Occurrence,
    Sex,
)
from trialdesk.criteria.windows import Anchors, resolve
from trialdesk.protocol.model import Protocol

RecordLeaf = Occurrence | Duration | Measurement
PersonLeaf = Age | Sex
Leaf = RecordLeaf | PersonLeaf


@dataclass(frozen=True)
class DomainTable:
    """Where a clinical domain lives in the CDM and which columns the engine reads."""

    domain: str
    table: str
    id: str
    concept: str
    start: str
    end: str | None
    source: str
    moment: str | None = None  # the record's date and time, where the CDM keeps one
    has_value: bool = False


DOMAINS: dict[str, DomainTable] = {
    "condition": DomainTable("condition", "condition_occurrence", "condition_occurrence_id", "condition_concept_id",
                             "condition_start_date", "condition_end_date", "condition_source_value"),
    "drug": DomainTable("drug", "drug_exposure", "drug_exposure_id", "drug_concept_id", "drug_exposure_start_date",
                        "drug_exposure_end_date", "drug_source_value"),
    "procedure": DomainTable("procedure", "procedure_occurrence", "procedure_occurrence_id", "procedure_concept_id",
                             "procedure_date", None, "procedure_source_value"),
    "observation": DomainTable("observation", "observation", "observation_id", "observation_concept_id", "observation_date",
                               None, "observation_source_value", "observation_datetime", has_value=True),
    "measurement": DomainTable("measurement", "measurement", "measurement_id", "measurement_concept_id", "measurement_date",
                               None, "measurement_source_value", "measurement_datetime", has_value=True),
}


def domain_of(node: RecordLeaf) -> str:
    if isinstance(node, Measurement):
        return node.domain
    if isinstance(node, Duration):
        return node.domain
    return node.kind


def children(node: Expression) -> list[Expression]:
    """The nodes a node's status is made of (an attestation's supporting parts are not)."""
    if isinstance(node, (All, AnyOf)):
        return list(node.items)
    if isinstance(node, Not):
        return [node.item]
    return []


@dataclass
class Plan:
    """The leaves of a protocol's criteria, keyed, with the criteria that use each."""

    protocol: Protocol
    anchors: Anchors
    keys: dict[str, int] = field(default_factory=dict)  # leaf json -> key
    leaves: dict[int, Leaf] = field(default_factory=dict)
    leaf_criteria: dict[int, set[str]] = field(default_factory=dict)
    #: leaves read for an attestation's supporting evidence: key -> (criterion id, label)
    supporting: dict[int, set[tuple[str, str]]] = field(default_factory=dict)
    #: leaves that cannot be evaluated on this database, with the reason (their status is unknown)
    unavailable: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    concept_names: dict[int, str] = field(default_factory=dict)

    def key(self, node: Leaf) -> int:
        return self.keys[node.model_dump_json()]

    def _add(self, node: Leaf, criterion_id: str) -> int:
        text = node.model_dump_json()
        if text not in self.keys:
            k = len(self.keys)
            self.keys[text] = k
            self.leaves[k] = node
            self.leaf_criteria[k] = set()
        k = self.keys[text]
        self.leaf_criteria[k].add(criterion_id)
        return k

    def record_leaves(self, domain: str | None = None) -> dict[int, RecordLeaf]:
        return {k: n for k, n in sorted(self.leaves.items())
                if isinstance(n, (Occurrence, Duration, Measurement)) and (domain is None or domain_of(n) == domain)}

    def window(self, node: RecordLeaf) -> tuple[dt.date | None, dt.date]:
        """(first day or None for "ever", last day) of a leaf's window."""
        start, end = resolve(node.window, self.anchors)
        return start, end if end is not None else self.anchors.as_of

    @property
    def roots(self) -> dict[str, Expression]:
        return {c.id: c.computable for c in self.protocol.eligibility.criteria if c.computable is not None}


def plan_for(protocol: Protocol, anchors: Anchors) -> Plan:
    plan = Plan(protocol=protocol, anchors=anchors)

    def visit(node: Expression, cid: str, support: str | None) -> None:
        if isinstance(node, (Occurrence, Duration, Measurement, Age, Sex)):
            k = plan._add(node, cid)
            if support is not None:
                plan.supporting.setdefault(k, set()).add((cid, support))
        for child in children(node):
            visit(child, cid, support)
        if isinstance(node, Attestation):
            for part in node.supporting:
                visit(part.item, cid, part.label)

    for cid, root in plan.roots.items():
        visit(root, cid, None)
    return plan

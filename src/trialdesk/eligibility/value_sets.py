"""Resolving value sets against one OMOP database.

The result is two small lookup tables per clinical domain — concept id → value set and
source value → value set — that the compiler joins with the domain table once, so a
whole population is read once per domain, however many criteria use it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa

from trialdesk.sources.omop import OmopDatabase
from trialdesk.terminology.value_set import ValueSet

#: vocabularies whose codes are standard concepts in the domain tables
_STANDARD_VOCABULARIES = ("SNOMED", "RxNorm", "LOINC", "HCPCS", "CPT4")
#: vocabularies matched against *_source_value; ICD-10-CM by code prefix
_SOURCE_VOCABULARIES = ("ICD10CM", "RxNorm", "LOINC", "SNOMED", "LOCAL", "HCPCS", "CPT4", "ICD10PCS")


@dataclass
class Resolution:
    """Concept ids and source values standing for each value set."""

    concepts: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    names: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def concept_table(self, value_sets: Iterable[str]) -> pa.Table:
        rows = [(cid, vs) for vs in sorted(value_sets) for cid in sorted(self.concepts.get(vs, ()))]
        return pa.table({"concept_id": pa.array([r[0] for r in rows], pa.int64()),
                         "value_set": pa.array([r[1] for r in rows], pa.string())})


def resolve_concepts(db: OmopDatabase, value_sets: dict[str, ValueSet], used: Iterable[str]) -> Resolution:
    res = Resolution()
    used = sorted(set(used))
    direct: dict[int, set[str]] = defaultdict(set)
    expand: dict[int, set[str]] = defaultdict(set)
    by_code: dict[tuple[str, str], set[tuple[str, bool]]] = defaultdict(set)
    for vs_id in used:
        for code in value_sets[vs_id].codes:
            if code.system == "OMOP":
                (expand if code.include_descendants else direct)[int(code.code)].add(vs_id)
            elif code.system in _STANDARD_VOCABULARIES:
                by_code[(code.system, code.code)].add((vs_id, code.include_descendants))
    if by_code and db.has("concept"):
        c = db.table("concept")
        wanted = sorted({k[1] for k in by_code})
        found = c.filter(c.concept_code.isin(wanted) & c.vocabulary_id.isin(sorted({k[0] for k in by_code})))
        for row in found.select("concept_id", "vocabulary_id", "concept_code", "concept_name").to_pyarrow().to_pylist():
            for vs_id, desc in by_code.get((row["vocabulary_id"], row["concept_code"]), ()):
                (expand if desc else direct)[int(row["concept_id"])].add(vs_id)
                res.names[int(row["concept_id"])] = row["concept_name"]
    for cid, sets in direct.items():
        for vs_id in sets:
            res.concepts[vs_id].add(cid)
    for cid, sets in expand.items():
        for vs_id in sets:
            res.concepts[vs_id].add(cid)
    if expand and db.has("concept_ancestor"):
        ca = db.table("concept_ancestor")
        rows = ca.filter(ca.ancestor_concept_id.isin(sorted(expand))).select("ancestor_concept_id", "descendant_concept_id")
        for row in rows.to_pyarrow().to_pylist():
            for vs_id in expand[int(row["ancestor_concept_id"])]:
                res.concepts[vs_id].add(int(row["descendant_concept_id"]))
    elif expand:
        res.notes.append("no concept_ancestor table: value sets match their listed concepts only, not descendants")
    for vs_id in used:
        for code in value_sets[vs_id].codes:
            if code.system == "OMOP":
                res.names.setdefault(int(code.code), code.display or code.code)
    if db.has("concept") and res.concepts:
        all_ids = sorted({cid for ids in res.concepts.values() for cid in ids} - set(res.names))
        if all_ids:
            c = db.table("concept")
            for row in c.filter(c.concept_id.isin(all_ids)).select("concept_id", "concept_name").to_pyarrow().to_pylist():
                res.names[int(row["concept_id"])] = row["concept_name"]
    return res


def match_source_values(values: Iterable[str | None], value_sets: dict[str, ValueSet], used: Iterable[str]) -> pa.Table:
    """source value → value set, for the distinct source values found in a domain table.

    ICD-10-CM matches with or without the dot, by prefix when ``include_descendants``;
    other systems match the code exactly.
    """
    exact: dict[str, set[str]] = defaultdict(set)
    prefixes: dict[str, set[str]] = defaultdict(set)
    for vs_id in sorted(set(used)):
        for code in value_sets[vs_id].codes:
            if code.system not in _SOURCE_VOCABULARIES:
                continue
            if code.system == "ICD10CM" and code.include_descendants:
                prefixes[code.normalised].add(vs_id)
            else:
                exact[code.normalised if code.system == "ICD10CM" else code.code].add(vs_id)
    lengths = sorted({len(p) for p in prefixes})
    out_value, out_set = [], []
    for value in values:
        if value is None:
            continue
        key = value.strip()
        norm = key.replace(".", "").upper()
        hits = set(exact.get(key, ())) | set(exact.get(norm, ()))
        for n in lengths:
            hits |= prefixes.get(norm[:n], set())
        for vs_id in sorted(hits):
            out_value.append(value)
            out_set.append(vs_id)
    return pa.table({"source_value": pa.array(out_value, pa.string()), "value_set": pa.array(out_set, pa.string())})

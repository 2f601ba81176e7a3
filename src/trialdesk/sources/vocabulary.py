"""The vocabulary subset shipped with trialdesk: enough of the OMOP vocabularies for the
synthetic CDM and the test builder to resolve every code of the value-set library.

``data/concepts.csv`` holds one row per concept with its direct ``parents`` (for
``concept_ancestor``) and, for ICD-10-CM source concepts, the standard concept it
``maps_to`` (``concept_relationship`` 'Maps to'). The ``source`` column says where each
concept id comes from: the value sets, the OHDSI Phenotype Library cohort definitions,
the Eunomia vocabulary, OHDSI DataQualityDashboard's unit lists, a few well-known ids,
or ``local``: a site-local id >= 2,000,000,000 for a code whose OMOP id we did not
verify or for an invented descendant (their names say "(synthetic id)" or "(synthetic)").
ICD-10-CM source concepts are non-standard (standard_concept empty, as in OMOP) and, as
in OMOP, ``concept_ancestor`` holds standard concepts only. The single-letter chapter
prefixes of the value sets (ICD-10-CM ``C`` and ``O``) are not codes and have no concept.

``data/cdm_v54_columns.csv`` lists the CDM v5.4 columns, in DDL order, with their types
(from the OHDSI CDM v5.4 field specification).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import pyarrow as pa

LOCAL_ID_START = 2_000_000_000
VALID_START = dt.date(1970, 1, 1)
VALID_END = dt.date(2099, 12, 31)

_VOCABULARY_NAMES = {
    "SNOMED": "Systematic Nomenclature of Medicine - Clinical Terms (IHTSDO)",
    "ICD10CM": "International Classification of Diseases, Tenth Revision, Clinical Modification (NCHS)",
    "RxNorm": "RxNorm (NLM)",
    "LOINC": "Logical Observation Identifiers Names and Codes (Regenstrief Institute)",
    "UCUM": "Unified Code for Units of Measure (Regenstrief Institute)",
    "Gender": "OMOP Gender",
    "Race": "Race and Ethnicity Code Set (USBC)",
    "Ethnicity": "OMOP Ethnicity",
    "Visit": "OMOP Visit",
    "Type Concept": "OMOP Type Concept",
    "CDM": "OMOP Common Data Model",
    "LOCAL": "trialdesk site-local concepts (synthetic)",
}


@dataclass(frozen=True)
class Concept:
    concept_id: int
    concept_name: str
    domain_id: str
    vocabulary_id: str
    concept_class_id: str
    standard_concept: str | None
    concept_code: str
    parents: tuple[int, ...]
    maps_to: int | None
    source: str


def data_dir() -> Path:
    return Path(str(resources.files("trialdesk.sources") / "data"))


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    type: str
    required: bool


@cache
def cdm_columns() -> dict[str, list[Column]]:
    """CDM v5.4 tables the screen reads, each with its columns in DDL order."""
    out: dict[str, list[Column]] = defaultdict(list)
    with (data_dir() / "cdm_v54_columns.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            out[row["table"]].append(Column(row["table"], row["column"], row["type"], row["required"] == "yes"))
    return dict(out)


_ARROW_TYPES = {"INTEGER": pa.int32(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "DATE": pa.date32(),
                "TIMESTAMP": pa.timestamp("us"), "VARCHAR": pa.string()}


def arrow_schema(table: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type]) for c in cdm_columns()[table]])


def create_table_sql(table: str) -> str:
    cols = ", ".join(f"{c.name} {c.type}{' NOT NULL' if c.required else ''}" for c in cdm_columns()[table])
    return f"CREATE TABLE {table} ({cols})"


class Vocabulary:
    """Concepts by id and by (vocabulary, code), units by UCUM string, and the
    vocabulary tables (concept, concept_ancestor, concept_relationship, vocabulary)."""

    def __init__(self, concepts: list[Concept]):
        self.concepts = concepts
        self.by_id = {c.concept_id: c for c in concepts}
        self.by_code = {(c.vocabulary_id, c.concept_code): c for c in concepts}
        if len(self.by_id) != len(concepts) or len(self.by_code) != len(concepts):
            raise ValueError("concepts.csv has a duplicate concept_id or (vocabulary_id, concept_code); each must be unique")

    @classmethod
    def load(cls, path: Path | None = None) -> Vocabulary:
        path = path or data_dir() / "concepts.csv"
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        return cls([
            Concept(
                concept_id=int(r["concept_id"]), concept_name=r["concept_name"], domain_id=r["domain_id"],
                vocabulary_id=r["vocabulary_id"], concept_class_id=r["concept_class_id"],
                standard_concept=r["standard_concept"] or None, concept_code=r["concept_code"],
                parents=tuple(int(p) for p in r["parents"].split()), maps_to=int(r["maps_to"]) if r["maps_to"] else None,
                source=r["source"],
            )
            for r in rows
        ])

    def code(self, vocabulary_id: str, code: str) -> Concept | None:
        return self.by_code.get((vocabulary_id, code))

    def standard(self, concept: Concept) -> Concept | None:
        """The standard concept a concept stands for: itself, or its 'Maps to' target."""
        if concept.standard_concept == "S":
            return concept
        return self.by_id.get(concept.maps_to) if concept.maps_to is not None else None

    def unit_concept_id(self, unit: str | None) -> int:
        """OMOP concept id of a UCUM unit string; 0 (no matching concept) when unknown, as an ETL would."""
        if unit is None:
            return 0
        c = self.by_code.get(("UCUM", unit))
        return c.concept_id if c is not None else 0

    def ancestors(self) -> dict[tuple[int, int], tuple[int, int]]:
        """(ancestor, descendant) -> (min, max) levels of separation, for standard concepts,
        each concept its own ancestor at level 0."""
        levels: dict[tuple[int, int], tuple[int, int]] = {}
        standard = [c for c in self.concepts if c.standard_concept in ("S", "C")]

        def walk(start: int, node: int, depth: int) -> None:
            for parent in self.by_id[node].parents:
                lo, hi = levels.get((parent, start), (depth + 1, depth + 1))
                levels[(parent, start)] = (min(lo, depth + 1), max(hi, depth + 1))
                walk(start, parent, depth + 1)

        for c in standard:
            levels[(c.concept_id, c.concept_id)] = (0, 0)
            walk(c.concept_id, c.concept_id, 0)
        return levels

    def tables(self) -> dict[str, pa.Table]:
        """The vocabulary tables as Arrow tables in the CDM v5.4 schema."""
        cs = self.concepts
        concept = pa.table({
            "concept_id": [c.concept_id for c in cs],
            "concept_name": [c.concept_name for c in cs],
            "domain_id": [c.domain_id for c in cs],
            "vocabulary_id": [c.vocabulary_id for c in cs],
            "concept_class_id": [c.concept_class_id for c in cs],
            "standard_concept": [c.standard_concept for c in cs],
            "concept_code": [c.concept_code for c in cs],
            "valid_start_date": [VALID_START] * len(cs),
            "valid_end_date": [VALID_END] * len(cs),
            "invalid_reason": [None] * len(cs),
        }, schema=arrow_schema("concept"))
        anc = sorted(self.ancestors().items())
        concept_ancestor = pa.table({
            "ancestor_concept_id": [a for (a, _), _ in anc],
            "descendant_concept_id": [d for (_, d), _ in anc],
            "min_levels_of_separation": [lo for _, (lo, _) in anc],
            "max_levels_of_separation": [hi for _, (_, hi) in anc],
        }, schema=arrow_schema("concept_ancestor"))
        maps = [(c.concept_id, c.maps_to) for c in cs if c.maps_to is not None]
        pairs = [(a, b, "Maps to") for a, b in maps] + [(b, a, "Mapped from") for a, b in maps]
        concept_relationship = pa.table({
            "concept_id_1": [a for a, _, _ in pairs],
            "concept_id_2": [b for _, b, _ in pairs],
            "relationship_id": [r for _, _, r in pairs],
            "valid_start_date": [VALID_START] * len(pairs),
            "valid_end_date": [VALID_END] * len(pairs),
            "invalid_reason": [None] * len(pairs),
        }, schema=arrow_schema("concept_relationship"))
        vocab_ids = sorted({c.vocabulary_id for c in cs})
        vocabulary = pa.table({
            "vocabulary_id": vocab_ids,
            "vocabulary_name": [_VOCABULARY_NAMES.get(v, v) for v in vocab_ids],
            "vocabulary_reference": [None if v != "LOCAL" else "trialdesk/sources/data/concepts.csv" for v in vocab_ids],
            "vocabulary_version": ["trialdesk subset" for _ in vocab_ids],
            "vocabulary_concept_id": [0 for _ in vocab_ids],
        }, schema=arrow_schema("vocabulary"))
        return {"concept": concept, "concept_ancestor": concept_ancestor,
                "concept_relationship": concept_relationship, "vocabulary": vocabulary}


@cache
def default_vocabulary() -> Vocabulary:
    return Vocabulary.load()

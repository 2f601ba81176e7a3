"""Tiny OMOP CDM v5.4 databases written from Python, for tests and planted cases.

    b = OmopBuilder()
    b.person(1, birth=date(1970, 5, 2), sex="female")
    b.observation_period(1, date(2015, 1, 1), date(2024, 6, 1))
    b.condition(1, date(2024, 4, 2), source_value="J84.10")
    b.drug(1, date(2024, 3, 1), source_value="121191")
    b.measurement(1, date(2024, 5, 28), source_value="59408-5", value=87.0, unit="%")
    b.write("tiny.duckdb")

Records are filled as an ETL fills them: give a source value (ICD-10-CM with its dot,
RxNorm, LOINC, or a site-local code) and the builder looks up the source concept and the
standard concept it maps to in the vocabulary subset; or give ``concept_id`` directly
(both when a test needs them to disagree). A code the vocabulary does not know gets
concept id 0, as an unmapped source code does in a real CDM. ``write`` creates every
CDM table the screen reads, even when empty, plus the vocabulary subset.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa

from trialdesk.sources.vocabulary import Vocabulary, arrow_schema, cdm_columns, create_table_sql, default_vocabulary

Sex = Literal["female", "male"]
EHR = 32817  # Type Concept 'EHR'
CDM_V54 = 756265

_GENDER = {"female": (8532, "F"), "male": (8507, "M"), None: (0, None)}
_RACE = {"white": (8527, "White"), "black": (8516, "Black"), "asian": (8515, "Asian"), None: (0, None)}
_ETHNICITY = {"hispanic": (38003563, "Hispanic"), "not_hispanic": (38003564, "Not Hispanic"), None: (0, None)}
_VISIT = {"outpatient": (9202, "OP"), "inpatient": (9201, "IP"), "emergency": (9203, "ER")}
_SOURCE_VOCABULARIES = {
    "condition": ("ICD10CM", "SNOMED", "LOCAL"),
    "drug": ("RxNorm", "LOCAL"),
    "procedure": ("SNOMED", "LOCAL"),
    "observation": ("ICD10CM", "SNOMED", "LOCAL"),
    "measurement": ("LOINC", "LOCAL"),
}

#: CDM tables written by ``write``; the vocabulary tables come from the vocabulary subset.
CLINICAL_TABLES = ("person", "observation_period", "visit_occurrence", "condition_occurrence", "drug_exposure",
                   "procedure_occurrence", "measurement", "observation", "death", "cdm_source")
VOCABULARY_TABLES = ("concept", "concept_ancestor", "concept_relationship", "vocabulary")
ALL_TABLES = CLINICAL_TABLES + VOCABULARY_TABLES


class OmopBuilder:
    """Collects rows table by table; ``tables()`` gives Arrow tables, ``write`` a DuckDB file."""

    def __init__(self, vocabulary: Vocabulary | None = None, first_ids: dict[str, int] | None = None,
                 source_name: str = "trialdesk test database", release_date: dt.date | None = None):
        self.vocabulary = vocabulary or default_vocabulary()
        self.source_name = source_name
        self.release_date = release_date or dt.date.today()
        self._rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._next_id: dict[str, int] = defaultdict(lambda: 1)
        self._next_id.update(first_ids or {})

    # -- people and time -------------------------------------------------------------
    def person(self, person_id: int, birth: dt.date | tuple[int, int], sex: Sex | None = "female",
               race: Literal["white", "black", "asian"] | None = "white",
               ethnicity: Literal["hispanic", "not_hispanic"] | None = "not_hispanic") -> OmopBuilder:
        """``birth`` is a date, or (year, month) when the source holds no day of birth."""
        if isinstance(birth, tuple):
            year, month, day, birth_dt = birth[0], birth[1], None, None
        else:
            year, month, day, birth_dt = birth.year, birth.month, birth.day, dt.datetime(birth.year, birth.month, birth.day)
        gender_id, gender_src = _GENDER[sex]
        race_id, race_src = _RACE[race]
        eth_id, eth_src = _ETHNICITY[ethnicity]
        self._rows["person"].append({
            "person_id": person_id, "gender_concept_id": gender_id, "year_of_birth": year, "month_of_birth": month,
            "day_of_birth": day, "birth_datetime": birth_dt, "race_concept_id": race_id, "ethnicity_concept_id": eth_id,
            "person_source_value": f"MRN{person_id:08d}", "gender_source_value": gender_src, "gender_source_concept_id": 0,
            "race_source_value": race_src, "race_source_concept_id": 0, "ethnicity_source_value": eth_src,
            "ethnicity_source_concept_id": 0,
        })
        return self

    def observation_period(self, person_id: int, start: dt.date, end: dt.date) -> OmopBuilder:
        if end < start:
            raise ValueError(f"observation period of person {person_id} ends ({end}) before it starts ({start})")
        self._add("observation_period", {
            "person_id": person_id, "observation_period_start_date": start, "observation_period_end_date": end,
            "period_type_concept_id": EHR,
        })
        return self

    def visit(self, person_id: int, start: dt.date, end: dt.date | None = None,
              kind: Literal["outpatient", "inpatient", "emergency"] = "outpatient") -> OmopBuilder:
        cid, src = _VISIT[kind]
        self._add("visit_occurrence", {
            "person_id": person_id, "visit_concept_id": cid, "visit_start_date": start, "visit_end_date": end or start,
            "visit_type_concept_id": EHR, "visit_source_value": src, "visit_source_concept_id": 0,
        })
        return self

    def death(self, person_id: int, date: dt.date) -> OmopBuilder:
        self._rows["death"].append({"person_id": person_id, "death_date": date, "death_type_concept_id": EHR})
        return self

    # -- clinical events -------------------------------------------------------------
    def condition(self, person_id: int, date: dt.date, concept_id: int | None = None, source_value: str | None = None,
                  end_date: dt.date | None = None) -> OmopBuilder:
        std, src = self._resolve("condition", concept_id, source_value)
        self._add("condition_occurrence", {
            "person_id": person_id, "condition_concept_id": std, "condition_start_date": date, "condition_end_date": end_date,
            "condition_type_concept_id": EHR, "condition_status_concept_id": 0, "condition_source_value": source_value,
            "condition_source_concept_id": src,
        })
        return self

    def drug(self, person_id: int, start: dt.date, end: dt.date | None = None, concept_id: int | None = None,
             source_value: str | None = None, days_supply: int | None = None, quantity: float | None = None) -> OmopBuilder:
        std, src = self._resolve("drug", concept_id, source_value)
        end = end or start
        if end < start:
            raise ValueError(f"drug exposure of person {person_id} ends ({end}) before it starts ({start})")
        self._add("drug_exposure", {
            "person_id": person_id, "drug_concept_id": std, "drug_exposure_start_date": start, "drug_exposure_end_date": end,
            "drug_type_concept_id": EHR, "days_supply": days_supply if days_supply is not None else (end - start).days + 1,
            "quantity": quantity, "route_concept_id": 0, "drug_source_value": source_value, "drug_source_concept_id": src,
        })
        return self

    def procedure(self, person_id: int, date: dt.date, concept_id: int | None = None,
                  source_value: str | None = None) -> OmopBuilder:
        std, src = self._resolve("procedure", concept_id, source_value)
        self._add("procedure_occurrence", {
            "person_id": person_id, "procedure_concept_id": std, "procedure_date": date, "procedure_type_concept_id": EHR,
            "modifier_concept_id": 0, "procedure_source_value": source_value, "procedure_source_concept_id": src,
        })
        return self

    def observation(self, person_id: int, date: dt.date, concept_id: int | None = None, source_value: str | None = None,
                    value: float | None = None, value_as_string: str | None = None, unit: str | None = None) -> OmopBuilder:
        std, src = self._resolve("observation", concept_id, source_value)
        self._add("observation", {
            "person_id": person_id, "observation_concept_id": std, "observation_date": date,
            "observation_type_concept_id": EHR, "value_as_number": value, "value_as_string": value_as_string,
            "unit_concept_id": self.vocabulary.unit_concept_id(unit) if unit else None, "unit_source_value": unit,
            "observation_source_value": source_value, "observation_source_concept_id": src,
        })
        return self

    def measurement(self, person_id: int, date: dt.date, concept_id: int | None = None, source_value: str | None = None,
                    value: float | None = None, unit: str | None = None, range_low: float | None = None,
                    range_high: float | None = None, value_as_concept_id: int | None = None) -> OmopBuilder:
        """``unit`` is the unit string as the lab sent it; it goes to ``unit_source_value`` and, through the
        UCUM concepts of the vocabulary, to ``unit_concept_id`` (0 when it is not a known UCUM unit)."""
        std, src = self._resolve("measurement", concept_id, source_value)
        self._add("measurement", {
            "person_id": person_id, "measurement_concept_id": std, "measurement_date": date,
            "measurement_type_concept_id": EHR, "operator_concept_id": None, "value_as_number": value,
            "value_as_concept_id": value_as_concept_id, "unit_concept_id": self.vocabulary.unit_concept_id(unit) if unit else None,
            "range_low": range_low, "range_high": range_high, "measurement_source_value": source_value,
            "measurement_source_concept_id": src, "unit_source_value": unit,
            "value_source_value": None if value is None else f"{value:g}",
        })
        return self

    # -- output ----------------------------------------------------------------------
    def tables(self, include_vocabulary: bool = True, cdm_source: bool = True) -> dict[str, pa.Table]:
        """Every CDM table the screen reads, in the v5.4 schema, empty where nothing was added."""
        out: dict[str, pa.Table] = {}
        for table in CLINICAL_TABLES:
            rows = list(self._rows.get(table, []))
            if table == "cdm_source" and cdm_source and not rows:
                rows = [self._cdm_source_row()]
            out[table] = _to_arrow(table, rows)
        if include_vocabulary:
            out.update(self.vocabulary.tables())
        return out

    def next_ids(self) -> dict[str, int]:
        """The next free record id of each table (to continue numbering elsewhere)."""
        return dict(self._next_id)

    def write(self, target: str | os.PathLike[str] | duckdb.DuckDBPyConnection) -> None:
        """Write to a DuckDB file (created, or replaced when it exists, atomically) or into an open
        connection (tables created there; existing tables of the same names are replaced)."""
        if isinstance(target, duckdb.DuckDBPyConnection):
            write_tables(target, self.tables())
            return
        path = Path(target)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or Path("."))
        os.close(fd)
        tmp = Path(tmp_name)
        tmp.unlink()  # DuckDB must create the file itself
        try:
            con = duckdb.connect(str(tmp))
            try:
                write_tables(con, self.tables())
            finally:
                con.close()
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
            Path(str(tmp) + ".wal").unlink(missing_ok=True)

    # -- helpers ---------------------------------------------------------------------
    def _add(self, table: str, row: dict[str, Any]) -> None:
        id_column = cdm_columns()[table][0].name
        row = {id_column: self._next_id[table], **row}
        self._next_id[table] += 1
        self._rows[table].append(row)

    def _resolve(self, domain: str, concept_id: int | None, source_value: str | None) -> tuple[int, int]:
        """(standard concept id, source concept id) as an ETL would fill them."""
        if concept_id is None and source_value is None:
            raise ValueError(f"a {domain} record needs a concept_id, a source_value, or both")
        source = None
        if source_value is not None:
            for vocabulary_id in _SOURCE_VOCABULARIES[domain]:
                source = self.vocabulary.code(vocabulary_id, source_value)
                if source is not None:
                    break
        if concept_id is None:
            standard = self.vocabulary.standard(source) if source is not None else None
            concept_id = standard.concept_id if standard is not None else 0
        return concept_id, source.concept_id if source is not None else 0

    def _cdm_source_row(self) -> dict[str, Any]:
        today = self.release_date
        return {
            "cdm_source_name": self.source_name, "cdm_source_abbreviation": "trialdesk", "cdm_holder": "trialdesk",
            "source_description": "Synthetic data built by trialdesk; no real patient.", "source_release_date": today,
            "cdm_release_date": today, "cdm_version": "v5.4", "cdm_version_concept_id": CDM_V54,
            "vocabulary_version": "trialdesk subset",
        }


def _to_arrow(table: str, rows: list[dict[str, Any]]) -> pa.Table:
    schema = arrow_schema(table)
    unknown = {k for r in rows for k in r} - set(schema.names)
    if unknown:
        raise ValueError(f"{table}: not CDM v5.4 columns: {', '.join(sorted(unknown))}")
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}, schema=schema)


def write_tables(con: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table]) -> None:
    """Create each table with its CDM v5.4 DDL and insert the Arrow rows."""
    for name, data in tables.items():
        con.execute(f"DROP TABLE IF EXISTS {name}")
        con.execute(create_table_sql(name))
        append(con, name, data)


def append(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table | pa.RecordBatch) -> None:
    """Insert Arrow rows into an existing CDM table, matching columns by name."""
    if data.num_rows == 0:
        return
    view = f"_trialdesk_arrow_{name}"
    con.register(view, data)
    try:
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM {view}")
    finally:
        con.unregister(view)

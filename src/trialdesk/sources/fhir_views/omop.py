"""FHIR R4 → OMOP CDM v5.4-shaped tables through the ViewDefinitions in ``omop/``.

The views (one JSON file per FHIR resource type read, each column with the reading of its
element) extract what the mapping needs; this module runs them over the table of
resources (``fhir_resources``, see :mod:`.reader`) and then, in SQL over the views' rows,
does what a view cannot: resolve a subject or a medicationReference within its Bundle or
export, pick the preferred coding, number the rows, span the observed time, and give the
site-local concept ids. Python only sees what is distinct — each unit spelling once (for
``trialdesk.terminology.units``), each reference-range conversion once, each code once
(its hash-based concept id) — and the problems, never a resource one by one.

The readings are those of ``trialdesk.sources.fhir_omop`` (its docstring is the reference,
with the changes listed there for this path: duplicate ids, impossible birth dates,
interpretations, component links).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from trialdesk.sources.fhir import Problem
from trialdesk.sources.fhir_omop import (
    _ID_COLUMN,
    _MEASUREMENT_CATEGORIES,
    _NOT_MAPPED_STATUS,
    _NOT_PRESCRIBED_INTENTS,
    _OBSERVATION_CATEGORIES,
    _OPERATORS,
    _PREFERENCE,
    _R4_CODES,
    _STANDARD,
    FEMALE,
    LOCAL_CONCEPT_BASE,
    MALE,
    NUMBERED,
    OMOP_SCHEMA,
    SYSTEMS,
    TYPE_ADMINISTRATION,
    TYPE_EHR,
    TYPE_LAB,
    TYPE_PRESCRIPTION,
    TYPE_SELF_REPORT,
    MappedPerson,
    MappingReport,
    _local_id,
)
from trialdesk.sources.fhir_views.chart_domains import silent_domains_sql
from trialdesk.sources.fhir_views.compiler import CompiledView, compile_view

__all__ = ["VIEWS", "BatchContext", "map_resources"]

UCUM = "http://unitsofmeasure.org"
#: a Condition's verificationStatus for a diagnosis still under consideration → OMOP Condition Status 32899
#: "Preliminary diagnosis" (condition_status_concept_id); the screen reads such a record as a question, never a fact
_PRELIMINARY = "CASE WHEN verification_status IN ('differential', 'provisional', 'unconfirmed') THEN 32899 END"

#: the view files, by the name of the staging table each one fills
VIEWS = {
    "person": "person.json",
    "condition": "condition_occurrence.json",
    "procedure": "procedure_occurrence.json",
    "encounter": "encounter.json",
    "medication": "medication.json",
    "med_request": "drug_medication_request.json",
    "med_statement": "drug_medication_statement.json",
    "med_administration": "drug_medication_administration.json",
    "observation": "observation.json",
    "list": "known_empty_list.json",
}


@cache
def compiled_views(engine: str = "duckdb") -> dict[str, CompiledView]:
    """The OMOP views, compiled (for ``engine``) with the check of every value they extract against its FHIR type."""
    folder = resources.files("trialdesk.sources.fhir_views") / "omop"
    return {name: compile_view(json.loads((folder / f).read_text()), validate=True, engine=engine) for name, f in VIEWS.items()}


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


#: a record whose status (or intent) holds a code R4 does not allow there (``_invalid_code``)
INVALID_CODE_PROBLEM = """SELECT 3, ord, 0, 0, element,
    element || ' ' || chr(39) || code || chr(39) || ' is not a code FHIR R4 allows in ' || rtype || '.' || element
    || '; the record is not used (use one of: ' || allowed || ')' FROM _invalid_code"""


def _in(values: Any) -> str:
    return "(" + ", ".join(_q(v) for v in sorted(values)) + ")"


_VOCAB = "CASE s " + " ".join(f"WHEN {_q(k)} THEN {_q(v)}" for k, v in SYSTEMS.items()) + " ELSE 'LOCAL' END"

_MACROS = f"""
CREATE OR REPLACE TEMP MACRO fd_date(v) AS CASE
  WHEN length(v) >= 10 THEN TRY_CAST(substr(v, 1, 10) AS DATE)
  WHEN length(v) = 7 THEN TRY_CAST(v || '-01' AS DATE)
  WHEN length(v) = 4 THEN TRY_CAST(v || '-01-01' AS DATE) END;
CREATE OR REPLACE TEMP MACRO fd_datetime(v) AS CASE WHEN length(v) >= 16 AND substr(v, 11, 1) = 'T'
  THEN TRY_CAST(replace(substr(v, 1, 19), 'T', ' ') AS TIMESTAMP) END;
CREATE OR REPLACE TEMP MACRO fd_vocab(s) AS CASE WHEN coalesce(s, '') = '' THEN 'LOCAL' ELSE ({_VOCAB}) END;
CREATE OR REPLACE TEMP MACRO fd_codings(cs) AS list_transform(
  list_filter(coalesce(cs, []), c -> (coalesce(json_extract_string(c, '$.code'), '') <> '')),
  c -> (struct_pack(vocab := fd_vocab(json_extract_string(c, '$.system')), code := json_extract_string(c, '$.code'),
                    display := json_extract_string(c, '$.display'))));
CREATE OR REPLACE TEMP MACRO fd_qunit(q) AS CASE WHEN q IS NULL THEN NULL ELSE coalesce(
  CASE WHEN coalesce(json_extract_string(q, '$.system'), '{UCUM}') = '{UCUM}' THEN nullif(json_extract_string(q, '$.code'), '') END,
  nullif(json_extract_string(q, '$.unit'), '')) END;
CREATE OR REPLACE TEMP MACRO fd_days(d) AS CASE
  WHEN d IS NULL OR (json_extract(d, '$.value')) IS NULL OR json_type(json_extract(d, '$.value')) = 'NULL' THEN NULL
  ELSE CAST(round_even(TRY_CAST(json_extract_string(d, '$.value') AS DOUBLE)
    * (CASE coalesce(nullif(json_extract_string(d, '$.code'), ''), json_extract_string(d, '$.unit'))
    WHEN 'd' THEN 1 WHEN 'day' THEN 1 WHEN 'days' THEN 1 WHEN 'wk' THEN 7 WHEN 'week' THEN 7 WHEN 'weeks' THEN 7
    WHEN 'mo' THEN 30 WHEN 'month' THEN 30 WHEN 'months' THEN 30 END), 0) AS INTEGER) END;
CREATE OR REPLACE TEMP MACRO fd_refkey(r) AS CASE WHEN r LIKE '%/%/%' OR r LIKE '%/%'
  THEN coalesce(nullif(regexp_extract(r, '([^/]+/[^/]+?)(/_history/.*)?$', 1), ''), r) ELSE r END;
"""


def _pick(domain: str, cs: str = "cs") -> str:
    """SQL: the preferred coding of the struct list ``cs`` for ``domain`` (NULL when none)."""
    options = [f"list_filter({cs}, c -> (c.vocab = {_q(v)}))[1]" for v in _PREFERENCE.get(domain, ())]
    return f"coalesce({', '.join([*options, f'{cs}[1]'])})"


# --------------------------------------------------------------------------- entry point


def _errors_of_views(con: duckdb.DuckDBPyConnection) -> dict[int, list[tuple[str | None, str]]]:
    """The wrong values found by the views already run into ``_v_*`` tables: ord → [(element, problem)]."""
    errors = " UNION ALL ".join(f"SELECT ord, unnest(_errors, recursive := true) FROM _v_{n}" for n in compiled_views())
    bad: dict[int, list[tuple[str | None, str]]] = {}
    for ord_, element, problem in con.execute(f"SELECT ord, element, problem FROM ({errors}) ORDER BY ord").fetchall():
        bad.setdefault(ord_, []).append((element, problem))
    return bad


def view_errors(con: duckdb.DuckDBPyConnection, source: str = "fhir_resources") -> dict[int, list[tuple[str | None, str]]]:
    """Run the views over ``source`` and return the resources whose values fail their FHIR types."""
    for name, view in compiled_views().items():
        con.execute(f'CREATE OR REPLACE TEMP TABLE _v_{name} AS {view.sql(chr(34) + source + chr(34), keep_ord=True)}')
    return _errors_of_views(con)



def map_resources(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str = "fhir_resources",
    problems: list[Problem] | None = None,
    skipped_types: Counter[str] | None = None,
    number_after: Callable[[dict[str, int]], Mapping[str, int]] | None = None,
    batch: BatchContext | None = None,
    view_rows: Mapping[str, str] | None = None,
) -> MappingReport:
    """Write the OMOP-shaped tables for the resources in table ``source`` into ``con`` and
    report what was written and what was not. ``problems`` found while reading come first
    in the report. Rows are numbered as :func:`trialdesk.sources.fhir_omop.map_to_omop`
    numbers them (``number_after`` shifts a part of a batch after the parts before it).

    ``batch``: what a chunk of a larger export needs to know of the whole (see :class:`BatchContext`).
    ``view_rows``: the rows of each OMOP view already run elsewhere (by Spark: :mod:`.spark_omop`), as
    a relation of ``con`` by view name (``ord`` first, the view's columns, then ``_row``, the row's place
    among its resource's rows); the rows of the resources in ``source`` are taken from it instead of the
    view being run here."""
    m = _SqlMapper(con, source, problems or [], skipped_types or Counter(), batch, view_rows)
    before = _temp_tables(con)
    try:
        return m.run(number_after)
    finally:
        # the staging tables hold every view row, list and JSON value of the mapping (about 1 MB a
        # patient): dropped once the OMOP tables are written, so a batch's memory is that of its tables
        made = sorted(_temp_tables(con) - before)
        if made:
            con.execute("; ".join(f'DROP TABLE IF EXISTS temp."{name}"' for name in made))


def _temp_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}


@dataclass
class BatchContext:
    """What a chunk of patients needs to know of the whole export it comes from, so that it maps
    as the whole export would: ``index`` names a table of ``con`` (scope, key, ord) giving, for each
    key (``Type/id`` or fullUrl) of the chunk's resources, the export's first resource with that key
    (the one used; a later one is a duplicate even when the first is in another chunk), and
    ``scope_persons`` how many patients each scope (Bundle or export folder) holds in the whole export
    (a problem of a scope with one patient is that patient's)."""

    index: str
    scope_persons: Mapping[str, int]


class _SqlMapper:
    """The SQL mapping after the views, in few statements (each DuckDB statement costs a few ms of
    planning and, for a temporary table, of writing, whatever the chart's size): per domain, one
    staging table or CTE, then its OMOP-shaped table; every problem found on the way is inserted
    into ``_prob`` by one statement at the end, and the concept ids are looked up as the OMOP tables
    are written (no UPDATE)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, source: str, problems: list[Problem], skipped: Counter[str],
                 batch: BatchContext | None = None, view_rows: Mapping[str, str] | None = None) -> None:
        self.con = con
        self.source = source
        self.batch = batch
        self.view_rows = view_rows
        self.report = MappingReport(problems=list(problems), skipped_types=Counter(skipped))
        for i, p in enumerate(problems):
            self.report.problem_keys[id(p)] = (0, i)
        #: SELECTs of (phase, ord, part, step, field, message): the problems, inserted into ``_prob`` at once
        self._problems: list[str] = []
        #: SELECTs of (ord, part, step, seq, vocab, code, display, domain): the codings read, for the concepts
        self._codings: list[str] = []
        #: (table, OMOP table, domain) of the tables whose codings are read
        self._registered: list[tuple[str, str, str]] = []

    def x(self, sql: str, params: Any = None) -> duckdb.DuckDBPyConnection:
        return self.con.execute(sql, params) if params is not None else self.con.execute(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def drop(self, *tables: str) -> None:
        """Drop staging tables no later step reads (an Observation's chain holds a copy of every
        value, coding and range at each step: kept, they made a batch's memory grow ~1 MB a patient)."""
        if tables:
            self.x("; ".join(f"DROP TABLE IF EXISTS temp.{t}" for t in tables))

    def problem(self, sql: str) -> None:
        """Note a SELECT of problems (phase, ord, part, step, field, message) for ``_prob``."""
        self._problems.append(sql)

    # ----- orchestration

    def run(self, number_after: Callable[[dict[str, int]], Mapping[str, int]] | None) -> MappingReport:
        con = self.con
        con.execute(_MACROS)
        src = f'"{self.source}"'
        self.x(f"""CREATE OR REPLACE TEMP TABLE _res AS SELECT ord, rtype,
                   CASE WHEN json_type(resource -> 'id') = 'VARCHAR' THEN resource ->> 'id' END AS id,
                   file, line, scope, full_url,
                   coalesce(resource -> 'subject' ->> 'reference', resource -> 'patient' ->> 'reference') AS subj,
                   FALSE AS bad_birth FROM {src}""")
        views = compiled_views()
        for name, view in views.items():
            self._view(name, view.sql(src, keep_ord=True))
        # the values the views extract, checked against their FHIR types in the same pass: a resource with a
        # wrong one is left out and named, as the validation of the elements read always did
        bad = _errors_of_views(con)
        if bad:
            from trialdesk.sources.fhir import FhirReading
            from trialdesk.sources.fhir_views.load import drop_invalid

            found = FhirReading()
            kept = drop_invalid(con, self.source, found, bad, keys=self.report.problem_keys)
            known = {str(p) for p in self.report.problems}  # read_fhir named them already
            self.report.problems.extend(p for p in found.problems if str(p) not in known)
            gone = ", ".join(map(str, sorted(set(bad) - kept)))
            if gone:
                self.x(f"DELETE FROM _res WHERE ord IN ({gone})")
                for n in views:
                    self.x(f"DELETE FROM _v_{n} WHERE ord IN ({gone})")
            if kept:  # a Patient whose birthDate is wrong: kept, its age unknown (the problem names the element)
                ords = ", ".join(map(str, sorted(kept)))
                self.x(f"UPDATE _v_person SET birth_date = NULL WHERE ord IN ({ords})")
                self.x(f"UPDATE _res SET bad_birth = TRUE WHERE ord IN ({ords})")
        if self._index():
            for n in views:
                self.x(f"DELETE FROM _v_{n} WHERE ord IN (SELECT ord FROM _dup)")
        self._persons()
        self._left_out()
        # per person, the tables the chart holds no record of, nor a List saying there are none (chart_domains)
        self.x(silent_domains_sql())
        self._who()
        self._conditions()
        self._procedures()
        self._drugs()
        self._observations()
        self._concepts()
        self._periods()
        self.x("CREATE OR REPLACE TEMP TABLE _prob AS SELECT CAST(phase AS INT) AS phase, CAST(ord AS BIGINT) AS ord, "
               "CAST(part AS INT) AS part, CAST(step AS INT) AS step, CAST(field AS VARCHAR) AS field, "
               f"CAST(message AS VARCHAR) AS message FROM ({' UNION ALL '.join(f'({p})' for p in self._problems)}) "
               "t(phase, ord, part, step, field, message)")
        self.drop("_o3")
        counted = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM _t_{t}" for t in NUMBERED)
        counts = {t: n for t, n in self.rows(counted)}
        before = number_after(counts) if number_after is not None else {}
        self._write(before)
        self._report(before)
        return self.report

    def _view(self, name: str, sql: str) -> None:
        """The staging table ``_v_<name>`` of the view's rows: the view run here (``sql``), or its rows run
        elsewhere (``view_rows``) for this mapping's resources, in the view's order, in the columns and
        types the view has here (a JSON text is DuckDB's JSON again)."""
        if self.view_rows is None:
            self.x(f"CREATE OR REPLACE TEMP TABLE _v_{name} AS {sql}")
            return
        self.x(f"CREATE OR REPLACE TEMP TABLE _v_{name} AS SELECT * FROM ({sql}) LIMIT 0")
        self.x(f"""INSERT INTO _v_{name} SELECT * EXCLUDE (_row) FROM {self.view_rows[name]}
                   WHERE ord IN (SELECT ord FROM "{self.source}") ORDER BY ord, _row""")

    # ----- resources, duplicates, persons

    def _index(self) -> bool:
        """Every resource by (scope, Type/id) and (scope, fullUrl): the first one of a key is
        the one used; a later one with the same key is left out and named. True when there is one."""
        keys = """SELECT scope, rtype || '/' || id AS key, ord FROM _res WHERE id IS NOT NULL
                  UNION ALL SELECT scope, full_url, ord FROM _res WHERE full_url IS NOT NULL"""
        if self.batch is None:
            self.x(f"""CREATE OR REPLACE TEMP TABLE _index AS SELECT scope, key, min(ord) AS ord FROM ({keys}) GROUP BY ALL""")
        else:  # the first resource of each key in the whole export, wherever it is
            self.x(f'CREATE OR REPLACE TEMP TABLE _index AS SELECT scope, key, ord FROM "{self.batch.index}"')
        self.x(f"""CREATE OR REPLACE TEMP TABLE _dup AS SELECT k.ord, k.key FROM ({keys}) k JOIN _index i USING (scope, key)
                   WHERE k.ord <> i.ord""")
        # one problem a resource, whether its Type/id, its fullUrl or both are taken (Type/id named first)
        self.problem("""SELECT 1, ord, 0, 1, NULL, 'duplicate resource '
                  || string_agg(key, ', also as ' ORDER BY contains(key, '://'), key)
                  || '; the first one is used, this one is left out' FROM _dup GROUP BY ord""")
        return bool(self.rows("SELECT count(*) FROM _dup")[0][0])

    def _persons(self) -> None:
        self.x("""CREATE OR REPLACE TEMP TABLE _t_person AS
            SELECT row_number() OVER (ORDER BY v.ord)::INTEGER AS person_id, v.ord, r.scope, r.file,
                   coalesce(r.id, r.full_url) AS rid, r.id AS patient_id, v.birth_date, v.gender,
                   v.deceased_boolean, v.deceased_datetime,
                   TRY_CAST(v.birth_date AS DATE) AS birth_day,
                   CASE WHEN regexp_full_match(coalesce(v.birth_date, ''), '\\d{4}(-\\d{2}(-\\d{2})?)?')
                        AND (length(v.birth_date) = 4 OR TRY_CAST(rpad(v.birth_date, 10, '-01') AS DATE) IS NOT NULL
                             OR (length(v.birth_date) = 7 AND TRY_CAST(v.birth_date || '-01' AS DATE) IS NOT NULL))
                        THEN v.birth_date END AS birth_ok
            FROM _v_person v JOIN _res r USING (ord)""")
        self.problem("""SELECT 2, ord, 0, 0, 'birthDate',
                  CASE WHEN birth_date IS NULL THEN 'no birth date: age cannot be computed'
                  ELSE 'birthDate ' || birth_date || ' is not a date: age cannot be computed; the patient is kept' END
                  FROM _t_person WHERE birth_ok IS NULL AND NOT EXISTS (
                      SELECT 1 FROM _res r WHERE r.ord = _t_person.ord AND r.bad_birth)""")
        self.x("""CREATE OR REPLACE TEMP TABLE _person_key AS
                  SELECT scope, 'Patient/' || patient_id AS key, min(person_id) AS person_id FROM _t_person
                  WHERE patient_id IS NOT NULL GROUP BY ALL
                  UNION ALL SELECT r.scope, r.full_url, min(p.person_id) FROM _t_person p JOIN _res r USING (ord)
                  WHERE r.full_url IS NOT NULL GROUP BY ALL""")

    def _left_out(self) -> None:
        """Records left out on purpose: counted, and removed from their view's rows."""
        rules = [("condition", "Condition", "verificationStatus", "verification_status"),
                 ("procedure", "Procedure", "status", "status"), ("encounter", "Encounter", "status", "status"),
                 ("med_request", "MedicationRequest", "status", "status"),
                 ("med_statement", "MedicationStatement", "status", "status"),
                 ("med_administration", "MedicationAdministration", "status", "status"),
                 ("observation", "Observation", "status", "status")]  # fmt: skip
        status = " UNION ALL ".join(
            f"(SELECT DISTINCT ord, '{rtype} {element} ' || {column} AS what FROM _v_{view} "
            f"WHERE {column} IN {_in(_NOT_MAPPED_STATUS[rtype][1])})" for view, rtype, element, column in rules)
        # a code R4 does not allow there: the record is not used, and named (its meaning is not known)
        checked = [(view, rtype, element, column) for view, rtype, element, column in rules if (rtype, element) in _R4_CODES]
        checked.append(("med_request", "MedicationRequest", "intent", "intent"))
        invalid = " UNION ALL ".join(
            f"(SELECT DISTINCT ord, '{rtype}' AS rtype, '{element}' AS element, {column} AS code, "
            f"{_q(', '.join(sorted(_R4_CODES[(rtype, element)])))} AS allowed FROM _v_{view} "
            f"WHERE {column} IS NOT NULL AND {column} NOT IN {_in(_R4_CODES[(rtype, element)])})"
            for view, rtype, element, column in checked)
        self.x(f"CREATE OR REPLACE TEMP TABLE _invalid_code AS {invalid}")
        self.problem(INVALID_CODE_PROBLEM)
        self.x(f"""CREATE OR REPLACE TEMP TABLE _excluded AS WITH s AS ({status})
                   SELECT CAST(ord AS BIGINT) AS ord, CAST(what AS VARCHAR) AS what FROM (
                   SELECT ord, what FROM s
                   UNION ALL SELECT ord, 'MedicationRequest intent ' || intent FROM _v_med_request
                   WHERE intent IN {_in(_NOT_PRESCRIBED_INTENTS)} AND ord NOT IN (SELECT ord FROM s)
                   UNION ALL SELECT DISTINCT ord, rtype || ' ' || element || ' ' || code || ' (not an R4 code)'
                   FROM _invalid_code WHERE ord NOT IN (SELECT ord FROM s))""")

    _SUBJECT_VIEWS = ("condition", "procedure", "med_request", "med_statement", "med_administration", "observation", "encounter")

    def _who(self) -> None:
        """The person of every record not left out, its subject resolved within its Bundle or export
        (NULL when it does not resolve: named in ``_prob``, and the record is not used)."""
        subjects = " UNION ALL ".join(f"(SELECT DISTINCT ord, subject FROM _v_{v})" for v in self._SUBJECT_VIEWS)
        self.x(f"""CREATE OR REPLACE TEMP TABLE _who AS
            SELECT s.ord, s.subject, coalesce(k1.person_id, k2.person_id) AS person_id
            FROM ({subjects}) s JOIN _res r USING (ord)
            LEFT JOIN _person_key k1 ON k1.scope = r.scope AND k1.key = s.subject
            LEFT JOIN _person_key k2 ON k2.scope = r.scope AND k2.key = fd_refkey(s.subject)
            WHERE s.ord NOT IN (SELECT ord FROM _excluded)""")
        self.problem("""SELECT DISTINCT 3, ord, 0, 0, 'subject',
            CASE WHEN subject IS NULL THEN 'no reference to the Patient; the record is not used'
            ELSE 'refers to ' || subject || ', ' || CASE WHEN fd_refkey(subject) LIKE 'Patient/%' OR subject LIKE 'urn:%'
                 THEN 'a Patient' ELSE 'a resource' END || ' not in this record; the record is not used' END
            FROM _who WHERE person_id IS NULL""")

    def _subject(self, view: str) -> str:
        """SQL (a subquery): the view's rows that are not left out and whose subject resolves, with
        their resource's file, line and person_id."""
        return f"""(SELECT v.*, r.rtype, r.file, r.line, r.scope, coalesce(r.id, r.full_url) AS rid, w.person_id
            FROM _v_{view} v JOIN _res r USING (ord)
            JOIN _who w ON w.ord = v.ord AND w.subject IS NOT DISTINCT FROM v.subject
            WHERE w.person_id IS NOT NULL)"""

    # ----- coded records

    def _coded_columns(self, domain: str, codings: str = "codings") -> str:
        """SQL select items: cs (the codings as structs), picked (the preferred one) and source
        (for a condition, its ICD-10-CM coding when there is one; else the picked one)."""
        cs = f"fd_codings({codings})"
        picked = _pick(domain, cs)
        source = f"coalesce(list_filter({cs}, c -> (c.vocab = 'ICD10CM'))[1], {picked})" if domain == "Condition" else picked
        return f"{cs} AS cs, {picked} AS picked, {source} AS source"

    def _no_coding_problem(self, table: str, field_sql: str, step: int = 3, where: str = "TRUE") -> None:
        self.problem(f"""SELECT 4, ord, part, {step}, {field_sql},
                   'has no coding in any code system; the record cannot match a value set'
                   FROM {table} WHERE picked IS NULL AND {where}""")

    def _conditions(self) -> None:
        c = f"""(SELECT *, fd_date(start_raw) IS NOT NULL AS dated FROM (SELECT *, 0 AS part,
              coalesce(nullif(onset_datetime, ''), nullif(onset_period_start, ''), nullif(recorded_date, '')) AS start_raw,
              coalesce(nullif(abatement_datetime, ''), nullif(abatement_period_end, ''), nullif(abatement_period_start, '')) AS end_raw,
              {self._coded_columns("Condition")} FROM {self._subject("condition")}))"""  # fmt: skip
        # an undated condition is kept (the engine reads it as possibly in any window): an undated HIV infection is
        # still a history of HIV, never evidence of its absence
        self.problem(f"""SELECT 4, ord, 0, 1, 'onset[x]', 'no onset date or recordedDate (an onsetAge or onsetString is not a date): '
                  || 'the condition is kept with no date, so a criterion it would decide is unknown (it may lie in any window)'
                  FROM {c} WHERE NOT dated""")
        self._no_coding_problem(c, "'code'")
        self.x(f"""CREATE OR REPLACE TEMP TABLE _t_condition_occurrence AS SELECT
            row_number() OVER (ORDER BY person_id, ord)::INTEGER AS condition_occurrence_id, person_id,
            NULL::INTEGER AS condition_concept_id, fd_date(start_raw) AS condition_start_date,
            fd_datetime(start_raw) AS condition_start_datetime, fd_date(end_raw) AS condition_end_date,
            fd_datetime(end_raw) AS condition_end_datetime, {TYPE_EHR} AS condition_type_concept_id,
            {_PRELIMINARY} AS condition_status_concept_id, NULL AS stop_reason, NULL AS provider_id, NULL AS visit_occurrence_id,
            NULL AS visit_detail_id, coalesce(source.code, left(code_text, 50)) AS condition_source_value,
            NULL::INTEGER AS condition_source_concept_id, clinical_status AS condition_status_source_value,
            ord, 0 AS part, rtype, rid, file, line, picked, source, cs, code_text AS fallback_display,
            [fd_date(start_raw), fd_date(end_raw)] AS observed
            FROM {c}""")
        self._register("_t_condition_occurrence", "condition_occurrence", "Condition")

    def _procedures(self) -> None:
        p = f"""(SELECT *, fd_date(start_raw) IS NOT NULL AS dated FROM (SELECT *, 0 AS part,
              coalesce(nullif(performed_datetime, ''), nullif(performed_period_start, '')) AS start_raw,
              performed_period_end AS end_raw, {self._coded_columns("Procedure")} FROM {self._subject("procedure")}))"""
        self.problem(f"""SELECT 4, ord, 0, 1, 'performed[x]', 'no date the procedure was performed: '
                  || 'the record is kept with no date, so a criterion it would decide is unknown (it may lie in any window)'
                  FROM {p} WHERE NOT dated""")
        self._no_coding_problem(p, "'code'")
        self.x(f"""CREATE OR REPLACE TEMP TABLE _t_procedure_occurrence AS SELECT
            row_number() OVER (ORDER BY person_id, ord)::INTEGER AS procedure_occurrence_id, person_id,
            NULL::INTEGER AS procedure_concept_id, fd_date(start_raw) AS procedure_date, fd_datetime(start_raw) AS procedure_datetime,
            fd_date(end_raw) AS procedure_end_date, fd_datetime(end_raw) AS procedure_end_datetime,
            {TYPE_EHR} AS procedure_type_concept_id, NULL AS modifier_concept_id, NULL AS quantity, NULL AS provider_id,
            NULL AS visit_occurrence_id, NULL AS visit_detail_id, coalesce(source.code, left(code_text, 50)) AS procedure_source_value,
            NULL::INTEGER AS procedure_source_concept_id, NULL AS modifier_source_value,
            ord, 0 AS part, rtype, rid, file, line, picked, source, cs, code_text AS fallback_display,
            [fd_date(start_raw), fd_date(end_raw)] AS observed
            FROM {p}""")  # fmt: skip
        self._register("_t_procedure_occurrence", "procedure_occurrence", "Procedure")

    def _drugs(self) -> None:
        req = self._subject("med_request")
        st = self._subject("med_statement")
        adm = self._subject("med_administration")
        # MedicationRequest: start from the earliest bounds start (by day), else authoredOn; end from the latest bounds end
        d = f"""WITH r AS (SELECT *,
                list_transform(bounds_starts, x -> (x ->> '$')) AS st, list_transform(bounds_ends, x -> (x ->> '$')) AS en,
                (SELECT max(fd_days(u)) FROM unnest(bounds_durations) t(u)) AS max_dur,
                fd_days(supply_duration) AS supply FROM {req})
            SELECT ord, rtype, rid, file, line, person_id, {TYPE_PRESCRIPTION} AS type_concept,
                CASE WHEN len(st) > 0 THEN list_filter(st, x -> (substr(x, 1, 10) = list_min(list_transform(st, y -> substr(y, 1, 10)))))[1]
                     ELSE authored_on END AS start_raw,
                CASE WHEN len(en) > 0 THEN list_filter(en, x -> (substr(x, 1, 10) = list_max(list_transform(en, y -> substr(y, 1, 10)))))[1]
                     END AS end_raw,
                max_dur, supply, repeats, NULL::DATE AS fallback_asserted,
                repeats AS refills, quantity, supply AS days_supply, sig, route AS route_source_value,
                fd_qunit(dose) AS dose_unit_source_value, CASE WHEN status = 'stopped' THEN status_reason END AS stop_reason,
                med_has_concept, med_codings, med_text, med_reference, contained
            FROM r
            UNION ALL BY NAME
            SELECT ord, rtype, rid, file, line, person_id, {TYPE_SELF_REPORT} AS type_concept,
                coalesce(nullif(effective_datetime, ''), nullif(effective_period_start, ''), nullif(date_asserted, '')) AS start_raw,
                coalesce(nullif(effective_datetime, ''), nullif(effective_period_end, '')) AS end_raw,
                NULL AS max_dur, NULL AS supply, NULL AS repeats,
                CASE WHEN status = 'active' THEN fd_date(date_asserted) END AS fallback_asserted,
                NULL AS refills, NULL AS quantity, NULL AS days_supply, sig, NULL AS route_source_value,
                NULL AS dose_unit_source_value, NULL AS stop_reason,
                med_has_concept, med_codings, med_text, med_reference, contained
            FROM {st}
            UNION ALL BY NAME
            SELECT ord, rtype, rid, file, line, person_id, {TYPE_ADMINISTRATION} AS type_concept,
                coalesce(nullif(effective_datetime, ''), nullif(effective_period_start, '')) AS start_raw,
                coalesce(nullif(effective_datetime, ''), nullif(effective_period_end, '')) AS end_raw,
                NULL AS max_dur, NULL AS supply, NULL AS repeats, NULL AS fallback_asserted,
                NULL AS refills, TRY_CAST(dose ->> 'value' AS DOUBLE) AS quantity, NULL AS days_supply, sig,
                route AS route_source_value, fd_qunit(dose) AS dose_unit_source_value, NULL AS stop_reason,
                med_has_concept, med_codings, med_text, med_reference, contained
            FROM {adm}"""  # fmt: skip
        # the medication: a CodeableConcept, a contained Medication (#id), or a Medication in the Bundle or export;
        # an exposure with no date is kept with none (named; the engine reads it as possibly in any window)
        d2 = """SELECT d.*,
              CASE WHEN d.med_has_concept THEN 'concept'
                   WHEN d.med_reference IS NULL THEN 'none'
                   WHEN starts_with(d.med_reference, '#') THEN
                       CASE WHEN len(list_filter(d.contained, c -> ((c ->> 'id') = substr(d.med_reference, 2)))) > 0
                       THEN 'contained' ELSE 'missing' END
                   WHEN coalesce(i1.ord, i2.ord) IS NULL THEN 'missing' ELSE 'resolved' END AS how,
              list_filter(d.contained, c -> ((c ->> 'id') = substr(d.med_reference, 2)))[1] AS contained_med,
              r.rtype AS target_type, m.codings AS target_codings, m.code_text AS target_text
            FROM d JOIN _res me ON me.ord = d.ord
            LEFT JOIN _index i1 ON i1.scope = me.scope AND i1.key = d.med_reference
            LEFT JOIN _index i2 ON i2.scope = me.scope AND i2.key = fd_refkey(d.med_reference)
            LEFT JOIN _res r ON r.ord = coalesce(i1.ord, i2.ord)
            LEFT JOIN _v_medication m ON m.ord = r.ord"""
        self.x(f"""CREATE OR REPLACE TEMP TABLE _d3 AS WITH d AS ({d}), d2 AS ({d2})
              SELECT *, 0 AS part, {self._coded_columns("Drug", "codings")} FROM (
              SELECT *, CASE how WHEN 'concept' THEN med_codings
                                 WHEN 'contained' THEN CAST(contained_med -> 'code' -> 'coding' AS JSON[])
                                 WHEN 'resolved' THEN CASE WHEN target_type = 'Medication' THEN target_codings END END AS codings,
                        CASE how WHEN 'concept' THEN med_text WHEN 'contained' THEN contained_med -> 'code' ->> 'text'
                                 WHEN 'resolved' THEN CASE WHEN target_type = 'Medication' THEN target_text END END AS code_text,
                        fd_date(start_raw) AS start_day
              FROM d2)""")
        self.problem("""SELECT 4, ord, 0, 1, NULL, 'no date for the exposure: the record is kept with no date, so '
                  || 'a criterion it would decide is unknown (it may lie in any window)'
                  FROM _d3 WHERE start_day IS NULL AND how NOT IN ('none', 'missing')""")
        self.problem("""SELECT 4, ord, 0, 2, CASE WHEN how = 'none' THEN 'medication[x]' ELSE 'medicationReference' END,
                  CASE WHEN how = 'none' THEN 'no medication; the record is not used'
                  ELSE 'refers to ' || med_reference || ', a Medication not in this record; the record is not used' END
                  FROM _d3 WHERE how IN ('none', 'missing')""")
        self._no_coding_problem("_d3", "'medication[x]'", where="how NOT IN ('none', 'missing')")
        self.x("""CREATE OR REPLACE TEMP TABLE _t_drug_exposure AS
            SELECT *, [drug_exposure_start_date, drug_exposure_end_date] AS observed FROM (SELECT
            row_number() OVER (ORDER BY person_id, ord)::INTEGER AS drug_exposure_id, person_id, NULL::INTEGER AS drug_concept_id,
            start_day AS drug_exposure_start_date, fd_datetime(start_raw) AS drug_exposure_start_datetime,
            greatest(coalesce(fd_date(end_raw),
                CASE WHEN end_raw IS NULL AND max_dur IS NOT NULL THEN start_day + CAST(max_dur - 1 AS INTEGER)
                     WHEN end_raw IS NULL AND coalesce(supply, 0) <> 0 THEN start_day
                          + CAST(supply * (1 + coalesce(repeats, 0)) - 1 AS INTEGER) END,
                fallback_asserted, start_day), start_day) AS drug_exposure_end_date,
            fd_datetime(end_raw) AS drug_exposure_end_datetime, fd_date(end_raw) AS verbatim_end_date,
            type_concept AS drug_type_concept_id, stop_reason, refills, quantity, days_supply, sig,
            NULL AS route_concept_id, NULL AS lot_number, NULL AS provider_id, NULL AS visit_occurrence_id,
            NULL AS visit_detail_id, coalesce(source.code, left(code_text, 50)) AS drug_source_value,
            NULL::INTEGER AS drug_source_concept_id, route_source_value, dose_unit_source_value,
            ord, 0 AS part, rtype, rid, file, line, picked, source, cs, code_text AS fallback_display
            FROM _d3 WHERE how NOT IN ('none', 'missing'))""")  # fmt: skip
        self._register("_t_drug_exposure", "drug_exposure", "Drug")

    def _observations(self) -> None:
        s = self._subject("observation")
        when = """coalesce(nullif(effective_datetime, ''), nullif(effective_instant, ''), nullif(effective_period_start, ''),
                       nullif(issued, ''))"""
        self.x(f"""CREATE OR REPLACE TEMP TABLE _enc_span AS SELECT ord, person_id,
                   [fd_date(period_start), fd_date(period_end)] AS observed FROM {self._subject("encounter")}""")
        # each Observation's date (its components share it); one with none is named and kept with no date, as an
        # undated Condition is: it may be the latest result, or lie in any window, so what it would decide is unknown
        self.x(f"""CREATE OR REPLACE TEMP TABLE _obs_span AS SELECT ord, person_id, [fd_date({when})] AS observed
                   FROM {s} WHERE part = 0""")
        self.problem("""SELECT 4, ord, 0, 1, 'effective[x]', 'no date for the observation: it is kept with no date, so a '
                  || 'criterion it would decide is unknown (it may be the latest result, or lie in any window)'
                  FROM _obs_span WHERE observed[1] IS NULL""")
        # a part makes a row when it has a value, or (issue 17) no value but an interpretation
        self.x(f"""CREATE OR REPLACE TEMP TABLE _o2 AS WITH o AS (SELECT *, {when} AS when_raw,
              has_quantity OR len(list_intersect(categories, {list(sorted(_MEASUREMENT_CATEGORIES))})) > 0
                  /* no category R4 knows (none, or only a local one): a LOINC code anywhere in the Observation is a test */
                  OR (len(list_intersect(categories, {list(sorted(_OBSERVATION_CATEGORIES))})) = 0
                      AND bool_or(list_contains(list_transform(fd_codings(codings), c -> c.vocab), 'LOINC'))
                          OVER (PARTITION BY ord)) AS is_measurement,
              CASE WHEN part = 0 THEN '' ELSE 'component[' || (part - 1) || '].' END AS prefix
              FROM {s})
              SELECT *, {self._coded_columns("Measurement")},
              fd_codings(value_codings) AS vcs, {_pick("Value", "fd_codings(value_codings)")} AS vpicked,
              fd_codings(interpretation_codings)[1] AS ipicked, fd_qunit(quantity) AS raw_unit,
              list_filter(list_transform(ranges, (r, i) -> struct_pack(i := i - 1, r := r)),
                  x -> (len(list_filter(coalesce(CAST(x.r -> 'type' -> 'coding' AS JSON[]), []),
                                         c -> (coalesce(c ->> 'code', '') <> ''))) = 0
                       OR list_contains(list_transform(coalesce(CAST(x.r -> 'type' -> 'coding' AS JSON[]), []),
                                                      c -> (c ->> 'code')), 'normal')))[1]
                  AS rr
              FROM o WHERE has_value OR (NOT has_value AND len(interpretation_codings) > 0)""")  # fmt: skip
        self.drop("_v_observation")
        # the picked coding of an observation row follows the Observation domain's order (the same: LOINC, SNOMED)
        self._units()
        self._ranges()
        self._no_coding_problem("_o3", "prefix || 'code'")
        self.problem("""SELECT 4, ord, part, 4, prefix || 'valueQuantity.unit',
                  'unit ' || u.raw_repr || ' is not a known UCUM unit or spelling'
                  FROM _o3 JOIN _units u ON u.raw = _o3.raw_unit WHERE u.ucum IS NULL""")
        value_cols = """
            CASE WHEN len(vcs) > 0 OR value_text IS NOT NULL OR len(value_codings) > 0 THEN
                     CASE WHEN vpicked IS NULL THEN left(value_text, 50) ELSE vpicked.code END
                 WHEN value_boolean IS NOT NULL THEN CAST(value_boolean AS VARCHAR)
                 WHEN value_string IS NOT NULL THEN left(value_string, 50)
                 WHEN NOT has_value AND ipicked IS NOT NULL THEN ipicked.code END AS value_source_value"""

        def event(table: str) -> str:
            # a component row points at its Observation's own row (issue 17: shared time, linked event)
            return (f"CAST(CASE WHEN part > 0 THEN max(CASE WHEN part = 0 THEN {table}_id END) OVER (PARTITION BY ord) END AS BIGINT)"
                    f" AS {table}_event_id")

        self.x(f"""CREATE OR REPLACE TEMP TABLE _t_measurement AS SELECT * REPLACE ({event("measurement")}) FROM (SELECT
            row_number() OVER (ORDER BY person_id, ord, part)::INTEGER AS measurement_id, person_id,
            NULL::INTEGER AS measurement_concept_id,
            fd_date(when_raw) AS measurement_date, fd_datetime(when_raw) AS measurement_datetime,
            CASE WHEN length(when_raw) >= 19 THEN substr(when_raw, 12, 8) END AS measurement_time,
            CASE WHEN list_contains(categories, 'laboratory') THEN {TYPE_LAB} ELSE {TYPE_EHR} END AS measurement_type_concept_id,
            CASE quantity ->> 'comparator' {" ".join(f"WHEN {_q(k)} THEN {v}" for k, v in _OPERATORS.items())} END AS operator_concept_id,
            quantity_value AS value_as_number, NULL::INTEGER AS value_as_concept_id, NULL::INTEGER AS unit_concept_id,
            range_low, range_high, NULL AS provider_id, NULL AS visit_occurrence_id, NULL AS visit_detail_id,
            coalesce(source.code, left(code_text, 50)) AS measurement_source_value, NULL::INTEGER AS measurement_source_concept_id,
            unit AS unit_source_value, NULL AS unit_source_concept_id, {value_cols},
            NULL::BIGINT AS measurement_event_id, NULL AS meas_event_field_concept_id,
            ord, part, rtype, rid, file, line, picked, source, cs, code_text AS fallback_display, vpicked, vcs, ipicked, has_value,
            NULL::DATE[] AS observed
            FROM _o3 WHERE is_measurement AND NOT unit_unknown)""")  # fmt: skip
        self.x(f"""CREATE OR REPLACE TEMP TABLE _t_observation AS SELECT * REPLACE ({event("observation")}) FROM (SELECT
            row_number() OVER (ORDER BY person_id, ord, part)::INTEGER AS observation_id, person_id,
            NULL::INTEGER AS observation_concept_id,
            fd_date(when_raw) AS observation_date, fd_datetime(when_raw) AS observation_datetime,
            {TYPE_EHR} AS observation_type_concept_id, quantity_value AS value_as_number,
            left(CASE WHEN value_boolean IS NOT NULL THEN CAST(value_boolean AS VARCHAR) ELSE value_string END, 60) AS value_as_string,
            NULL::INTEGER AS value_as_concept_id, NULL AS qualifier_concept_id, NULL::INTEGER AS unit_concept_id,
            NULL AS provider_id, NULL AS visit_occurrence_id, NULL AS visit_detail_id,
            coalesce(source.code, left(code_text, 50)) AS observation_source_value, NULL::INTEGER AS observation_source_concept_id,
            unit AS unit_source_value, NULL AS qualifier_source_value, {value_cols},
            NULL::BIGINT AS observation_event_id, NULL AS obs_event_field_concept_id,
            ord, part, rtype, rid, file, line, picked, source, cs, code_text AS fallback_display, vpicked, vcs, ipicked, has_value,
            NULL::DATE[] AS observed
            FROM _o3 WHERE NOT is_measurement)""")  # fmt: skip
        self._register("_t_measurement", "measurement", "Measurement")
        # a measurement dropped for its unknown unit had its code read first: the code is still a concept
        self._codings.append("""SELECT ord, part, 0, s.i, s.c.vocab, s.c.code, s.c.display, 'Measurement' FROM
                  (SELECT ord, part, unnest(list_transform(cs, (c, i) -> struct_pack(c := c, i := i))) AS s FROM _o3
                   WHERE is_measurement AND unit_unknown)""")
        self._register("_t_observation", "observation", "Observation")

    def _units(self) -> None:
        """Each unit spelling once through trialdesk.terminology.units."""
        from trialdesk.terminology import units

        raws = sorted(r[0] for r in self.rows("""SELECT DISTINCT u FROM (SELECT raw_unit AS u FROM _o2
              UNION ALL SELECT fd_qunit(rr.r -> e) FROM _o2, (VALUES ('low'), ('high')) t(e) WHERE rr IS NOT NULL)
              WHERE u IS NOT NULL"""))
        self.x("""CREATE OR REPLACE TEMP TABLE _units AS SELECT unnest($1::VARCHAR[]) AS raw, unnest($2::VARCHAR[]) AS ucum,
                  unnest($3::VARCHAR[]) AS raw_repr""", [raws, [units.normalise(r) for r in raws], [repr(r) for r in raws]])

    def _ranges(self) -> None:
        """The chosen reference range in the value's unit (low first, then high; the first
        that fails drops both and is named)."""
        from trialdesk.terminology import units

        o3b = """(SELECT o.*,
              CASE WHEN low_raw IS NOT NULL THEN ul.ucum ELSE unit END AS low_src, low_raw IS NOT NULL AND ul.ucum IS NULL AS low_unknown,
              CASE WHEN high_raw IS NOT NULL THEN uh.ucum ELSE unit END AS high_src,
              high_raw IS NOT NULL AND uh.ucum IS NULL AS high_unknown
              FROM (SELECT o.*, u.ucum AS unit,
                  (o.raw_unit IS NOT NULL AND u.ucum IS NULL) AS unit_unknown,
                  CASE WHEN picked.vocab = 'LOINC' THEN picked.code END AS analyte,
                  TRY_CAST(rr.r -> 'low' ->> 'value' AS DOUBLE) AS low_v, fd_qunit(rr.r -> 'low') AS low_raw,
                  TRY_CAST(rr.r -> 'high' ->> 'value' AS DOUBLE) AS high_v, fd_qunit(rr.r -> 'high') AS high_raw
                  FROM _o2 o LEFT JOIN _units u ON u.raw = o.raw_unit) o
              LEFT JOIN _units ul ON ul.raw = o.low_raw LEFT JOIN _units uh ON uh.raw = o.high_raw)"""
        todo = self.rows(f"""WITH o AS {o3b} SELECT DISTINCT v, src, unit, analyte FROM (
              SELECT low_v AS v, low_src AS src, unit, analyte FROM o WHERE is_measurement AND NOT unit_unknown AND low_v IS NOT NULL
              UNION ALL SELECT high_v, high_src, unit, analyte FROM o WHERE is_measurement AND NOT unit_unknown AND high_v IS NOT NULL)
              WHERE src IS NOT NULL AND unit IS NOT NULL AND src <> unit""")
        # a reference range's ends are the laboratory's, not the patient's: their conversions may be kept (units.convert)
        conv = [[v, s, u, a, units.convert(v, s, u, analyte=a, keep=True)] for v, s, u, a in todo]
        self.x("""CREATE OR REPLACE TEMP TABLE _conv AS SELECT unnest($1::DOUBLE[]) AS v, unnest($2::VARCHAR[]) AS src,
                  unnest($3::VARCHAR[]) AS unit, unnest($4::VARCHAR[]) AS analyte, unnest($5::DOUBLE[]) AS out""",
               [list(c) for c in zip(*conv, strict=True)] if conv else [[], [], [], [], []])

        def end(e: str) -> str:
            return f"""CASE WHEN o.{e}_v IS NULL THEN 'none'
                WHEN o.{e}_src IS NULL OR o.unit IS NULL THEN 'bad_unit'
                WHEN o.{e}_src <> o.unit AND c_{e}.out IS NULL THEN 'no_conversion' ELSE 'ok' END AS {e}_state,
                CASE WHEN o.{e}_src = o.unit THEN o.{e}_v ELSE c_{e}.out END AS {e}_value"""

        self.x(f"""CREATE OR REPLACE TEMP TABLE _o3 AS SELECT *,
              CASE WHEN low_state IN ('none', 'ok') AND high_state IN ('none', 'ok') THEN low_value END AS range_low,
              CASE WHEN low_state IN ('none', 'ok') AND high_state IN ('none', 'ok') THEN high_value END AS range_high
              FROM (SELECT o.*, {end("low")}, {end("high")}
              FROM {o3b} o
              LEFT JOIN _conv c_low ON c_low.v = o.low_v AND c_low.src = o.low_src AND c_low.unit = o.unit
                   AND c_low.analyte IS NOT DISTINCT FROM o.analyte
              LEFT JOIN _conv c_high ON c_high.v = o.high_v AND c_high.src = o.high_src AND c_high.unit = o.unit
                   AND c_high.analyte IS NOT DISTINCT FROM o.analyte)""")
        self.drop("_o2")

        def problem(e: str) -> str:
            return f"""SELECT 4, ord, part, 5, prefix || 'referenceRange[' || rr.i || '].{e}',
                CASE WHEN {e}_state = 'bad_unit' THEN 'reference range ' ||
                     CASE WHEN {e}_src IS NULL THEN 'unit ' || coalesce(ur.raw_repr, 'None') || ' is not known'
                     ELSE 'the value has no unit' END || '; the range is not used'
                ELSE 'reference range in ' || {e}_src || ' cannot be converted to the value''s unit ' || unit || '; the range is not used'
                END
                FROM _o3 LEFT JOIN _units ur ON ur.raw = {e}_raw
                WHERE is_measurement AND NOT unit_unknown AND {e}_state IN ('bad_unit', 'no_conversion')"""

        self.problem(problem("low"))
        self.problem(problem("high") + " AND low_state IN ('none', 'ok')")
        # a measurement with an unknown unit is dropped; the observation row keeps its value without a unit

    # ----- concepts and links

    def _register(self, table: str, omop_table: str, domain: str) -> None:
        """Note the codings of ``table``'s rows for concepts and fhir_coding (in reading order)."""
        self._registered.append((table, omop_table, domain))
        self._codings.append(f"""SELECT ord, part, 0, s.i, s.c.vocab, s.c.code, s.c.display, '{domain}' FROM
                   (SELECT ord, part, unnest(list_transform(cs, (c, i) -> struct_pack(c := c, i := i))) AS s FROM {table})""")
        if omop_table in ("measurement", "observation"):
            self._codings.append(f"""SELECT ord, part, 1, s.i, s.c.vocab, s.c.code, s.c.display, 'Meas Value' FROM
                       (SELECT ord, part, unnest(list_transform(vcs, (c, i) -> struct_pack(c := c, i := i))) AS s FROM {table})""")
            self._codings.append(f"""SELECT ord, part, 2, 1, ipicked.vocab, ipicked.code, ipicked.display, 'Meas Value'
                       FROM {table} WHERE NOT has_value AND ipicked IS NOT NULL""")
            self._codings.append(f"""SELECT ord, part, 3, 1, 'UCUM', unit_source_value, unit_source_value, 'Unit'
                       FROM {table} WHERE unit_source_value IS NOT NULL""")

    def _concepts(self) -> None:
        """Site-local concept ids: a hash of (vocabulary, code), the same in every run; the
        later of two colliding codes takes the next free id (the *_concept_id columns are
        looked up as the OMOP tables are written)."""
        codings = " UNION ALL ".join(f"({c})" for c in self._codings)
        found = self.rows(f"""SELECT vocab, code, arg_min(domain, (ord, part, step, seq)),
                                    arg_min(display, (ord, part, step, seq)) FILTER (WHERE display IS NOT NULL)
                             FROM (SELECT CAST(ord AS BIGINT) AS ord, CAST(part AS INT) AS part, CAST(step AS INT) AS step,
                                          CAST(seq AS INT) AS seq, vocab, code, display, domain
                                   FROM ({codings}) t(ord, part, step, seq, vocab, code, display, domain))
                             GROUP BY vocab, code ORDER BY min((ord, part, step, seq))""")
        taken: set[int] = set()
        out = []
        for vocab, code, domain, display in found:
            cid = _local_id(vocab, code)
            while cid in taken:
                cid = cid + 1 if cid < 2**31 - 1 else LOCAL_CONCEPT_BASE
            taken.add(cid)
            out.append((cid, vocab, code, display, domain))
        self.x("""CREATE OR REPLACE TEMP TABLE _cid AS SELECT unnest($1::INTEGER[]) AS concept_id, unnest($2::VARCHAR[]) AS vocab,
                  unnest($3::VARCHAR[]) AS code, unnest($4::VARCHAR[]) AS display, unnest($5::VARCHAR[]) AS domain""",
               [list(c) for c in zip(*out, strict=True)] if out else [[], [], [], [], []])

    def _with_concepts(self, table: str, omop_table: str) -> str:
        """SQL (a subquery): ``table`` with its *_concept_id columns, from the concepts in ``_cid``."""
        lookup = "(SELECT concept_id FROM _cid WHERE _cid.vocab = {0}.vocab AND _cid.code = {0}.code)"
        prefix = {"condition_occurrence": "condition", "procedure_occurrence": "procedure", "drug_exposure": "drug",
                  "measurement": "measurement", "observation": "observation"}[omop_table]  # fmt: skip
        sets = [f"CAST(coalesce({lookup.format('picked')}, 0) AS INTEGER) AS {prefix}_concept_id",
                f"CAST({lookup.format('source')} AS INTEGER) AS {prefix}_source_concept_id"]  # fmt: skip
        if omop_table in ("measurement", "observation"):
            sets += [f"CAST(coalesce({lookup.format('vpicked')}, "
                     f"CASE WHEN NOT has_value THEN {lookup.format('ipicked')} END) AS INTEGER) AS value_as_concept_id",
                     "CAST((SELECT concept_id FROM _cid WHERE _cid.vocab = 'UCUM' "
                     "AND _cid.code = unit_source_value) AS INTEGER) AS unit_concept_id"]  # fmt: skip
        return f"(SELECT * REPLACE ({', '.join(sets)}) FROM {table})"

    # ----- writing

    def _periods(self) -> None:
        """One observation period per person, from the earliest to the latest date of any mapped record or Encounter."""
        observed = " UNION ALL ".join(
            [f"SELECT person_id, unnest(observed) AS d FROM {t}" for t in
             ("_t_condition_occurrence", "_t_procedure_occurrence", "_t_drug_exposure", "_obs_span", "_enc_span")])  # fmt: skip
        self.x(f"""CREATE OR REPLACE TEMP TABLE _t_observation_period AS
            SELECT row_number() OVER (ORDER BY person_id)::INTEGER AS observation_period_id, person_id,
                   min(d) AS observation_period_start_date, max(d) AS observation_period_end_date,
                   {TYPE_EHR} AS period_type_concept_id
            FROM ({observed}) WHERE d IS NOT NULL GROUP BY person_id""")

    def _write(self, before: Mapping[str, int]) -> None:
        persons = before.get("person", 0)
        shift = {t: before.get(t, 0) for t in NUMBERED}
        person_out = f"""(SELECT person_id,
            CASE gender WHEN 'female' THEN {FEMALE} WHEN 'male' THEN {MALE} ELSE 0 END AS gender_concept_id,
            CAST(substr(birth_ok, 1, 4) AS INTEGER) AS year_of_birth,
            CASE WHEN length(birth_ok) >= 7 THEN CAST(substr(birth_ok, 6, 2) AS INTEGER) END AS month_of_birth,
            CASE WHEN length(birth_ok) >= 10 THEN CAST(substr(birth_ok, 9, 2) AS INTEGER) END AS day_of_birth,
            CASE WHEN length(birth_ok) >= 10 THEN CAST(birth_ok AS TIMESTAMP) END AS birth_datetime,
            0 AS race_concept_id, 0 AS ethnicity_concept_id, rid AS person_source_value, gender AS gender_source_value
            FROM _t_person)"""
        death = f"""(SELECT person_id, fd_date(deceased_datetime) AS death_date, fd_datetime(deceased_datetime) AS death_datetime,
            {TYPE_EHR} AS death_type_concept_id FROM _t_person
            WHERE deceased_datetime IS NOT NULL OR coalesce(deceased_boolean, FALSE))"""
        fhir_record, fhir_coding, concept = self._links()
        everything = None  # a subquery written here with every column of the schema
        # each OMOP table's source (a subquery or a temporary table) and the columns it has
        sources: dict[str, tuple[str, set[str] | None]] = {
            "person": (person_out, {"person_id", "gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth",
                                    "birth_datetime", "race_concept_id", "ethnicity_concept_id", "person_source_value",
                                    "gender_source_value"}),
            "death": (death, {"person_id", "death_date", "death_datetime", "death_type_concept_id"}),
            "concept": (concept, everything), "concept_ancestor": ("", set()),
            "fhir_record": (fhir_record, everything), "fhir_coding": (fhir_coding, everything)}  # fmt: skip
        temp_columns: dict[str, set[str]] = defaultdict(set)
        for table, column in self.rows("SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = 'temp'"):
            temp_columns[table].add(column)
        concepts = {omop_table for _, omop_table, _ in self._registered}
        for name in OMOP_SCHEMA:
            if name not in sources:
                table = f"_t_{name}"
                sources[name] = (self._with_concepts(table, name) if name in concepts else table, temp_columns[table])
        con = self.con
        con.begin()
        try:
            for name, schema in OMOP_SCHEMA.items():
                src, have = sources[name]
                if have is None:
                    have = {col for col, _ in schema}
                cols = []
                for col, typ in schema:
                    sql_type = _duck(typ)
                    if name in _ID_COLUMN and col == _ID_COLUMN[name]:
                        expr = f"{col} + {shift[name]}"
                    elif col == "person_id" and name != "person":
                        expr = f"person_id + {persons}"
                    elif name in ("fhir_record", "fhir_coding") and col == "record_id":
                        expr = "record_id + " + _case_shift(shift)
                    elif col in ("measurement_event_id", "observation_event_id"):
                        expr = f"{col} + {shift[name]}"
                    else:
                        expr = col
                    if col not in have:
                        expr = "NULL"
                    cols.append(f"CAST({expr} AS {sql_type}) AS {col}")
                order = (
                    f" ORDER BY {schema[0][0]}" if name in _ID_COLUMN else " ORDER BY _o" if name in ("fhir_record", "fhir_coding")
                    else " ORDER BY concept_id" if name == "concept" else ""
                )
                body = f"SELECT {', '.join(cols)} FROM {src}{order}" if src else f"SELECT {', '.join(cols)} WHERE FALSE"
                con.execute(f'CREATE OR REPLACE TABLE "{name}" AS {body}')
            con.commit()
        except BaseException:
            con.rollback()
            raise

    def _links(self) -> tuple[str, str, str]:
        """SQL (subqueries): the rows of fhir_record, fhir_coding and concept."""
        parts_r, parts_c = [], []
        for table, omop_table, _ in self._registered:
            idc = _ID_COLUMN[omop_table]
            parts_r.append(f"""SELECT '{omop_table}' AS table_name, {idc} AS record_id, rtype AS resource_type, rid AS resource_id,
                file, line, picked.code AS code, coalesce(picked.display, fallback_display) AS display, (ord * 1000 + part + 1) * 1000 AS _o
                FROM {table}""")
            parts_c.append(f"""SELECT '{omop_table}' AS table_name, {idc} AS record_id, s.c.vocab AS vocabulary_id,
                s.c.code AS concept_code, (SELECT concept_id FROM _cid WHERE _cid.vocab = s.c.vocab AND _cid.code = s.c.code)
                AS concept_id, (ord * 1000 + part + 1) * 1000 + s.i AS _o
                FROM (SELECT *, unnest(list_transform(cs, (c, i) -> struct_pack(c := c, i := i))) AS s FROM {table})""")
        person = """SELECT 'person' AS table_name, person_id AS record_id, 'Patient' AS resource_type, p.rid AS resource_id, p.file,
                    r.line, NULL AS code, NULL AS display, p.ord * 1000000 AS _o FROM _t_person p JOIN _res r USING (ord)"""
        start, end = "DATE '1970-01-01'", "DATE '2099-12-31'"
        concept = f"""(SELECT concept_id, left(coalesce(display, code), 255) AS concept_name,
                   domain AS domain_id, vocab AS vocabulary_id, 'Site-local' AS concept_class_id,
                   CASE WHEN vocab IN {_in(_STANDARD)} THEN 'S' END AS standard_concept, code AS concept_code,
                   {start} AS valid_start_date, {end} AS valid_end_date, NULL AS invalid_reason FROM _cid)"""
        return f"({' UNION ALL '.join([person, *parts_r])})", f"({' UNION ALL '.join(parts_c)})", concept

    def _report(self, before: Mapping[str, int]) -> None:
        report = self.report
        shift = before.get("person", 0)
        counted = " UNION ALL ".join(f"SELECT '{name}', count(*) FROM \"{name}\"" for name in OMOP_SCHEMA)
        counts = dict(self.rows(counted))
        for name in OMOP_SCHEMA:
            report.rows[name] = counts[name]
        people = self.rows("""SELECT p.person_id, p.patient_id, p.file, p.scope, CASE WHEN length(p.birth_ok) >= 10
                              THEN CAST(p.birth_ok AS DATE) END, p.gender FROM _t_person p ORDER BY person_id""")
        report.persons = [MappedPerson(pid + shift, patient, file, scope, birth, gender)
                          for pid, patient, file, scope, birth, gender in people]  # fmt: skip
        for what, n in self.rows("SELECT what, count(*) FROM _excluded GROUP BY what ORDER BY min(ord)"):
            report.excluded[what] = n
        found = self.rows("""SELECT r.file, r.line, r.rtype, coalesce(r.id, r.full_url), p.field, p.message, r.subj,
                             p.phase, p.ord, p.part, p.step FROM _prob p JOIN _res r USING (ord) ORDER BY p.phase, p.ord, p.part, p.step""")
        for f, ln, t, i, fl, m, s, *key in found:
            problem = Problem(file=f, line=ln, resource_type=t, resource_id=i, field=fl, message=m, subject=s)
            report.problems.append(problem)
            report.problem_keys[id(problem)] = (2, *key)
        # a problem belongs to the person its resource names, or else to the only person of its Bundle or export
        keys = self.rows("SELECT scope, key, person_id FROM _person_key")
        person_of = {(s, k): pid + shift for s, k, pid in keys}
        by_scope: dict[str, list[int]] = defaultdict(list)
        for person in report.persons:
            by_scope[person.scope].append(person.person_id)
        report.person_problems = defaultdict(list)
        for p in report.problems:
            for scope in (p.file, str(Path(p.file).parent)):
                person_id = None
                if p.subject is not None:
                    person_id = person_of.get((scope, p.subject)) or person_of.get((scope, _ref_key(p.subject)))
                in_scope = len(by_scope.get(scope, ())) if self.batch is None else self.batch.scope_persons.get(scope, 0)
                if person_id is None and in_scope == 1 and len(by_scope.get(scope, ())) == 1:
                    person_id = by_scope[scope][0]
                if person_id is not None:
                    report.person_problems[person_id].append(p)
                    break


def _ref_key(ref: str) -> str:
    parts = ref.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 else ref


def _case_shift(shift: Mapping[str, int]) -> str:
    return "(CASE table_name " + " ".join(f"WHEN '{t}' THEN {n}" for t, n in shift.items()) + " ELSE 0 END)"


def _duck(typ: Any) -> str:
    import pyarrow as pa

    return {pa.int32(): "INTEGER", pa.int64(): "BIGINT", pa.date32(): "DATE", pa.timestamp("us"): "TIMESTAMP",
            pa.string(): "VARCHAR", pa.float64(): "DOUBLE"}[typ]  # fmt: skip

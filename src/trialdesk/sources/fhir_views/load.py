"""Reading FHIR inputs into DuckDB (``fhir_resources``), with the checks that do not need a
view: not JSON, not FHIR, another FHIR version, resource types R4 does not have, names R4
does not define at a resource's top level, elements R4 requires; ``validate="full"``
validates every resource against the FHIR R4 JSON Schema (jsonschema-rs).

DuckDB's JSON reader reads every file. A file it cannot read, or one with a resource that
looks wrong (no resourceType, a type R4 does not have, another version's marks), is read
again by the Python reader of :mod:`trialdesk.sources.fhir`, which names the exact problem
(file, line, what): the slow path is only for files that have something to say.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from trialdesk.sources import fhir as fhir_py
from trialdesk.sources.fhir import USED_TYPES, FhirError, FhirReading, Problem, Validation

__all__ = ["SCHEMA_PATH", "load_fhir", "r4_data"]

#: where scripts/setup installs the FHIR R4 JSON Schema (``--validate full``); TRIALDESK_FHIR_SCHEMA overrides it
SCHEMA_PATH = (Path(__file__).resolve().parents[4] / "vendor" / "fhir-schema" / "node_modules" / "@asymmetrik"
               / "fhir-json-schema-validator" / "fhir.schema.json")  # fmt: skip


@cache
def r4_data() -> dict[str, Any]:
    """The R4 resource types, and each used type's top-level names and required names (from fhir.schema.json)."""
    data: dict[str, Any] = json.loads((resources.files("trialdesk.sources.fhir_views") / "r4_resources.json").read_text())
    return data


def _files(sources: Iterable[str | Path], skip_unreadable: bool, reading: FhirReading) -> list[tuple[Path, str, bool]]:
    """(file, scope, is NDJSON) in reading order, as :func:`trialdesk.sources.fhir.read_fhir` reads them."""
    out: list[tuple[Path, str, bool]] = []
    for raw in sources:
        p = Path(raw)
        try:
            if not p.exists():
                raise FhirError(f"{p}: no such file or folder")
            if p.is_file():
                out.append((p, str(p), p.name.endswith((".ndjson", ".ndjson.gz"))))
                continue
            manifest = p / "manifest.json"
            ndjson = fhir_py._export_files(p, manifest)
            bundles = sorted(f for f in p.iterdir() if f.is_file() and f.suffix == ".json" and f.name != "manifest.json")
            if not ndjson and not bundles:
                raise FhirError(f"{p}: no FHIR files (*.json Bundles or *.ndjson Bulk export) in this folder")
            out.extend((f, str(p), True) for f in ndjson)
            out.extend((f, str(f), False) for f in bundles)
        except FhirError as e:
            if not skip_unreadable:
                raise
            reading.problems.append(Problem(file=str(p), message=str(e)))
    return out


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _scan_sql(files: Sequence[tuple[int, Path, str, bool]]) -> str:
    """SQL over DuckDB's JSON reader: (fi, pos, resource, line, full_url) for the given files."""
    parts = []
    nd = [(i, p) for i, p, _, is_nd in files if is_nd]
    bu = [(i, p) for i, p, _, is_nd in files if not is_nd]
    if nd:
        index = "MAP {" + ", ".join(f"{_q(str(p))}: {i}" for i, p in nd) + "}"
        names = "[" + ", ".join(_q(str(p)) for _, p in nd) + "]"
        parts.append(f"""SELECT {index}[filename] AS fi, _n AS pos, json AS resource,
              row_number() OVER (PARTITION BY filename ORDER BY _n) AS line, NULL::VARCHAR AS full_url
              FROM (SELECT filename, json, row_number() OVER () AS _n FROM read_ndjson_objects({names}, filename := true))""")
    if bu:
        index = "MAP {" + ", ".join(f"{_q(str(p))}: {i}" for i, p in bu) + "}"
        names = "[" + ", ".join(_q(str(p)) for _, p in bu) + "]"
        parts.append(f"""SELECT {index}[filename] AS fi, row_number() OVER () AS pos,
              CASE WHEN is_bundle THEN _e -> 'resource' ELSE json END AS resource, NULL::BIGINT AS line,
              CASE WHEN is_bundle THEN _e ->> 'fullUrl' END AS full_url
              FROM (SELECT filename, json, is_bundle, unnest(CASE WHEN is_bundle
                        THEN coalesce(CAST(json -> 'entry' AS JSON[]), []) ELSE [NULL::JSON] END) AS _e
                    FROM (SELECT filename, json, (json ->> 'resourceType') = 'Bundle' AS is_bundle
                          FROM read_json_objects({names}, format := 'unstructured', filename := true)))""")
    return " UNION ALL ".join(parts)


_RAW_COLUMNS = "fi BIGINT, pos BIGINT, resource JSON, line BIGINT, full_url VARCHAR"


#: top-level names that only another FHIR version has on the resources read (see fhir._shape_mark)
_OTHER_VERSION_NAMES = ["taken", "wasNotTaken", "patient", "context", "notGiven", "wasNotGiven", "effectiveTimeDateTime",
                        "occurenceDateTime", "occurrenceDateTime", "comments", "notPerformed", "actualPeriod", "animal",
                        "assertedDate", "dateRecorded"]  # fmt: skip


def _suspects_sql() -> str:
    """SQL: the files (fi) with a resource the Python reader must look at (it names the problem):
    no resourceType, a type R4 does not have, a declared version other than R4, another version's shape."""
    data = r4_data()
    types = "[" + ", ".join(_q(t) for t in data["resource_types"]) + "]"
    names = "[" + ", ".join(_q(n) for n in _OTHER_VERSION_NAMES) + "]"
    return f"""SELECT DISTINCT fi FROM (
        SELECT fi, resource, resource ->> 'resourceType' AS rt, json_keys(resource) AS keys FROM _raw)
        WHERE resource IS NULL OR rt IS NULL OR NOT list_contains({types}, rt)
           OR list_contains(keys, 'fhirVersion') OR (list_contains(keys, 'meta') AND (resource -> 'meta' ->> 'fhirVersion') IS NOT NULL
               AND NOT regexp_matches(resource -> 'meta' ->> 'fhirVersion', '^4\\.[03]'))
           OR (list_has_any(keys, {names}) AND rt IN ('Condition', 'MedicationStatement', 'MedicationRequest',
               'MedicationAdministration', 'Observation', 'Procedure', 'Encounter', 'Patient'))
           OR (rt = 'Condition' AND list_has_any(keys, ['clinicalStatus', 'verificationStatus'])
               AND (json_type(resource -> 'clinicalStatus') = 'VARCHAR' OR json_type(resource -> 'verificationStatus') = 'VARCHAR'))
           OR (rt = 'MedicationRequest' AND list_contains(keys, 'medication'))
           OR (rt = 'Encounter' AND json_type(resource -> 'class') IN ('VARCHAR', 'ARRAY'))"""


def load_fhir(
    con: duckdb.DuckDBPyConnection,
    sources: Iterable[str | Path],
    *,
    skip_unreadable: bool = False,
    validate: Validation = "read",
    name: str = "fhir_resources",
) -> FhirReading:
    """Read ``sources`` (Bundles, Bulk exports, folders) into the table ``name`` of ``con``:
    one row per resource of a type trialdesk uses (``ord``, ``rtype``, ``resource``,
    ``file``, ``line``, ``full_url``, ``scope``). The reading returned has the problems,
    the files and the counts of types passed over (its ``records`` stay empty).
    A file that cannot be read raises :class:`FhirError` (one line naming it), or with
    ``skip_unreadable`` becomes a problem when it is inside a folder."""
    if validate not in ("read", "full"):
        raise ValueError(f"validate must be 'read' or 'full', not {validate!r}")
    reading = FhirReading()
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    single_file = _single_file(sources)
    files = [(i, p, scope, nd) for i, (p, scope, nd) in enumerate(_files(sources, skip_unreadable, reading))]
    reading.files = [str(p) for _, p, _, _ in files]
    con.execute(f"CREATE OR REPLACE TEMP TABLE _raw ({_RAW_COLUMNS})")
    unreadable: list[int] = []
    if files:
        try:
            con.execute(f"INSERT INTO _raw {_scan_sql(files)}")
        except duckdb.Error:
            con.execute("DELETE FROM _raw")
            for f in files:
                try:
                    con.execute(f"INSERT INTO _raw {_scan_sql([f])}")
                except duckdb.Error:
                    unreadable.append(f[0])
    suspects = {r[0] for r in con.execute(_suspects_sql()).fetchall()}
    slow = sorted(set(unreadable) | suspects)
    by_index = {i: (p, scope, nd) for i, p, scope, nd in files}
    python_rows: list[tuple[int, int, str, int | None, str | None]] = []
    for i in slow:
        p, scope, nd = by_index[i]
        con.execute(f"DELETE FROM _raw WHERE fi = {i}")
        try:
            if nd:
                part = FhirReading(files=[str(p)])
                fhir_py._read_ndjson(p, scope, part)
            else:
                part = fhir_py._read_json_file(p)
        except FhirError as e:
            if not skip_unreadable or single_file:
                raise
            reading.problems.append(Problem(file=str(p), message=str(e)))
            continue
        reading.problems.extend(part.problems)
        reading.skipped_types.update(part.skipped_types)
        for k, r in enumerate(part.pending):
            python_rows.append((i, k, json.dumps(r.data), r.line, r.full_url))
    if python_rows:
        table = pa.table({"fi": pa.array([r[0] for r in python_rows], pa.int64()), "pos": pa.array([r[1] for r in python_rows], pa.int64()),
                          "resource": pa.array([r[2] for r in python_rows], pa.string()),
                          "line": pa.array([r[3] for r in python_rows], pa.int64()),
                          "full_url": pa.array([r[4] for r in python_rows], pa.string())})  # fmt: skip
        con.register("_python_rows", table)
        try:
            con.execute("INSERT INTO _raw SELECT fi, pos, CAST(resource AS JSON), line, full_url FROM _python_rows")
        finally:
            con.unregister("_python_rows")
    meta = pa.table({"fi": pa.array([i for i, *_ in files], pa.int64()), "file": pa.array([str(p) for _, p, _, _ in files], pa.string()),
                     "scope": pa.array([s for _, _, s, _ in files], pa.string())})  # fmt: skip
    con.register("_files", meta)
    try:
        used = "(" + ", ".join(_q(t) for t in sorted(USED_TYPES)) + ")"
        for rtype, n in con.execute(f"""SELECT resource ->> 'resourceType', count(*) FROM _raw
                                        WHERE resource ->> 'resourceType' NOT IN {used} GROUP BY 1 ORDER BY min((fi, pos))""").fetchall():
            reading.skipped_types[rtype] += n
        con.execute(f"""CREATE OR REPLACE TABLE "{name}" AS SELECT
            row_number() OVER (ORDER BY r.fi, r.pos) AS ord, resource ->> 'resourceType' AS rtype, resource, f.file, r.line,
            r.full_url, f.scope FROM _raw r JOIN _files f USING (fi)
            WHERE resource ->> 'resourceType' IN {used} ORDER BY ord""")
    finally:
        con.unregister("_files")
    con.execute("DROP TABLE _raw")
    _structure(con, name, reading, validate)
    return reading


def _r4_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Small tables of the R4 structure rules for the resource types read (from r4_resources.json)."""
    data = r4_data()
    allowed = [(t, n) for t, names in data["elements"].items() for n in names]
    required = [(t, n) for t, names in data["required"].items() for n in names]
    choice = [(t, b, n) for t, groups in data["choices"].items() for b, names in groups.items() for n in names]
    for table, cols, rows in (("_r4_allowed", "rtype VARCHAR, name VARCHAR", allowed),
                              ("_r4_required", "rtype VARCHAR, name VARCHAR", required),
                              ("_r4_choice", "rtype VARCHAR, base VARCHAR, name VARCHAR", choice)):  # fmt: skip
        # one INSERT of the columns as lists (one row at a time, executemany, was ~85 ms of every chart for ~450 rows)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({cols})")
        width = len(cols.split(","))
        con.execute(f"INSERT INTO {table} SELECT {', '.join(f'unnest(${i + 1}::VARCHAR[])' for i in range(width))}",
                    [[row[i] for row in rows] for i in range(width)])  # fmt: skip


def _single_file(sources: list[str | Path]) -> bool:
    return len(sources) == 1 and Path(sources[0]).is_file()


#: the most resources (a range of ``ord``) one statement of the structure check looks at (see :func:`_structure`)
STRUCTURE_SLICE = 250_000

#: the structure check's rules over ``{rows}`` (ord, rtype, resource): one row per problem, by resource then element
_STRUCTURE_SQL = """
    WITH k AS (SELECT ord, rtype, unnest(json_keys(resource)) AS name FROM {rows})
    SELECT ord, name AS element, 'extra fields not permitted (R4 defines no such element on ' || rtype || ')'
    FROM k ANTI JOIN _r4_allowed a USING (rtype, name)
    UNION ALL
    SELECT ord, q.name, 'field required' FROM {rows} r JOIN _r4_required q USING (rtype)
    WHERE NOT json_exists(resource, '$."' || q.name || '"')
    UNION ALL
    SELECT ord, base || '[x]', 'only one type of ' || base || '[x] may be given, not ' || string_agg(name, ' and ' ORDER BY name)
    FROM k JOIN _r4_choice USING (rtype, name) GROUP BY ord, base HAVING count(*) > 1
    ORDER BY 1, 2"""


def _structure(con: duckdb.DuckDBPyConnection, name: str, reading: FhirReading, validate: Validation) -> None:
    """Names R4 does not define at a resource's top level, and elements R4 requires (or,
    with ``"full"``, everything the R4 JSON Schema says): the resource is left out and named.

    The rules list every resource's top-level names (a row per name, ~8 a resource), which
    DuckDB keeps whole, as the two rules that read the list share it: at 100,000 patients
    (~60 M names) that is more than a first pass's memory limit, and it is not spilled. So
    they run on ranges of ``ord``, :data:`STRUCTURE_SLICE` resources at a time, in order:
    the problems are those of one statement over everything, in its order.
    """
    _r4_tables(con)
    size = STRUCTURE_SLICE
    first, last = con.execute(f'SELECT min(ord), max(ord) FROM "{name}"').fetchone()  # type: ignore[misc]
    bad: dict[int, list[tuple[str | None, str]]] = {}
    for lo in range(first, last + 1, size) if first is not None else ():
        rows = f'(SELECT ord, rtype, resource FROM "{name}" WHERE ord BETWEEN {lo} AND {lo + size - 1})'
        for ord_, element, problem in con.execute(_STRUCTURE_SQL.format(rows=rows)).fetchall():
            bad.setdefault(ord_, []).append((element, problem))
    if validate == "full":
        for ord_, errors in _schema_errors(con, name).items():
            bad.setdefault(ord_, []).extend(errors)
    if bad:
        drop_invalid(con, name, reading, bad)


def drop_invalid(con: duckdb.DuckDBPyConnection, name: str, reading: FhirReading,
                 bad: dict[int, list[tuple[str | None, str]]],
                 keys: dict[int, tuple[int, ...]] | None = None) -> set[int]:  # fmt: skip
    """Name each invalid resource's problems and remove it from ``name``; return the
    Patients kept because only their birthDate is wrong (kept with an unknown age).
    ``keys`` receives each problem's place in a batch's order (by ``id``): the resource's ord, then its rank."""
    ords = sorted(bad)
    info = {r[0]: r[1:] for r in con.execute(f"""SELECT ord, file, line, rtype,
              coalesce(CASE WHEN json_type(resource -> 'id') = 'VARCHAR' THEN resource ->> 'id' END, full_url),
              coalesce(resource -> 'subject' ->> 'reference', resource -> 'patient' ->> 'reference')
              FROM "{name}" WHERE ord IN ({', '.join(map(str, ords))})""").fetchall()}  # fmt: skip
    kept: set[int] = set()
    for o in ords:
        file, line, rtype, rid, subject = info[o]
        birth_only = rtype == "Patient" and all(e == "birthDate" for e, _ in bad[o])
        outcome = "the patient is kept with an unknown age" if birth_only else "the resource is not used"
        if birth_only:
            kept.add(o)
        seen: set[str | None] = set()
        for element, problem in bad[o]:
            if element in seen:
                continue  # the first thing wrong with an element is enough (the schema also names its pattern)
            seen.add(element)
            found = Problem(file=file, line=line, resource_type=rtype, resource_id=rid, field=element,
                            message=f"fails FHIR R4 validation: {problem}; {outcome}", subject=subject)
            reading.problems.append(found)
            if keys is not None:
                keys[id(found)] = (1, o, len(seen))
    dropped = [o for o in ords if o not in kept]
    if dropped:
        con.execute(f"""DELETE FROM "{name}" WHERE ord IN ({", ".join(map(str, dropped))})""")
    return kept


@cache
def _validators() -> Any:
    import os

    import jsonschema_rs

    path = Path(os.environ.get("TRIALDESK_FHIR_SCHEMA") or SCHEMA_PATH)
    if not path.exists():
        raise FhirError(f"--validate full needs the FHIR R4 JSON Schema at {path}: run scripts/setup (it installs it from npm)")
    schema = json.loads(path.read_bytes())
    return schema, {}, jsonschema_rs


def _schema_errors(con: duckdb.DuckDBPyConnection, name: str) -> dict[int, list[tuple[str | None, str]]]:
    schema, cache_, jsonschema_rs = _validators()
    out: dict[int, list[tuple[str | None, str]]] = {}
    for ord_, rtype, text in con.execute(f'SELECT ord, rtype, CAST(resource AS VARCHAR) FROM "{name}"').fetchall():
        validator = cache_.get(rtype)
        if validator is None:
            sub = {"$ref": f"#/definitions/{rtype}", "definitions": schema["definitions"]}
            validator = cache_[rtype] = jsonschema_rs.Draft6Validator(sub)
        errors = []
        for err in validator.iter_errors(json.loads(text)):
            path = ".".join(str(p) for p in err.instance_path) or None
            errors.append((path, err.message))
        if errors:
            out[ord_] = errors
    return out

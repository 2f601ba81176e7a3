"""FHIR inputs → one DuckDB relation of resources as JSON, read by DuckDB's own JSON reader.

An input is a Bundle file (``*.json``), a Bulk Data NDJSON file (``*.ndjson``,
``*.ndjson.gz``), or a folder of either. The relation has one row per resource:
``ord`` (reading order), ``rtype``, ``resource`` (JSON), ``file``, ``line`` (NDJSON line,
NULL in a Bundle), ``full_url`` (Bundle entry fullUrl) and ``scope`` (references resolve
within one Bundle file, or one Bulk export folder).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import duckdb

__all__ = ["InputError", "input_files", "load_resources"]


class InputError(ValueError):
    """An input cannot be read as FHIR JSON (the message is one line naming the file)."""


def _is_ndjson(p: Path) -> bool:
    return p.name.endswith((".ndjson", ".ndjson.gz"))


def input_files(inputs: Iterable[str | Path]) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """(NDJSON files, Bundle files), each with its reference scope, in reading order."""
    ndjson: list[tuple[Path, str]] = []
    bundles: list[tuple[Path, str]] = []
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_file():
            (ndjson if _is_ndjson(p) else bundles).append((p, str(p)))
            continue
        files = sorted(f for f in p.iterdir() if f.is_file())
        nd = [f for f in files if _is_ndjson(f)]
        bu = [f for f in files if f.suffix == ".json" and f.name != "manifest.json"]
        if not nd and not bu:
            raise InputError(f"{p}: no FHIR files (*.json Bundles or *.ndjson Bulk export) in this folder")
        ndjson.extend((f, str(p)) for f in nd)
        bundles.extend((f, str(f)) for f in bu)
    return ndjson, bundles


def _list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + s.replace("'", "''") + "'" for s in paths) + "]"


def load_resources(con: duckdb.DuckDBPyConnection, inputs: Iterable[str | Path], name: str = "fhir_resources") -> int:
    """Create (or replace) the table ``name`` of every resource in ``inputs``; its row count.

    A Bundle file whose top level is a single resource (not a Bundle) is read as that
    resource. Raises :class:`InputError` naming the file when DuckDB cannot read it as JSON."""
    ndjson, bundles = input_files(inputs)
    parts: list[str] = []
    if ndjson:
        files = [str(p) for p, _ in ndjson]
        scopes = "MAP {" + ", ".join(f"'{f.replace(chr(39), chr(39) * 2)}': '{s.replace(chr(39), chr(39) * 2)}'"
                                     for f, (_, s) in zip(files, ndjson, strict=True)) + "}"  # fmt: skip
        parts.append(
            f"SELECT 0 AS part, filename AS file, row_number() OVER (PARTITION BY filename ORDER BY _n) AS line, "
            f"json AS resource, NULL::VARCHAR AS full_url, {scopes}[filename] AS scope, _n "
            f"FROM (SELECT *, row_number() OVER () AS _n FROM read_ndjson_objects({_list(files)}, filename := true))"
        )
    if bundles:
        files = [str(p) for p, _ in bundles]
        parts.append(
            "SELECT 1 AS part, filename AS file, NULL::BIGINT AS line, "
            "CASE WHEN json ->> 'resourceType' = 'Bundle' THEN _e -> 'resource' ELSE json END AS resource, "
            "CASE WHEN json ->> 'resourceType' = 'Bundle' THEN _e ->> 'fullUrl' END AS full_url, filename AS scope, "
            "row_number() OVER () AS _n "
            f"FROM (SELECT filename, json, unnest(CASE WHEN json ->> 'resourceType' = 'Bundle' "
            f"THEN coalesce(CAST(json -> 'entry' AS JSON[]), []) ELSE [NULL::JSON] END) AS _e "
            f"FROM read_json_objects({_list(files)}, format := 'unstructured', filename := true))"
        )
    sql = " UNION ALL ".join(parts)
    try:
        con.execute(
            f'CREATE OR REPLACE TABLE "{name}" AS SELECT row_number() OVER (ORDER BY part, file, _n) AS ord, '
            f"resource ->> 'resourceType' AS rtype, resource, file, line, full_url, scope FROM ({sql}) "
            f"WHERE resource IS NOT NULL ORDER BY ord"
        )
    except duckdb.Error as e:
        raise InputError(_which_file(e, [str(p) for p, _ in ndjson + bundles])) from e
    row = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()
    return int(row[0]) if row else 0


def _which_file(e: Exception, files: list[str]) -> str:
    text = str(e).splitlines()[0]
    for f in files:
        if f in str(e):
            return f"{f}: not FHIR JSON ({text})"
    return f"{', '.join(files[:3])}{' …' if len(files) > 3 else ''}: not FHIR JSON ({text})"

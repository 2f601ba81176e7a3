"""SQL-on-FHIR v2 ViewDefinitions run by DuckDB: compile a view to SQL
(:mod:`.compiler`, with the FHIRPath subset of :mod:`.fhirpath`) and run it over FHIR
inputs read by DuckDB's JSON reader (:mod:`.reader`). The same views run by local Spark:
:mod:`.spark`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

from trialdesk.sources.fhir_views.compiler import CompiledView, ViewError, compile_view
from trialdesk.sources.fhir_views.reader import InputError, load_resources

__all__ = ["CompiledView", "InputError", "ViewError", "compile_view", "load_view", "run_view"]


def load_view(path: str | Path) -> Any:
    """The parsed JSON of a ViewDefinition file (:class:`ViewError` naming the file when it is not JSON)."""
    p = Path(path)
    try:
        return json.loads(p.read_bytes())
    except FileNotFoundError as e:
        raise ViewError(f"{p}: no such file") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ViewError(f"{p}: not JSON ({e}); a ViewDefinition is a JSON object") from e


def run_view(
    view: Any,
    inputs: Iterable[str | Path] | None = None,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    source: str = "fhir_resources",
) -> list[dict[str, Any]]:
    """The rows of ``view`` (dictionaries, columns in order) over ``inputs`` (read into
    ``source`` first) or over the table ``source`` already in ``con``."""
    compiled = view if isinstance(view, CompiledView) else compile_view(view)
    con = con if con is not None else duckdb.connect()
    if inputs is not None:
        load_resources(con, inputs, source)
    try:
        cur = con.execute(compiled.sql(f'"{source}"'))
        fetched = cur.fetchall()
    except duckdb.Error as e:
        raise ViewError(f"view {compiled.name}: {_message(e)}") from e
    names = [c[0] for c in compiled.columns]
    parse = [c[1] in ("JSON", "JSON[]") for c in compiled.columns]
    out = []
    for row in fetched:
        d = {n: json_value(v) if p else v for n, v, p in zip(names, row, parse, strict=False)}
        if len(row) > len(names):  # a view compiled with validate: the problems of the row's values
            d["_errors"] = row[len(names)]
        out.append(d)
    return out


def json_value(v: Any) -> Any:
    """A JSON column's value (text, or a list of texts for a collection) as Python values."""
    if v is None:
        return None
    if isinstance(v, list):
        return [json.loads(x) if isinstance(x, str) else x for x in v]
    return json.loads(v)


def _message(e: Exception) -> str:
    text = str(e).splitlines()[0]
    return text.split("Error: ", 1)[-1] if "Error: " in text else text

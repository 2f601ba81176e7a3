"""ViewDefinitions run by local Spark: the same compiled view (:mod:`.compiler` with the Spark
dialect) over FHIR files that Spark reads itself.

An NDJSON file (``.ndjson``, ``.ndjson.gz``) is read a line at a time (``spark.read.text``) and
each line parsed once into a ``VARIANT`` (``parse_json``); a Bundle file is read whole
(``wholetext``) and its ``entry[*].resource`` exploded, so a Bundle too stays in Spark. The
resources table has the columns the DuckDB reader's has that a view reads: ``ord`` (reading
order as the DuckDB reader's: NDJSON files first, then Bundles, files by name, each line or
entry in file order), ``rtype``, ``resource`` (VARIANT), ``file``.

A line that is not JSON fails the view's query; the runner then looks for the first such line
and names its file, as the DuckDB reader does (:class:`.reader.InputError`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from trialdesk.sources.fhir_views import json_value
from trialdesk.sources.fhir_views.compiler import CompiledView, ViewError, compile_view
from trialdesk.sources.fhir_views.reader import InputError, input_files

__all__ = ["load_resources_spark", "run_view_spark", "spark_rows", "view_frame"]

_SOURCE = "fhir_resources"
_BUNDLE = "try_variant_get(_doc, '$.resourceType', 'STRING') = 'Bundle'"


def _q(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def load_resources_spark(session: Any, inputs: Iterable[str | Path], name: str = _SOURCE, *, keep: bool = False) -> Any:
    """The DataFrame of every resource in ``inputs`` (registered as the temp view ``name``).

    Lazy: nothing is read until a view runs over it, and each view reads and parses the files
    again; with ``keep``, the resources are read and parsed once, now, and kept (memory, then
    disk) for every view run after. :class:`InputError` for an input that does not exist or a
    folder with no FHIR files (as the DuckDB reader)."""
    ndjson, bundles = input_files(inputs)
    # the DuckDB reader's order: NDJSON before Bundles, files by name, lines (entries) in file order
    ndjson, bundles = sorted(ndjson, key=lambda f: str(f[0])), sorted(bundles, key=lambda f: str(f[0]))
    frames, raw = [], []
    for p, _ in ndjson:
        frames.append(session.read.text(str(p)).where("trim(value) <> ''").selectExpr(f"{_q(str(p))} AS file", "value AS _text"))
        raw.append(frames[-1])
    for p, _ in bundles:
        whole = session.read.text(str(p), wholetext=True).selectExpr(f"{_q(str(p))} AS file", "value AS _text")
        raw.append(whole)
        doc = whole.selectExpr("file", "_text", "parse_json(_text) AS _doc")
        entries = doc.selectExpr(
            "file", "_text", "_doc",
            f"explode(CASE WHEN {_BUNDLE} THEN coalesce(try_variant_get(_doc, '$.entry', 'ARRAY<VARIANT>'), "
            "CAST(array() AS ARRAY<VARIANT>)) ELSE array(_doc) END) AS _e",
        )  # fmt: skip
        frames.append(entries.selectExpr("file", f"to_json(CASE WHEN {_BUNDLE} THEN variant_get(_e, '$.resource') ELSE _e END) AS _text"))
    frame = frames[0]
    for f in frames[1:]:
        frame = frame.unionAll(f)
    texts = frame.where("_text IS NOT NULL")
    for r in raw[1:]:
        raw[0] = raw[0].unionAll(r)
    raw[0].createOrReplaceTempView(f"{name}_raw")  # the text of each line or Bundle file, to name one that is not JSON
    resources = (
        texts
        .selectExpr("monotonically_increasing_id() AS ord", "file", "parse_json(_text) AS resource")
        .selectExpr("ord", "try_variant_get(resource, '$.resourceType', 'STRING') AS rtype", "resource", "file")
    )
    if keep:
        from pyspark import StorageLevel

        resources = resources.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            resources.count()
        except Exception as e:
            resources.unpersist()
            bad = _first_bad_line(session, name) if "MALFORMED" in str(e) else None
            if bad is None:
                raise
            raise InputError(bad) from e
    resources.createOrReplaceTempView(name)
    return resources


def view_frame(session: Any, compiled: CompiledView, source: str = _SOURCE, *, keep_ord: bool = False) -> Any:
    """The DataFrame of ``compiled`` (a view compiled for Spark) over the temp view ``source``."""
    if compiled.engine != "spark":
        raise ValueError(f"view {compiled.name} was compiled for {compiled.engine}, not spark")
    try:
        return session.sql(compiled.sql(f"`{source}`", keep_ord=keep_ord))
    except Exception as e:  # Spark's analysis refused the query: a view the compiler let through
        raise ViewError(f"view {compiled.name}: Spark cannot run it: {spark_message(e)}") from e


def spark_rows(compiled: CompiledView, rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Spark's rows of a view as :func:`trialdesk.sources.fhir_views.run_view` gives DuckDB's."""
    names = [c[0] for c in compiled.columns]
    parse = [c[1] in ("JSON", "JSON[]") for c in compiled.columns]
    out = []
    for row in rows:
        values = list(row)
        d = {n: json_value(v) if p else _plain(v) for n, v, p in zip(names, values, parse, strict=False)}
        if len(values) > len(names):
            d["_errors"] = _plain(values[len(names)])
        out.append(d)
    return out


def run_view_spark(
    view: Any, inputs: Iterable[str | Path] | None = None, *, session: Any = None, source: str = _SOURCE
) -> list[dict[str, Any]]:
    """The rows of ``view`` run by Spark over ``inputs`` (or over the temp view ``source``),
    as :func:`trialdesk.sources.fhir_views.run_view` gives them from DuckDB."""
    from trialdesk.sources.omop import spark_session

    compiled = view if isinstance(view, CompiledView) else compile_view(view, engine="spark")
    session = session if session is not None else spark_session()
    frame = load_resources_spark(session, inputs, source) if inputs is not None else None
    try:
        fetched = view_frame(session, compiled, source).collect()
    except ViewError:
        raise
    except Exception as e:
        raise failure(session, compiled, e, frame, source) from e
    return spark_rows(compiled, fetched)


def failure(session: Any, compiled: CompiledView, e: Exception, resources: Any = None, source: str = _SOURCE) -> Exception:
    """The error to raise for Spark's failure ``e`` running ``compiled``: an :class:`InputError`
    naming the file when a line of the input is not JSON, else a :class:`ViewError`."""
    message = spark_message(e)
    if resources is not None and "MALFORMED" in str(e):
        bad = _first_bad_line(session, source)
        if bad is not None:
            return InputError(bad)
    return ViewError(f"view {compiled.name}: {message}")


def _first_bad_line(session: Any, source: str = _SOURCE) -> str | None:
    """'<file>: not FHIR JSON (…)' for the first input line (or Bundle file) Spark cannot parse, if any."""
    try:
        found = session.sql(f"SELECT file, _text FROM `{source}_raw` WHERE try_parse_json(_text) IS NULL LIMIT 1").collect()
    except Exception:  # the diagnosis failed too: the caller reports Spark's own error
        return None
    if not found:
        return None
    file, text = found[0]
    return f"{file}: not FHIR JSON (not JSON: {text.strip()[:60]!r})"


def spark_message(e: BaseException) -> str:
    """The first line of Spark's message, without its error class and SQLSTATE."""
    text = str(getattr(e, "getMessage", lambda: str(e))() if hasattr(e, "getMessage") else e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    first = re.sub(r"^\[[A-Z_.]+\]\s*", "", first)
    return re.sub(r"\s*SQLSTATE: \w+\.?\s*$", "", first)


def _plain(v: Any) -> Any:
    """A Spark value as DuckDB's Python value: a Row as a dict, a Decimal as a float."""
    if hasattr(v, "asDict"):
        return {k: _plain(x) for k, x in v.asDict().items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v

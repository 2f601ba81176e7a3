"""The OMOP views run by local Spark for the mapping (``trialdesk patient check --engine spark``).

DuckDB reads the input and checks its structure as ever (:func:`.load.load_fhir`): the resources
left, numbered, are written once as Parquet (``ord``, ``rtype``, the resource's JSON text), so
Spark runs the ten views over exactly the resources the DuckDB engine maps, with the same ``ord``
(no join by file and line: a file read again by the Python reader, a manifest's list of files, a
resource left out for its structure are the first pass's, not Spark's to redo). Spark writes each
view's rows as Parquet, with ``_row`` (a resource's rows in their order); the mapping
(:func:`.omop.map_resources` with ``view_rows``) takes a chart's or a chunk's rows from them. The
mapping, the screen and the worksheets stay in DuckDB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from trialdesk.sources.fhir import FhirError

__all__ = ["SparkFailed", "omop_views_on_spark"]

_SOURCE = "trialdesk_resources"


class SparkFailed(FhirError):
    """Spark could not run the views (one line: what failed and what to try)."""


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def omop_views_on_spark(con: duckdb.DuckDBPyConnection, folder: Path, source: str = "fhir_resources") -> dict[str, str]:
    """Run the OMOP views with local Spark over the resources of table ``source`` of ``con``; each
    view's rows are written under ``folder`` (which the caller removes). Returns, by view name, the
    relation of ``con`` that reads them (for :func:`.omop.map_resources`'s ``view_rows``).
    :class:`SparkFailed` when Spark cannot start or fails."""
    from trialdesk.sources.fhir_views.compiler import ViewError
    from trialdesk.sources.fhir_views.omop import compiled_views
    from trialdesk.sources.fhir_views.spark import spark_message, view_frame
    from trialdesk.sources.omop import OmopError, engine_failure, spark_session

    resources = folder / "resources.parquet"
    con.execute(f"""COPY (SELECT ord, rtype, CAST(resource AS VARCHAR) AS resource FROM "{source}" ORDER BY ord)
                    TO {_q(str(resources))} (FORMAT parquet)""")
    try:
        session = spark_session()
    except OmopError as e:
        raise SparkFailed(str(e)) from e
    except Exception as e:  # Java missing or refusing to start
        raise SparkFailed(f"Spark cannot start: {spark_message(e)}") from e
    out: dict[str, str] = {}
    kept: Any = None
    doing = "reading the resources"
    try:
        from pyspark import StorageLevel

        # parsed once, kept for the ten views (memory, then disk)
        kept = (session.read.parquet(str(resources)).selectExpr("ord", "rtype", "parse_json(resource) AS resource")
                .persist(StorageLevel.MEMORY_AND_DISK))  # fmt: skip
        kept.createOrReplaceTempView(_SOURCE)
        for name, view in compiled_views("spark").items():
            doing = f"running view {view.name}"
            rows = view_frame(session, view, _SOURCE, keep_ord=True).selectExpr("*", "monotonically_increasing_id() AS _row")
            rows.write.mode("overwrite").parquet(str(folder / name))
            out[name] = f"read_parquet({_q(str(folder / name / '*.parquet'))})"
    except ViewError as e:
        raise SparkFailed(str(e)) from e
    except Exception as e:
        line = engine_failure(e, doing)
        if line is None:
            raise
        raise SparkFailed(line) from e
    finally:
        if kept is not None:
            kept.unpersist()
        session.catalog.dropTempView(_SOURCE)
    return out

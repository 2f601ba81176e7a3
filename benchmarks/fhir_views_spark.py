"""How fast local Spark runs the ten OMOP-shaped views over a Bulk NDJSON export
(``trialdesk fhir view --engine spark``), against Spark merely reading the same files, and
DuckDB running the same views in the same run.

    python benchmarks/fhir_views_spark.py [--patients 10000]

The export is benchmarks/patient_check.py's (the test charts in turn, ids renamed, about 75
resources a patient, one NDJSON file per resource type). Measured in this one process, in order:

1. **Spark reads**: ``spark.read.text`` of every file, one count (every line read, nothing parsed).
2. **Spark reads and parses**: every line through ``parse_json`` (what each view's query does first).
3. **Spark views**: the export read and parsed once and kept (``load_resources_spark(keep=True)``),
   then each of the ten views (compiled with the value checks, as the mapping runs them) over it,
   its rows brought back as Arrow
   (``toArrow``: what ``fhir view --engine spark`` and a mapping fed by Spark would receive).
4. **DuckDB views**: the DuckDB reader loading the export, then the same ten views
   (``CREATE TEMP TABLE … AS``), as the mapping runs them.

Row counts of the two engines are compared view by view (equality row for row is the tests' job).
The Spark session starts before anything is timed (its start is not in any figure).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from patient_check import write_export  # benchmarks/ is on sys.path when run as a script

from trialdesk.sources.fhir_views import compile_view
from trialdesk.sources.fhir_views.omop import VIEWS
from trialdesk.sources.fhir_views.reader import load_resources
from trialdesk.sources.fhir_views.spark import load_resources_spark, view_frame
from trialdesk.sources.omop import spark_session

FOLDER = Path(__file__).resolve().parents[1] / "src" / "trialdesk" / "sources" / "fhir_views" / "omop"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_000)
    args = ap.parse_args()
    import pyspark

    session = spark_session()
    print(f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
          f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, PySpark {pyspark.__version__} (local[2]), "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    views = {name: json.loads((FOLDER / f).read_text()) for name, f in VIEWS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "export"
        export.mkdir()
        resources = write_export(export, args.patients)
        files = sorted(str(p) for p in export.glob("*.ndjson"))
        size = sum(Path(f).stat().st_size for f in files) / 2**20
        print(f"{args.patients:,} patients: {resources:,} resources in {len(files)} NDJSON files, {size:,.0f} MiB")

        t = time.perf_counter()
        lines = session.read.text(files).count()
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        parsed = session.read.text(files).selectExpr("parse_json(value) AS v").where("v IS NOT NULL").count()
        parse_s = time.perf_counter() - t
        print(f"Spark reads every line: {read_s:.1f} s ({lines:,} lines); reads and parses every line: {parse_s:.1f} s ({parsed:,})")

        spark_rows: dict[str, int] = {}
        t = time.perf_counter()
        kept = load_resources_spark(session, [export], keep=True)  # read and parsed once for the ten views
        print(f"  spark: resources read, parsed and kept: {time.perf_counter() - t:.1f} s", flush=True)
        for name, view in views.items():
            v0 = time.perf_counter()
            table = view_frame(session, compile_view(view, validate=True, engine="spark"), keep_ord=True).toArrow()
            spark_rows[name] = table.num_rows
            print(f"  spark {name}: {table.num_rows:,} rows, {time.perf_counter() - v0:.1f} s", flush=True)
        spark_s = time.perf_counter() - t
        kept.unpersist()

        con = duckdb.connect()
        t = time.perf_counter()
        load_resources(con, [export])
        duck_read_s = time.perf_counter() - t
        duck_rows: dict[str, int] = {}
        for name, view in views.items():
            query = compile_view(view, validate=True).sql('"fhir_resources"', keep_ord=True)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _v_{name} AS {query}")
            row = con.execute(f"SELECT count(*) FROM _v_{name}").fetchone()
            duck_rows[name] = int(row[0]) if row else 0
        duck_s = time.perf_counter() - t

        same = "the same" if spark_rows == duck_rows else f"DIFFERENT ({spark_rows} vs {duck_rows})"
        print(f"Spark, the ten views with their rows as Arrow: {spark_s:.1f} s = {spark_s / read_s:.1f}x reading, "
              f"{spark_s / parse_s:.1f}x reading and parsing; {args.patients / spark_s:,.0f} patients/s")
        print(f"DuckDB, reading the export ({duck_read_s:.1f} s) and the ten views: {duck_s:.1f} s; "
              f"{args.patients / duck_s:,.0f} patients/s; Spark/DuckDB {spark_s / duck_s:.1f}x")
        print(f"row counts of the ten views: {same} ({sum(duck_rows.values()):,} rows); "
              f"load average at the end {os.getloadavg()[0]:.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

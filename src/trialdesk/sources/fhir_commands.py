"""``trialdesk fhir view``: run one SQL-on-FHIR v2 ViewDefinition over FHIR files with DuckDB
(or local Spark, ``--engine spark``)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from trialdesk.console import fail, out

app = typer.Typer(help="FHIR: SQL-on-FHIR v2 views run by DuckDB or Spark.", no_args_is_help=True)


class ViewEngine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


class ViewFormat(StrEnum):
    csv = "csv"
    json = "json"
    parquet = "parquet"


def check_out_path(path: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output path that is a folder or lies under a missing folder."""
    if path.is_dir():
        fail(f"{option} {path} is a folder; give the name of the file to write")
    if not path.parent.exists():
        fail(f"{option} {path}: folder {path.parent} does not exist; create it first")


@app.callback()
def fhir() -> None:
    """FHIR: SQL-on-FHIR v2 views run by DuckDB or Spark."""


@app.command()
def view(
    view_file: Path = typer.Argument(..., help="a ViewDefinition (JSON)"),
    inputs: list[Path] = typer.Argument(..., help="FHIR Bundles (.json), Bulk NDJSON files (.ndjson, .ndjson.gz) or folders"),
    fmt: ViewFormat = typer.Option(ViewFormat.csv, "--format", help="csv, json (one object a line) or parquet"),
    out_file: Path | None = typer.Option(None, "--out", help="write to this file (parquet needs one)"),
    engine: ViewEngine = typer.Option(
        ViewEngine.duckdb, "--engine", help="duckdb, or spark: local Spark reads the files and runs the view (rows come back through Arrow)"
    ),
) -> None:
    """Run one ViewDefinition over FHIR resources and write its rows."""
    import duckdb

    from trialdesk.sources.fhir_views import InputError, ViewError, compile_view, load_view
    from trialdesk.sources.fhir_views.reader import load_resources

    if out_file is not None:
        check_out_path(out_file)
    elif fmt is ViewFormat.parquet:
        fail("--format parquet needs --out FILE")
    try:
        compiled = compile_view(load_view(view_file), engine=engine.value)
    except ViewError as e:
        fail(f"{view_file}: {e}")
    con = duckdb.connect()
    if engine is ViewEngine.spark:
        query = _spark_rows_in_duckdb(con, compiled, inputs)
    else:
        try:
            load_resources(con, inputs)
        except InputError as e:
            fail(str(e))
        query = compiled.sql('"fhir_resources"')
    if out_file is None:
        _print_rows(con, query, fmt)
        return
    options = {"csv": "FORMAT csv, HEADER true", "json": "FORMAT json", "parquet": "FORMAT parquet"}[fmt.value]
    tmp = out_file.with_name(f".{out_file.name}.tmp")
    try:
        con.execute(f"COPY ({query}) TO '{str(tmp).replace(chr(39), chr(39) * 2)}' ({options})")
        tmp.replace(out_file)
    except duckdb.Error as e:
        tmp.unlink(missing_ok=True)
        fail(f"view {compiled.name}: {str(e).splitlines()[0]}")
    rows = con.execute(f"SELECT count(*) FROM ({query})").fetchone()
    out.print(f"wrote {out_file} ({rows[0] if rows else 0:,} rows of view {compiled.name})")


def _spark_rows_in_duckdb(con: object, compiled: object, inputs: list[Path]) -> str:
    """Run ``compiled`` (a view compiled for Spark) with local Spark over ``inputs``; its rows are
    handed to DuckDB (Arrow) as the relation the returned query reads, with DuckDB's column types
    (JSON as JSON), so that they are written exactly as the DuckDB engine's are."""
    import duckdb

    from trialdesk.sources.fhir_views import CompiledView, InputError, ViewError
    from trialdesk.sources.fhir_views.spark import failure, load_resources_spark, view_frame
    from trialdesk.sources.omop import OmopError, engine_failure, spark_session

    assert isinstance(con, duckdb.DuckDBPyConnection) and isinstance(compiled, CompiledView)
    try:
        session = spark_session()
    except OmopError as e:
        fail(str(e))
    try:
        resources = load_resources_spark(session, inputs)
        frame = view_frame(session, compiled)
        try:
            table = frame.toArrow()
        except Exception as e:
            java = engine_failure(e, f"running view {compiled.name}")
            if java is not None and ("ran out of memory" in java or "process stopped" in java):
                fail(java)
            raise failure(session, compiled, e, resources) from e
    except (InputError, ViewError) as e:
        fail(str(e))
    con.register("_spark_rows", table)
    cols = ", ".join(f'CAST("{c[0]}" AS {c[1]}) AS "{c[0]}"' if c[1] in ("JSON", "JSON[]") else f'"{c[0]}"'
                     for c in compiled.columns)  # fmt: skip
    return f"SELECT {cols} FROM _spark_rows"


def _print_rows(con: object, query: str, fmt: ViewFormat) -> None:
    import csv
    import io

    import duckdb

    assert isinstance(con, duckdb.DuckDBPyConnection)
    try:
        if fmt is ViewFormat.json:
            for (line,) in con.execute(f"SELECT CAST(to_json(q) AS VARCHAR) FROM ({query}) q").fetchall():
                typer.echo(line)
            return
        cur = con.execute(query)
        rows = cur.fetchall()
    except duckdb.Error as e:
        fail(str(e).splitlines()[0])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([d[0] for d in cur.description or ()])
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    typer.echo(buf.getvalue(), nl=False)

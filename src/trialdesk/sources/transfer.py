"""Copying an OMOP CDM between backends: DuckDB → PostgreSQL (COPY, in batches) and
DuckDB → Parquet (for Spark). Used to load the same data everywhere for the
cross-backend tests and the benchmarks; DuckDB's own postgres extension would be
simpler but is downloaded at run time, which this project never does."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from trialdesk.sources.omop import OmopDatabase

_PG_TYPES = {
    pa.int8(): "SMALLINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
    pa.float32(): "REAL", pa.float64(): "DOUBLE PRECISION", pa.string(): "TEXT", pa.large_string(): "TEXT",
    pa.bool_(): "BOOLEAN", pa.date32(): "DATE",
}


def _pg_type(t: pa.DataType) -> str:
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_decimal(t):
        return "NUMERIC"
    return _PG_TYPES.get(t, "TEXT")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def copy_to_postgres(db: OmopDatabase, url: str, schema: str, *, batch_rows: int = 500_000,
                     progress: Callable[[str, int], None] | None = None) -> None:
    """Create ``schema`` (dropping it first) and copy every table of ``db`` into it."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {_ident(schema)} CASCADE")
        conn.execute(f"CREATE SCHEMA {_ident(schema)}")
        for name, table in db.tables.items():
            reader = table.to_pyarrow()
            cols = ", ".join(f"{_ident(f.name)} {_pg_type(f.type)}" for f in reader.schema)
            conn.execute(f"CREATE TABLE {_ident(schema)}.{_ident(name)} ({cols})")
            for batch in reader.to_batches(max_chunksize=batch_rows):
                buf = io.BytesIO()
                pacsv.write_csv(pa.Table.from_batches([batch]), buf,
                                write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"))
                with conn.cursor() as cur, cur.copy(
                        f"COPY {_ident(schema)}.{_ident(name)} FROM STDIN WITH (FORMAT csv)") as copy:
                    copy.write(buf.getvalue())
                if progress:
                    progress(name, batch.num_rows)
            conn.execute(f"ANALYZE {_ident(schema)}.{_ident(name)}")


def drop_postgres_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {_ident(schema)} CASCADE")


def copy_to_parquet(db: OmopDatabase, folder: Path) -> None:
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    for name, table in db.tables.items():
        pq.write_table(table.to_pyarrow(), folder / f"{name}.parquet")

"""Connections to an OMOP CDM, whatever the backend, the case of the names, or the schema.

``open_omop`` accepts
- a DuckDB file path (attached read-only, so the screen never writes to the source),
- a folder of Parquet files, one per table (read through DuckDB),
- ``postgresql://user@host:port/db?schema=cdm`` (PostgreSQL through Ibis),
- ``spark:<folder of Parquet files>`` (PySpark in local mode through Ibis),
- an existing Ibis connection (tests, or a FHIR record mapped in memory).

Every table is exposed with lower-case column names, so CDM v5.3 and v5.4 databases
written in upper case (Eunomia) or lower case are read the same way.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import ibis
import ibis.expr.types as ir

REQUIRED: Mapping[str, tuple[str, ...]] = {
    "person": ("person_id", "gender_concept_id", "year_of_birth"),
    "observation_period": ("person_id", "observation_period_start_date", "observation_period_end_date"),
}

#: columns read from each optional table when it is present
OPTIONAL: Mapping[str, tuple[str, ...]] = {
    "condition_occurrence": ("condition_occurrence_id", "person_id", "condition_concept_id", "condition_start_date",
                             "condition_end_date", "condition_source_value"),
    "drug_exposure": ("drug_exposure_id", "person_id", "drug_concept_id", "drug_exposure_start_date",
                      "drug_exposure_end_date", "drug_source_value"),
    "procedure_occurrence": ("procedure_occurrence_id", "person_id", "procedure_concept_id", "procedure_date",
                             "procedure_source_value"),
    "observation": ("observation_id", "person_id", "observation_concept_id", "observation_date", "observation_source_value"),
    "measurement": ("measurement_id", "person_id", "measurement_concept_id", "measurement_date", "value_as_number",
                    "unit_concept_id", "unit_source_value", "range_low", "range_high", "measurement_source_value"),
    "visit_occurrence": ("visit_occurrence_id", "person_id", "visit_start_date"),
    "death": ("person_id", "death_date"),
    "concept": ("concept_id", "concept_name", "vocabulary_id", "concept_code", "standard_concept"),
    "concept_ancestor": ("ancestor_concept_id", "descendant_concept_id"),
}

#: what an absent optional table that no criterion reads directly does to a screen (a clinical
#: table's criteria are unknown; the compiler says which)
ABSENT_EFFECT: Mapping[str, str] = {
    "concept": "value-set codes cannot be turned into concept ids: records are found by their source values only",
    "concept_ancestor": "value sets match their listed concepts only, not descendants",
    "visit_occurrence": "recent activity (--active-within) is read from observation periods",
    "death": "no death is known: a person who has died is screened as if alive",
}

#: trialdesk's own table, not OMOP: per person, the clinical tables whose lack of records proves
#: nothing for that person (``person_id``, ``table_name``, ``reason``). The FHIR mapping writes it
#: (a chart with no record of a kind, see ``trialdesk.sources.fhir_views.chart_domains``); it is
#: read when present, and an OMOP database has none (no note says so).
SILENT_DOMAIN = "silent_domain"


class OmopError(Exception):
    """The source cannot be screened: unreachable, or not an OMOP CDM."""


@dataclass
class OmopDatabase:
    """An OMOP CDM seen through Ibis: ``table(name)`` returns lower-case columns."""

    con: Any
    description: str
    tables: dict[str, ir.Table] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: columns of an optional table that the extract lacks (read as NULL); the engine treats a
    #: criterion part that needs one as unknown, never as absence
    missing_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.tables

    def table(self, name: str) -> ir.Table:
        return self.tables[name]

    @property
    def backend(self) -> str:
        return str(self.con.name)

    def materialize(self, expr: ir.Table, stem: str) -> ir.Table:
        """Compute ``expr`` once into a temporary table ``trialdesk_<stem>`` private to this
        connection (replacing one of that name).

        (Ibis's own ``cache()`` fails to drop its tables on DuckDB 1.4, so the screen names
        and owns its temporary tables; fixed names let a prepared screen re-run its SQL.)"""
        name = f"trialdesk_{stem}"
        if self.backend == "pyspark":
            # computed now and kept without its lineage: a cached DataFrame still carries its whole plan, so every
            # later query naming it made Spark's driver analyse the full single pass again (the candidates'
            # evidence, a union of ~60 parts over it, ran a 4 GiB driver out of heap at 100,000 persons)
            self.con._session.sql(str(self.con.compile(expr))).localCheckpoint(eager=True).createOrReplaceTempView(name)
            return self.con.table(name)
        if self.backend == "duckdb":
            self.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS {self.con.compile(expr)}')
            return self.con.table(name)
        made = self.con.create_table(name, obj=expr, temp=True, overwrite=True)
        self._analyze(name)
        return made

    def _analyze(self, name: str) -> None:
        """PostgreSQL: statistics for a temporary table just made (autovacuum never analyses
        temporary tables). Without them the planner took every temporary table for about a
        thousand rows and each join for a product: merge joins sorting the measurements'
        2.7 M tagged rows on disk, and costs so large that JIT compilation was switched on."""
        if self.backend == "postgres":
            self.execute(f'ANALYZE "{name}"')

    def upload(self, table: Any, stem: str) -> ir.Table:
        """A small lookup table (pyarrow) as ``trialdesk_<stem>`` on the backend."""
        name = f"trialdesk_{stem}"
        if self.backend == "pyspark":
            # rows as Python tuples: through pandas, a NULL in a text column became the text 'NaN'
            rows = [tuple(r.values()) for r in table.to_pylist()]
            frame = self.con._session.createDataFrame(rows, schema=_spark_schema(table.schema))
            frame.createOrReplaceTempView(name)
            return self.con.table(name)
        if self.backend == "duckdb":
            self.register(table, stem)
            return self.con.table(name)
        made = self.con.create_table(name, obj=ibis.memtable(table), temp=True, overwrite=True)
        self._analyze(name)
        return made

    def register(self, table: Any, stem: str) -> None:
        """DuckDB only: expose an Arrow table as the view ``trialdesk_<stem>`` (no copy)."""
        self.con.con.register(f"trialdesk_{stem}", table)

    def execute(self, sql: str) -> None:
        self.con.con.execute(sql)

    def query(self, sql: str) -> Any:
        """DuckDB only: run SQL, return an Arrow table."""
        return self.con.con.execute(sql).fetch_arrow_table()


def _spark_schema(schema: Any) -> str:
    types = {"int64": "bigint", "int32": "int", "string": "string", "double": "double", "date32[day]": "date", "bool": "boolean"}
    return ", ".join(f"{f.name} {types.get(str(f.type), 'string')}" for f in schema)


def _lower_columns(t: ir.Table) -> ir.Table:
    if all(c == c.lower() for c in t.columns):
        return t
    return t.select(**{c.lower(): t[c] for c in t.columns})


_POSITIONAL = re.compile(r"column\d+")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def _header_in_first_row(t: ir.Table, name: str, needed: tuple[str, ...]) -> tuple[ir.Table, str | None]:
    """A table loaded from a file whose header was read as data (DuckDB names its columns ``column0``,
    ``column1``…; Eunomia's ``death`` is shipped this way): where its first row holds distinct column names
    that include the ones trialdesk reads, the table is read with those names and without that row.
    Returns the table (unchanged otherwise) and a note saying what was done."""
    if not t.columns or not all(_POSITIONAL.fullmatch(c) for c in t.columns):
        return t, None
    try:
        first = t.limit(1).to_pyarrow().to_pylist()
    except Exception:  # an unreadable table is reported where it is read, as before
        return t, None
    if not first:
        return t, None
    header = [str(v).strip().lower() if v is not None else "" for v in first[0].values()]
    if (len(set(header)) != len(header) or not all(_IDENTIFIER.fullmatch(h) for h in header)
            or not set(needed) <= set(header)):
        return t, None
    values = list(first[0].values())
    is_header = ibis.and_(*(t[c].cast("string") == str(v) for c, v in zip(t.columns, values, strict=True)))
    body = t.filter(~ibis.coalesce(is_header, False))
    renamed = body.select(**{h: body[c] for c, h in zip(t.columns, header, strict=True)})
    return renamed, (f"table '{name}' has positional column names ({t.columns[0]}…) and its first row holds the"
                     f" CDM's names ({', '.join(v for v in header[:3])}…): the header was loaded as data; it is read"
                     " with those names, without that row")


def _discover(con: Any, description: str, database: Any = None) -> OmopDatabase:
    try:
        names = con.list_tables(database=database) if database is not None else con.list_tables()
    except Exception as exc:  # the driver's own message says what went wrong
        raise OmopError(f"{description}: cannot list tables ({_first_line(exc)})") from None
    by_lower = {n.lower(): n for n in names}
    db = OmopDatabase(con=con, description=description)
    for name in (*REQUIRED, *OPTIONAL):
        if name in by_lower:
            t = con.table(by_lower[name], database=database) if database is not None else con.table(by_lower[name])
            table, note = _header_in_first_row(_lower_columns(t), name, {**REQUIRED, **OPTIONAL}[name])
            db.tables[name] = table
            if note:
                db.notes.append(note)
    for name, columns in REQUIRED.items():
        if name not in db.tables:
            raise OmopError(f"{description}: not an OMOP CDM: required table '{name}' is missing"
                            f" (found: {', '.join(sorted(by_lower)) or 'no tables'})")
        missing = [c for c in columns if c not in db.tables[name].columns]
        if missing:
            raise OmopError(f"{description}: not an OMOP CDM: table '{name}' lacks column(s) {', '.join(missing)}")
    for name, columns in OPTIONAL.items():
        if name not in db.tables:
            if name != "concept_ancestor":  # the value sets say what its absence does, where it does something
                db.notes.append(f"table '{name}' is absent; {ABSENT_EFFECT.get(name, 'criteria that read it are unknown')}")
            continue
        missing = [c for c in columns if c not in db.tables[name].columns]
        if missing and name in ("concept", "concept_ancestor", "death"):
            db.notes.append(f"table '{name}' lacks {', '.join(missing)}; it is not used"
                            + (f": {ABSENT_EFFECT[name]}" if name == "death" else ""))
            del db.tables[name]
        elif missing:
            # CDM v5.3 vs v5.4 differences: absent optional columns become nulls
            t = db.tables[name]
            db.tables[name] = t.mutate(**{c: ibis.null() for c in missing})
            db.missing_columns[name] = tuple(missing)
    if SILENT_DOMAIN in by_lower:
        t = con.table(by_lower[SILENT_DOMAIN], database=database) if database is not None else con.table(by_lower[SILENT_DOMAIN])
        db.tables[SILENT_DOMAIN] = _lower_columns(t)
    return db


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def open_omop(source: str | Path | Any) -> OmopDatabase:
    """Open an OMOP CDM (see the module docstring for accepted forms)."""
    if not isinstance(source, (str, Path)):
        return _discover(source, f"{source.name} connection")
    text = str(source)
    if re.match(r"^postgres(ql)?://", text):
        return _open_postgres(text)
    if text.startswith("spark:"):
        return _open_spark(Path(text.removeprefix("spark:")))
    path = Path(text)
    if not path.exists():
        raise OmopError(f"{text}: no such file or folder; give a DuckDB file, a Parquet folder, or a postgresql:// URL")
    if path.is_dir():
        con = ibis.duckdb.connect()
        files = sorted(path.glob("*.parquet")) + sorted(p for p in path.iterdir() if p.is_dir() and any(p.glob("*.parquet")))
        if not files:
            raise OmopError(f"{text}: folder holds no Parquet files (one per OMOP table, e.g. person.parquet)")
        for f in files:
            pattern = str(f / "*.parquet") if f.is_dir() else str(f)
            con.raw_sql(f"CREATE VIEW \"{f.stem.lower()}\" AS SELECT * FROM read_parquet('{_sql_str(pattern)}')")
        return _discover(con, text)
    kind = _file_kind(path)
    if kind == "sqlite":
        raise OmopError(f"{text}: a SQLite database, which trialdesk does not read; copy the CDM into DuckDB"
                        " (duckdb -c \"ATTACH 'cdm.sqlite' (TYPE sqlite); COPY FROM DATABASE ...\") or into PostgreSQL")
    if kind == "parquet":
        raise OmopError(f"{text}: a single Parquet file; give the folder that holds one Parquet file per OMOP table"
                        " (person.parquet, observation_period.parquet, ...)")
    if kind != "duckdb":
        raise OmopError(f"{text}: not a DuckDB database, a Parquet folder or a postgresql:// URL")
    con = ibis.duckdb.connect()
    try:
        con.raw_sql(f"ATTACH '{_sql_str(str(path))}' AS cdm (READ_ONLY)")
    except Exception as exc:
        message = _first_line(exc)
        if "version" in message.lower() or "storage" in message.lower():
            import duckdb

            raise OmopError(f"{text}: a DuckDB database this DuckDB ({duckdb.__version__}) cannot read ({message});"
                            " it was probably written by a newer DuckDB: export it (EXPORT DATABASE, or Parquet)"
                            " with that version and give the folder") from None
        raise OmopError(f"{text}: cannot be opened as a DuckDB database ({message})") from None
    schemas = [r[0] for r in con.raw_sql(
        "SELECT DISTINCT schema_name FROM duckdb_tables() WHERE database_name = 'cdm'").fetchall()]
    schema = _pick_schema(con, schemas, "cdm")
    return _discover(con, text, database=("cdm", schema))


def _file_kind(path: Path) -> str:
    """What a file is, from its first bytes: duckdb, sqlite, parquet or unknown."""
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise OmopError(f"{path}: cannot be read ({exc.strerror})") from None
    if head.startswith(b"SQLite format 3"):
        return "sqlite"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head[8:12] == b"DUCK":
        return "duckdb"
    return "unknown"


def _pick_schema(con: Any, schemas: list[str], catalog: str) -> str:
    """The schema that holds the person table (``main`` unless the CDM lives elsewhere)."""
    for s in sorted(schemas, key=lambda s: s != "main"):
        names = {n.lower() for n in con.list_tables(database=(catalog, s))}
        if "person" in names:
            return s
    return "main"


def _sql_str(text: str) -> str:
    return text.replace("'", "''")


def _open_postgres(url: str) -> OmopDatabase:
    parsed = urlparse(url)
    schema = parse_qs(parsed.query).get("schema", ["public"])[0]
    clean = parsed._replace(query="").geturl()
    try:
        con = ibis.connect(clean)
    except Exception as exc:
        raise OmopError(f"{clean}: cannot connect ({_first_line(exc)}); is the server running and the URL right?") from None
    # JIT off for this session only: the status statement (about 50 kB of nested CASEs) spent 50 of its 56 s
    # in LLVM compiling its expressions at 100,000 persons (EXPLAIN ANALYZE, PostgreSQL 15)
    con.con.execute("SET jit = off")
    # the (person, value set) aggregate of the measurements hashes 640,000 groups at 100,000 persons: at the
    # default 4 MB it spilled to disk in 85 batches; a screen is one session's batch job, so it may use more
    con.con.execute("SET work_mem = '256MB'")
    return _discover(con, f"{clean} schema {schema}", database=schema)


_SPARK: Any = None

#: the environment variable that sets the local Spark driver's memory (Java's heap), read when the
#: session starts; the driver analyses, plans and collects every statement of the screen
SPARK_MEMORY = "TRIALDESK_SPARK_DRIVER_MEMORY"


def spark_driver_memory() -> str:
    """The driver's memory: ``TRIALDESK_SPARK_DRIVER_MEMORY`` (e.g. ``8g``), 4g by default."""
    text = os.environ.get(SPARK_MEMORY, "").strip().lower() or "4g"
    if not re.fullmatch(r"[1-9]\d*[kmgt]", text):
        raise OmopError(f"{SPARK_MEMORY}={text!r}: give an amount of memory with its unit, e.g. 8g or 12000m")
    return text


def engine_failure(exc: BaseException, doing: str) -> str | None:
    """One line for a failure inside Spark's Java process (its driver out of memory, the
    process gone, an error of its own) while ``doing``; None for any other exception.

    Spark reports these as a Java stack trace; the person running a screen needs what failed
    and what to try."""
    if not type(exc).__module__.startswith(("py4j", "pyspark")):
        return None
    name, message = _java_cause(exc)
    if name.endswith("OutOfMemoryError"):
        return (f"Spark's driver ran out of memory while {doing} ({name}: {message or 'no detail'}); "
                f"give it more with {SPARK_MEMORY} (now {os.environ.get(SPARK_MEMORY) or '4g'}), e.g. {SPARK_MEMORY}=8g, "
                "or screen the same Parquet folder without 'spark:' (DuckDB)")
    if type(exc).__name__ == "Py4JNetworkError" or name == "Py4JNetworkError":
        return f"Spark's Java process stopped while {doing}; look for its own log above, or try again with {SPARK_MEMORY}=8g"
    return f"Spark failed while {doing}: {name}: {message or 'no detail'}"


def _java_cause(exc: BaseException) -> tuple[str, str]:
    """Class name and first line of the innermost Java exception behind ``exc`` (an
    OutOfMemoryError anywhere in the chain wins)."""
    java = getattr(exc, "java_exception", None)
    if java is None:
        text = str(exc).strip().splitlines()
        return type(exc).__name__, text[0] if text else ""
    found: tuple[str, str] = (type(exc).__name__, "")
    try:
        for _ in range(20):  # a chain of causes, never a cycle
            name, message = str(java.getClass().getName()), str(java.getMessage() or "").strip()
            found = (name, message.splitlines()[0] if message else "")
            if name.endswith("OutOfMemoryError") or java.getCause() is None:
                break
            java = java.getCause()
    except Exception:  # the Java process no longer answers: say what is known
        pass
    return found


def spark_session() -> Any:
    """One local SparkSession per process (starting one takes seconds)."""
    global _SPARK
    if _SPARK is None:
        from pyspark.sql import SparkSession

        os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)  # type: ignore[attr-defined]
        _SPARK = (
            SparkSession.builder.master("local[2]")
            .appName("trialdesk")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.driver.memory", spark_driver_memory())
            # the screen's plan is large (a join per value set); Spark writes every query's whole plan as a string for
            # its listeners, which ran the driver out of heap in a long session: keep that text short
            .config("spark.sql.maxPlanStringLength", "64k")
            .getOrCreate()
        )
        _SPARK.sparkContext.setLogLevel("ERROR")
    return _SPARK


def _open_spark(folder: Path) -> OmopDatabase:
    if not folder.is_dir():
        raise OmopError(f"spark:{folder}: no such folder; give a folder of Parquet files, one per OMOP table")
    session = spark_session()
    con = ibis.pyspark.connect(session)
    found = False
    for f in sorted(folder.iterdir()):
        if f.suffix == ".parquet" or (f.is_dir() and any(f.glob("*.parquet"))):
            session.read.parquet(str(f)).createOrReplaceTempView(f.stem.lower())
            found = True
    if not found:
        raise OmopError(f"spark:{folder}: folder holds no Parquet files (one per OMOP table)")
    return _discover(con, f"spark:{folder}")


def observation_bounds(db: OmopDatabase) -> tuple[dt.date | None, dt.date | None]:
    op = db.table("observation_period")
    row = op.aggregate(lo=op.observation_period_start_date.min(), hi=op.observation_period_end_date.max()).to_pyarrow()
    lo, hi = row["lo"][0].as_py(), row["hi"][0].as_py()
    return _as_date(lo), _as_date(hi)


def _as_date(v: Any) -> dt.date | None:
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        return v.date()
    return v  # type: ignore[no-any-return]

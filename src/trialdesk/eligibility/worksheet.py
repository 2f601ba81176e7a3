"""One patient's eligibility worksheet from their FHIR R4 record.

The record (a Bundle, a Bulk Data export folder, or a folder of many Bundles for a batch)
is mapped into OMOP-shaped tables in an in-memory DuckDB and screened by the same engine
that screens whole hospitals, so each criterion has exactly one implementation. The
evidence the engine cites (table and record id) is traced back to the FHIR resource.

Validation: every value the views read is checked against its FHIR R4 type in the same SQL
pass, and each resource's top-level names and required elements against the R4 JSON
Schema; its other elements (narrative, meta, identifiers, …) are neither validated nor
used. A resource that fails is left out and named among the worksheet's problems.
``validate="full"`` (``patient check --validate full``) validates every resource against
the R4 JSON Schema; see ``trialdesk.sources.fhir``.

Reading: a chart pulled from the EHR is taken as complete up to the screening date. Each
person's observed time therefore runs from their first dated record to the as-of date, so
the absence of, say, a rituximab order in the chart counts as absence (the design's convention).
A chart with no record at all of a kind (no medication, no Condition…) and no List stating
there are none is silent about it: the evidence of the parts that read it says what the chart
lacks, and a protocol that reads such charts strictly (``eligibility.silent_chart: unknown``)
makes those parts unknown (``sources/fhir_views/chart_domains.py``).
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import itertools
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import ibis

from trialdesk.criteria.status import Status, overall
from trialdesk.eligibility.screen import Death, ScreenResult, screen
from trialdesk.protocol.loader import load_value_sets
from trialdesk.protocol.model import Protocol
from trialdesk.sources.fhir import Validation, batch_bundles
from trialdesk.sources.fhir_omop import NUMBERED, MappingReport
from trialdesk.sources.omop import open_omop
from trialdesk.terminology.value_set import ValueSet

if TYPE_CHECKING:
    from trialdesk.sources.fhir import Problem
    from trialdesk.sources.fhir_views.omop import BatchContext

#: what runs the OMOP views of a check: DuckDB, or local Spark (the mapping and the screen stay in DuckDB)
Engine = Literal["duckdb", "spark"]
ENGINES: tuple[Engine, ...] = ("duckdb", "spark")


@dataclass
class Worksheet:
    """The eligibility worksheet of one patient, as a PI reads and signs it."""

    protocol: Protocol
    as_of: dt.date
    patient: str | None
    file: str
    criteria: list[dict[str, Any]]
    attestations: list[dict[str, str]]
    problems: list[str] = field(default_factory=list)
    #: the Patient resource's birth date and gender; kept out of :meth:`to_json` (the worksheet cites evidence, not identity)
    birth_date: dt.date | None = None
    gender: str | None = None
    #: a death recorded up to the screening date (its sentence is also among the problems, where the PI reads it)
    death: Death | None = None

    @property
    def overall(self) -> str:
        verdict = overall({c["id"]: Status.from_label(c["status"]) for c in self.criteria}, self.protocol.eligibility.roles)
        return Death.verdict(self.death, verdict)

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": self.overall,
            "protocol": self.protocol.identification.nct_id,
            "protocol_version": self.protocol.version,
            "as_of": self.as_of.isoformat(),
            "patient": self.patient,
            "file": self.file,
            "criteria": self.criteria,
            "attestations": self.attestations,
            "problems": self.problems,
            **({"death": {"date": self.death.on.isoformat() if self.death.on else None, "note": self.death.sentence()}}
               if self.death is not None else {}),
        }


def _observe_until(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> None:
    """Extend each person's observed time so that it covers the as-of date. A person with no
    dated clinical record has no observed time at all: an empty chart proves no absence, so
    the criteria that need records stay unknown (the worksheet says so)."""
    con.execute(
        """
        CREATE OR REPLACE TABLE observation_period AS
        SELECT row_number() OVER (ORDER BY o.person_id) AS observation_period_id, o.person_id,
               least(min(o.observation_period_start_date), $as_of) AS observation_period_start_date,
               greatest(max(o.observation_period_end_date), $as_of) AS observation_period_end_date,
               32817 AS period_type_concept_id
        FROM observation_period o
        GROUP BY o.person_id
        """,
        {"as_of": as_of},
    )


#: the note on the worksheet of a chart with no dated clinical record
NO_RECORDS = ("no clinical records in this chart (only the Patient): nothing can be taken as absent, so every criterion "
              "that needs a diagnosis, a drug, a lab or a procedure is unknown")


def _provenance(con: duckdb.DuckDBPyConnection, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
    """The FHIR resource of each (table, record id) in ``wanted`` (only those: a chart maps thousands of records,
    its evidence cites a few dozen)."""
    if not wanted:
        return {}
    tables, ids = zip(*sorted(wanted), strict=True)
    rows = con.execute("""SELECT f.table_name, f.record_id, f.resource_type, f.resource_id, f.file, f.line, f.display
                          FROM fhir_record f SEMI JOIN (SELECT unnest($1::VARCHAR[]) AS table_name, unnest($2::BIGINT[]) AS record_id) w
                          ON w.table_name = f.table_name AND w.record_id = f.record_id""", [list(tables), list(ids)]).fetchall()
    return {(t, int(r)): {"resource": f"{rt}/{rid}", "file": f, "line": ln, "display": d} for t, r, rt, rid, f, ln, d in rows}


def _cited(item: dict[str, Any]) -> tuple[str, int]:
    return item.get("table", ""), int(item.get("record_id") or 0)


def _enrich(evidence: list[dict[str, Any]], provenance: dict[tuple[str, int], dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in evidence:
        src = provenance.get(_cited(item))
        item = {k: v for k, v in item.items() if v is not None}
        if src is not None:
            item["resource"] = src["resource"]
            if src.get("display"):  # the chart's own wording for the code it cites
                item["display"] = src["display"]
        out.append(item)
    return out


class Batch(list[Worksheet]):
    """What a check gives: its worksheets, in reading order (it is the list of them), and the
    problems that belong to none of their patients (a Bundle with no Patient, a line that is not
    JSON, a record whose subject is in no file…).

    A check with one worksheet (one patient's chart) keeps those problems on it, as the PI reads
    them there; a batch of several has them once, here, for its summary, and no worksheet repeats
    them (each worksheet of a 10,000-patient export used to carry every one of them)."""

    def __init__(self, sheets: list[Worksheet], problems: list[str]):
        super().__init__(sheets)
        if len(sheets) == 1:
            sheets[0].problems.extend(problems)
            problems = []
        self.problems: list[str] = problems

    def summary(self) -> dict[str, Any]:
        """The batch at a glance: how many patients, how many of each overall status, and the
        problems that belong to no patient (each once)."""
        counts = {label: 0 for label in ("eligible", "needs_review", "not_eligible")}
        for sheet in self:
            counts[sheet.overall] = counts.get(sheet.overall, 0) + 1
        return {"patients": len(self), "overall": counts, "problems": list(self.problems)}


def worksheets(result: ScreenResult, report: MappingReport, con: duckdb.DuckDBPyConnection) -> list[Worksheet]:
    protocol = result.protocol
    texts = {c.id: c.text for c in protocol.eligibility.criteria}
    items = [{"criterion_id": cid, "id": aid, "question": q} for cid, aid, q in protocol.attestation_items()]
    by_person: dict[int, list[dict[str, Any]]] = {}
    rows = result.person_criteria().to_pylist()
    provenance = _provenance(con, {_cited(item) for row in rows for item in row["evidence"]})
    for row in rows:
        by_person.setdefault(row["person_id"], []).append(
            {"id": row["criterion_id"], "text": texts[row["criterion_id"]], "status": row["status"],
             "evidence": _enrich(row["evidence"], provenance)})
    observed = {r[0] for r in con.execute("SELECT DISTINCT person_id FROM observation_period").fetchall()}
    out = []
    for person in report.persons:
        problems = [str(p) for p in report.problems_for(person.person_id)]
        if person.person_id not in observed:
            problems.append(NO_RECORDS)
        death = result.death(person.person_id)
        if death is not None:
            problems.insert(0, f"Patient: {death.sentence()}")
        out.append(Worksheet(protocol=protocol, as_of=result.anchors.as_of, patient=person.patient_id, file=person.file,
                             criteria=by_person.get(person.person_id, []), attestations=items, problems=problems,
                             birth_date=person.birth_date, gender=person.gender, death=death))
    return out


#: a folder of at least this many Bundles is checked in parts, in ``workers`` processes,
#: when ``workers`` > 1; below it, forking and each part's fixed screen cost (a few hundred ms)
#: cost about what the second process saves (see BENCHMARKS.md)
PARALLEL_FROM_BUNDLES = 200


def check_fhir(source: str | Path | list[Path], protocol: Protocol, as_of: dt.date, *,
               value_sets: dict[str, ValueSet] | None = None, workers: int = 1,
               validate: Validation = "read", chunk: int | None = None, engine: Engine = "duckdb") -> Batch:
    """Worksheets for every patient in ``source`` (a Bundle, an export folder, a folder of
    Bundles, or a list of files), screened together in one batch; the problems that belong to
    no patient are on the only worksheet, or once on the :class:`Batch` when there are several.

    ``workers`` > 1 uses that many forked processes (the command line does; a caller inside a
    threaded server should not fork, so the default is 1): a folder of many Bundles is
    checked in parts, each process reading, validating, mapping and screening its part in
    its own DuckDB, with the same worksheets, in the same order, as one process gives; a
    single large record is validated in that many processes. ``validate``: the elements
    trialdesk reads (the default) or every element (``"full"``); see ``trialdesk.sources.fhir``.

    ``chunk``: check ``chunk`` patients at a time (:mod:`trialdesk.eligibility.chunks`), so that memory is
    bounded by the chunk rather than the export, with the same worksheets; a folder of many Bundles that
    ``workers`` check in parts is not chunked.

    ``engine``: what runs the OMOP views: DuckDB (the default), or local Spark (``"spark"``,
    :mod:`trialdesk.sources.fhir_views.spark_omop`: once over the whole input, in one process, also
    when checked in chunks), with the same worksheets."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    value_sets = value_sets if value_sets is not None else load_value_sets()  # parsed once per state of the folder
    bundles = batch_bundles(source)
    if workers > 1 and bundles is not None and len(bundles) >= PARALLEL_FROM_BUNDLES and engine == "duckdb":
        return _check_in_parts(bundles, protocol, as_of, value_sets, workers, validate)
    sources = source if isinstance(source, list) else [source]
    if chunk is not None:
        sheets, problems = check_chunked(sources, protocol, as_of, value_sets, validate, chunk, engine)
        return Batch([s for part in sheets for s in part], problems())
    return Batch(*_check(sources, protocol, as_of, value_sets, validate=validate, engine=engine))


def check_chunked(sources: list[Path] | list[str | Path], protocol: Protocol, as_of: dt.date, value_sets: dict[str, ValueSet] | None,
                  validate: Validation, chunk: int, engine: Engine = "duckdb") -> tuple[Iterator[list[Worksheet]], Callable[[], list[str]]]:
    """``sources`` checked ``chunk`` patients at a time: the worksheets of each chunk as it is checked,
    and (once they are all made) the problems that belong to no patient; see :mod:`trialdesk.eligibility.chunks`."""
    from trialdesk.eligibility.chunks import check_in_chunks

    return check_in_chunks(list(sources), protocol, as_of, value_sets, validate, chunk, engine)


#: a single file up to this size (a 2,000-resource Bundle is ~1.7 MB) is checked by DuckDB on one thread: for one chart
#: DuckDB's second thread cost more than it gave, in CPU and in wall time (BENCHMARKS.md, "Ninth session")
ONE_THREAD_UP_TO_BYTES = 16 << 20


def _one_chart(sources: list[Path] | list[str | Path]) -> bool:
    if len(sources) != 1:
        return False
    try:
        path = Path(sources[0])
        return path.is_file() and path.stat().st_size <= ONE_THREAD_UP_TO_BYTES
    except OSError:  # reading it says what is wrong
        return False


def _check(sources: list[Path] | list[str | Path], protocol: Protocol, as_of: dt.date, value_sets: dict[str, ValueSet] | None,
           number_after: Callable[[dict[str, int]], Mapping[str, int]] | None = None,
           validate: Validation = "read", engine: Engine = "duckdb") -> tuple[list[Worksheet], list[str]]:
    """The worksheets of the charts in ``sources`` (read by DuckDB, mapped by the SQL-on-FHIR
    views, run by ``engine``), and the problems that belong to none of their patients, in the order
    of the files they were found in."""
    from trialdesk.sources.fhir_views.load import load_fhir
    from trialdesk.terminology import units

    units.warm_up()  # the UCUM registry (about 1.5 s, once a process) builds while DuckDB reads the chart
    con = duckdb.connect(config={"threads": 1} if _one_chart(sources) else {})
    spark = tempfile.TemporaryDirectory(prefix="trialdesk-spark-") if engine == "spark" else None
    try:
        reading = load_fhir(con, sources, validate=validate)
        view_rows = None
        if spark is not None:
            from trialdesk.sources.fhir_views.spark_omop import omop_views_on_spark

            view_rows = omop_views_on_spark(con, Path(spark.name))
        sheets, report = screen_loaded(con, reading.problems, reading.skipped_types, protocol, as_of, value_sets, number_after,
                                       view_rows=view_rows)
    finally:
        con.close()
        if spark is not None:
            spark.cleanup()
    attributed = {id(p) for problems in report.person_problems.values() for p in problems}
    order = {f: i for i, f in enumerate(reading.files)}
    general = sorted((p for p in report.problems if id(p) not in attributed), key=lambda p: order.get(p.file, len(order)))
    return sheets, [str(p) for p in general]


def screen_loaded(con: duckdb.DuckDBPyConnection, problems: list[Problem], skipped_types: Counter[str], protocol: Protocol,
                  as_of: dt.date, value_sets: dict[str, ValueSet] | None,
                  number_after: Callable[[dict[str, int]], Mapping[str, int]] | None = None,
                  batch: BatchContext | None = None, view_rows: Mapping[str, str] | None = None,
                  ) -> tuple[list[Worksheet], MappingReport]:
    """Map the resources read into ``fhir_resources`` of ``con``, screen them, and make their worksheets
    (``problems`` found while reading come first; ``batch``: a chunk of a larger export, see
    :mod:`trialdesk.eligibility.chunks`; ``view_rows``: the OMOP views' rows run by Spark, see
    :func:`trialdesk.sources.fhir_views.omop.map_resources`)."""
    from trialdesk.sources.fhir_views.omop import map_resources

    report = map_resources(con, problems=problems, skipped_types=skipped_types, number_after=number_after, batch=batch,
                           view_rows=view_rows)
    _observe_until(con, as_of)
    db = open_omop(_backend(con))
    result = screen(db, protocol, as_of, value_sets=value_sets, check_bounds=False, few=len(report.persons) <= FEW_PERSONS)
    return worksheets(result, report, con), report


#: up to this many patients in one DuckDB (a chart, a chunk of an export), the screen writes its statements for a
#: small input (``screen(few=True)``): see BENCHMARKS.md, "Ninth session"
FEW_PERSONS = 5_000


@functools.cache
def _dtype(column_type: str, nullable: bool) -> Any:
    from ibis.backends.sql.datatypes import DuckDBType

    return DuckDBType.from_string(column_type, nullable=nullable)


def _backend(con: duckdb.DuckDBPyConnection) -> Any:
    """An Ibis backend over ``con`` that knows the schema of every table the mapping wrote from one query.

    Ibis asks DuckDB each table's schema (a DESCRIBE and the parsing of every column's type, ~5 ms a
    table) when the OMOP database is opened: a dozen tables, every chart. The schemas here are those
    DESCRIBE gives (names, types, nullability, in column order); a table not in the main schema then
    (the screen's own temporary tables) is asked for as before."""
    from ibis.expr import schema as sch

    backend = ibis.duckdb.from_connection(con)
    columns: dict[str, list[tuple[str, str, bool]]] = {}
    for table, column, column_type, nullable in con.execute(
            """SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns()
               WHERE database_name = current_database() AND schema_name = 'main' ORDER BY table_name, column_index""").fetchall():
        columns.setdefault(table, []).append((column, column_type, nullable))
    ask = backend.get_schema

    def get_schema(table_name: str, *, catalog: str | None = None, database: str | None = None) -> Any:
        if catalog is None and database is None and table_name in columns:
            return sch.Schema({c: _dtype(t, n) for c, t, n in columns[table_name]})
        return ask(table_name, catalog=catalog, database=database)

    backend.get_schema = get_schema
    return backend


# --------------------------------------------------------------------------- a batch in parts


@dataclass
class _Batch:
    """What forked processes inherit for checking a batch in parts (set while the pool runs)."""

    parts: list[list[Path]]
    protocol: Protocol
    as_of: dt.date
    value_sets: dict[str, ValueSet] | None
    validate: Validation
    #: rows of each numbered table before part k: ``before[k * len(NUMBERED) + j]``; -1 when part k - 1 failed
    before: Any
    #: set once ``before`` holds part k's numbers
    ready: list[Any]


_BATCH: list[_Batch] = []

# a worksheet without its protocol and attestations (the parent has them): patient, file, criteria, problems, birth date, gender
_Sheet = tuple[str | None, str, list[dict[str, Any]], list[str], dt.date | None, str | None]


def _check_in_parts(bundles: list[Path], protocol: Protocol, as_of: dt.date, value_sets: dict[str, ValueSet] | None,
                    workers: int, validate: Validation) -> Batch:
    """Check a batch of Bundles in contiguous parts, in ``workers`` forked processes.

    Each process reads, validates, maps and screens its part in its own DuckDB. Rows are
    numbered as the whole batch would number them (part k waits, after mapping, for the row
    counts of parts before it), so the evidence cites the same record ids in the same order,
    and each worksheet comes back in reading order: the worksheets are those one process
    gives. A file that cannot be read raises the same FhirError as in one process: the first
    such file in reading order."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # the screen's SQL is built once, here, on the first chart (it depends only on the protocol,
    # the dates and the tables' columns; the first chart also loads what only data need, such
    # as unit conversions), and the processes inherit it
    _check(bundles[:1], protocol, as_of, value_sets, validate=validate)
    # each part pays the screen's fixed cost once: two parts a process, for balance
    n_parts = min(len(bundles), workers * 2)
    bounds = [len(bundles) * k // n_parts for k in range(n_parts + 1)]
    parts = [bundles[a:b] for a, b in itertools.pairwise(bounds)]
    ctx = mp.get_context("fork")
    before = ctx.Array("q", (n_parts + 1) * len(NUMBERED), lock=False)
    ready = [ctx.Event() for _ in range(n_parts + 1)]
    ready[0].set()
    _BATCH[:] = [_Batch(parts, protocol, as_of, value_sets, validate, before, ready)]
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [pool.submit(_check_part, k) for k in range(n_parts)]
            try:
                results = [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    finally:
        _BATCH.clear()
    items = [{"criterion_id": cid, "id": aid, "question": q} for cid, aid, q in protocol.attestation_items()]
    sheets = [Worksheet(protocol=protocol, as_of=as_of, patient=patient, file=file, criteria=criteria, attestations=items,
                        problems=problems, birth_date=birth, gender=gender)
              for part, _ in results for patient, file, criteria, problems, birth, gender in part]
    return Batch(sheets, [p for _, part_general in results for p in part_general])


def _check_part(k: int) -> tuple[list[_Sheet], list[str]]:
    # a process of the pool: the cyclic garbage collector would scan every resource of the
    # part (and the parent's objects, copying their pages) for cycles the check does not make
    gc.disable()
    b = _BATCH[0]
    width = len(NUMBERED)

    def number_after(counts: dict[str, int]) -> dict[str, int]:
        b.ready[k].wait()
        first = list(b.before[k * width:(k + 1) * width])
        if first and first[0] < 0:
            raise _EarlierPartFailed
        b.before[(k + 1) * width:(k + 2) * width] = [f + counts[t] for f, t in zip(first, NUMBERED, strict=True)]
        b.ready[k + 1].set()
        return dict(zip(NUMBERED, first, strict=True))

    try:
        sheets, general = _check(b.parts[k], b.protocol, b.as_of, b.value_sets, number_after, validate=b.validate)
    except BaseException:
        if not b.ready[k + 1].is_set():
            b.before[(k + 1) * width] = -1
            b.ready[k + 1].set()
        raise
    return [(s.patient, s.file, s.criteria, s.problems, s.birth_date, s.gender) for s in sheets], general


class _EarlierPartFailed(Exception):
    """A part before this one could not be checked; its error is the one reported."""

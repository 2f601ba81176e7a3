"""A large export checked in chunks of patients, so that memory is bounded by the chunk, not the export.

A first pass reads every file into a DuckDB database on disk (DuckDB's JSON reader; the same
checks as :func:`trialdesk.sources.fhir_views.load.load_fhir`: not JSON, not FHIR, another
version, R4 structure) and places each resource with its patient: a Patient by itself, a record
by its ``subject`` (or ``patient``) reference, resolved as the mapping resolves it (``Type/id``,
a full URL, ``urn:uuid``, within its Bundle or export), a Medication with every record that names
it. Patients are taken in reading order, ``chunk`` at a time. Then each chunk is mapped, screened
and turned into worksheets in an in-memory DuckDB of its own, and dropped.

What crosses chunks is carried over, so that the worksheets are those of the whole export checked
at once: the export's first resource of each key (a later one with the same ``Type/id`` is a
duplicate, left out and named, even in another chunk); how many patients each Bundle or export
holds (a problem of a scope with one patient is that patient's); the numbering of the rows (each
chunk after the ones before it); the problems that belong to no patient (the batch's, once, in the
order the whole export gives them). A record that names no patient of the export (a missing
Patient, no subject) goes with the first patient of its Bundle or export, where it is named as in
one pass.

With ``engine="spark"`` the OMOP views run once, by local Spark, over the whole export read by the
first pass (:mod:`trialdesk.sources.fhir_views.spark_omop`), before the export is split; each chunk's
mapping takes its resources' rows from theirs.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from trialdesk.protocol.model import Protocol
from trialdesk.sources.fhir import Validation
from trialdesk.sources.fhir_omop import NUMBERED
from trialdesk.terminology.value_set import ValueSet

if TYPE_CHECKING:
    from trialdesk.eligibility.worksheet import Engine, Worksheet

#: patients a chunk holds by default: 0, the whole input at once. Checking in chunks (``--chunk 2000``:
#: ~75 resources a patient, a chunk's DuckDB and worksheets within a few hundred MB) halved the peak at
#: 10,000 patients but was slower in the one measurement made (35 against 148 patients/s, across sessions);
#: its first pass now holds at 100,000 patients (1.5 GiB; the whole command's peak there is not yet measured,
#: BENCHMARKS.md, eighth session): opt-in until it is faster
DEFAULT_CHUNK = 0

#: what the first pass's DuckDB may hold in memory before it spills to its temporary folder
FIRST_PASS_MEMORY = "1GB"


def _placement_sql(chunk: int) -> list[str]:
    """SQL over ``fhir_resources`` (on disk): each resource's chunk(s), the export's first resource of
    each key, the keys of each chunk, and the patients of each scope."""
    return [
        """CREATE TABLE _r AS SELECT ord, rtype, scope, full_url,
               CASE WHEN json_type(resource -> 'id') = 'VARCHAR' THEN resource ->> 'id' END AS id,
               coalesce(resource -> 'subject' ->> 'reference', resource -> 'patient' ->> 'reference') AS subj,
               resource -> 'medicationReference' ->> 'reference' AS med
           FROM fhir_resources""",
        """CREATE TABLE _keys_all AS SELECT scope, rtype || '/' || id AS key, ord FROM _r WHERE id IS NOT NULL
           UNION ALL SELECT scope, full_url, ord FROM _r WHERE full_url IS NOT NULL""",
        "CREATE TABLE _first AS SELECT scope, key, min(ord) AS ord FROM _keys_all GROUP BY ALL",
        """CREATE TABLE _persons AS SELECT ord, scope, id, full_url, (row_number() OVER (ORDER BY ord) - 1) // $chunk AS chunk
           FROM _r WHERE rtype = 'Patient' AND ord NOT IN (
               SELECT k.ord FROM _keys_all k JOIN _first f USING (scope, key) WHERE k.ord <> f.ord)""".replace("$chunk", str(chunk)),
        """CREATE TABLE _pkey AS SELECT scope, key, min(chunk) AS chunk FROM (
               SELECT scope, 'Patient/' || id AS key, chunk FROM _persons WHERE id IS NOT NULL
               UNION ALL SELECT scope, full_url, chunk FROM _persons WHERE full_url IS NOT NULL) GROUP BY ALL""",
        # a Patient (a duplicate one too) by its keys; a record by its subject, as the mapping resolves it.
        # One equality join per key: a join on "key = a OR key = b" is one on the scope alone, every Patient
        # against every patient of its export, then filtered (47 s at 10,000 patients, hours at 100,000)
        """CREATE TABLE _place AS
           SELECT ord, min(chunk) AS chunk FROM (
               SELECT r.ord, p.chunk FROM _r r JOIN _pkey p ON p.scope = r.scope AND p.key = 'Patient/' || r.id
               WHERE r.rtype = 'Patient'
               UNION ALL
               SELECT r.ord, p.chunk FROM _r r JOIN _pkey p ON p.scope = r.scope AND p.key = r.full_url
               WHERE r.rtype = 'Patient') GROUP BY ord
           UNION ALL
           SELECT r.ord, coalesce(k1.chunk, k2.chunk) FROM _r r
               LEFT JOIN _pkey k1 ON k1.scope = r.scope AND k1.key = r.subj
               LEFT JOIN _pkey k2 ON k2.scope = r.scope AND k2.key = fd_refkey(r.subj)
           WHERE r.rtype <> 'Patient' AND coalesce(k1.chunk, k2.chunk) IS NOT NULL""",
        # a Medication goes with every record that names it
        """INSERT INTO _place SELECT DISTINCT coalesce(i1.ord, i2.ord), p.chunk FROM _r r JOIN _place p USING (ord)
               LEFT JOIN _first i1 ON i1.scope = r.scope AND i1.key = r.med
               LEFT JOIN _first i2 ON i2.scope = r.scope AND i2.key = fd_refkey(r.med)
           WHERE r.med IS NOT NULL AND coalesce(i1.ord, i2.ord) IS NOT NULL
             AND coalesce(i1.ord, i2.ord) NOT IN (SELECT ord FROM _place)""",
        # anything else (a missing Patient, no subject, a Medication nobody names): with the first patient of its scope
        """INSERT INTO _place SELECT r.ord, coalesce((SELECT min(chunk) FROM _persons p WHERE p.scope = r.scope), 0)
           FROM _r r WHERE r.ord NOT IN (SELECT ord FROM _place)""",
        """CREATE TABLE _placed AS SELECT p.chunk, f.ord, f.rtype, f.resource, f.file, f.line, f.full_url, f.scope
           FROM _place p JOIN fhir_resources f USING (ord) ORDER BY p.chunk, f.ord""",
        """CREATE TABLE _chunk_index AS SELECT DISTINCT p.chunk, f.scope, f.key, f.ord
           FROM _keys_all k JOIN _place p USING (ord) JOIN _first f USING (scope, key) ORDER BY p.chunk""",
        "DROP TABLE fhir_resources",
    ]


def check_in_chunks(sources: list[str | Path], protocol: Protocol, as_of: dt.date, value_sets: dict[str, ValueSet] | None,
                    validate: Validation, chunk: int, engine: Engine = "duckdb",
                    ) -> tuple[Iterator[list[Worksheet]], Callable[[], list[str]]]:
    """Check ``sources`` ``chunk`` patients at a time. Returns an iterator of each chunk's
    worksheets (made as it is checked), and a function giving, once the iterator is exhausted,
    the problems that belong to no patient, in the order one pass gives them."""
    if chunk < 1:
        raise ValueError(f"a chunk holds at least one patient, not {chunk}")
    from trialdesk.sources.fhir_views.load import load_fhir
    from trialdesk.sources.fhir_views.omop import _MACROS, BatchContext

    folder = tempfile.TemporaryDirectory(prefix="trialdesk-batch-")
    disk = duckdb.connect(str(Path(folder.name) / "export.duckdb"),
                          config={"memory_limit": FIRST_PASS_MEMORY, "temp_directory": str(Path(folder.name) / "spill")})
    view_rows = None
    try:
        reading = load_fhir(disk, sources, validate=validate)
        if engine == "spark":  # the views once over the whole export, their rows (on disk) taken by each chunk
            from trialdesk.sources.fhir_views.spark_omop import omop_views_on_spark

            spark_folder = Path(folder.name) / "spark"
            spark_folder.mkdir()
            view_rows = omop_views_on_spark(disk, spark_folder)
        for stmt in _MACROS.split(";\n"):
            if stmt.strip():
                disk.execute(stmt)
        for sql in _placement_sql(chunk):
            disk.execute(sql)
        scope_persons = dict(disk.execute("SELECT scope, count(*) FROM _persons GROUP BY scope").fetchall())
        n_chunks = disk.execute("SELECT coalesce(max(chunk) + 1, 0) FROM _place").fetchone()[0]  # type: ignore[index]
    except BaseException:
        disk.close()
        folder.cleanup()
        raise
    order = {f: i for i, f in enumerate(reading.files)}
    general: dict[str, tuple[object, ...]] = {}
    attributed: set[int] = set()
    totals = dict.fromkeys(NUMBERED, 0)

    def number_after(counts: dict[str, int]) -> dict[str, int]:
        before = dict(totals)
        for t in NUMBERED:
            totals[t] += counts[t]
        return before

    def chunks() -> Iterator[list[Worksheet]]:
        from trialdesk.eligibility.worksheet import screen_loaded

        try:
            for k in range(n_chunks):
                con = duckdb.connect()
                try:
                    rows = disk.execute("""SELECT ord, rtype, resource::VARCHAR AS resource, file, line, full_url, scope
                                           FROM _placed WHERE chunk = ? ORDER BY ord""", [k]).fetch_arrow_table()
                    first = disk.execute("SELECT scope, key, ord FROM _chunk_index WHERE chunk = ?", [k]).fetch_arrow_table()
                    con.execute("""CREATE TABLE fhir_resources AS SELECT ord, rtype, CAST(resource AS JSON) AS resource, file,
                                   line, full_url, scope FROM rows ORDER BY ord""")
                    con.execute("CREATE TEMP TABLE _batch_index AS SELECT * FROM first")
                    del rows, first
                    sheets, report = screen_loaded(con, reading.problems, reading.skipped_types, protocol, as_of, value_sets,
                                                   number_after, BatchContext("_batch_index", scope_persons), view_rows)
                finally:
                    con.close()
                mine = {id(p) for problems in report.person_problems.values() for p in problems}
                attributed.update(mine)
                for p in report.problems:
                    if id(p) not in mine and report.problem_keys.get(id(p), (0,))[0] != 0:
                        key = (order.get(p.file, len(order)), *report.problem_keys[id(p)])
                        general.setdefault(str(p), key)
                yield sheets
        finally:
            disk.close()
            folder.cleanup()

    def problems() -> list[str]:
        found = dict(general)
        for i, p in enumerate(reading.problems):
            if id(p) not in attributed:
                found.setdefault(str(p), (order.get(p.file, len(order)), 0, i))
        return [text for text, _ in sorted(found.items(), key=lambda item: item[1])]

    return chunks(), problems


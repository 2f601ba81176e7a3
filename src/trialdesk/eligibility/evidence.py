"""Evidence, looked up after the statuses and only for the persons someone will read: the
records whose ids the single pass kept for each leaf, read back with their dates, codes,
values, units, ranges and a note on how each decided.

Because the ids come from the population's own pass and the records are re-read with the
same definitions (:mod:`trialdesk.eligibility.leaves`), a person's evidence is the same
whether it was asked for the candidates, for everyone, or for that person alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from trialdesk.criteria.language import Duration, Measurement, Occurrence
from trialdesk.eligibility import leaves as lv
from trialdesk.eligibility.plan import DOMAINS

if TYPE_CHECKING:
    from trialdesk.eligibility.compiler import Compiler

#: one cited record, flat, with the leaf that cited it
FLAT_SCHEMA = pa.schema([
    ("person_id", pa.int64()), ("leaf", pa.int32()), ("table", pa.string()), ("record_id", pa.int64()),
    ("date", pa.date32()), ("concept_id", pa.int64()), ("source_value", pa.string()), ("value", pa.float64()),
    ("unit", pa.string()), ("range_low", pa.float64()), ("range_high", pa.float64()), ("note", pa.string()),
])


def _note(compiler: Compiler, leaf: lv.Leaf, t: ir.Table, contexts: dict[str, lv.ContextColumns]) -> Any:
    node = leaf.node
    if isinstance(node, Occurrence):
        note = lv.occurrence_note(leaf, t, t)
    elif isinstance(node, Duration):
        note = lv.duration_note(leaf, t, t)
    else:
        assert isinstance(node, Measurement)
        factor = t[f"f{leaf.key}"] if f"f{leaf.key}" in t.columns else ibis.null("float64")
        ctx = contexts.get(node.context.model_dump_json()) if node.context is not None else None
        note = lv.result_note(node, t, factor, compiler.answers(), ctx)
    note = lv.undated_note(t, note)
    by_name = "matched by the name '" + t.matched_name + "' in the record's text only, not by a code"
    if compiler.few:
        # the same text with the note written twice in the SQL, not three times (DuckDB binds and optimises every
        # copy in each of the union's ~55 parts): a text joined to NULL is NULL, so ``by_name`` is NULL where
        # nothing was matched by name, and ``by_name; note`` NULL where there is no note
        return ibis.coalesce(by_name + "; " + note, by_name, note)
    return ibis.cases((t.matched_name.notnull() & note.notnull(), by_name + "; " + note),
                      (t.matched_name.notnull(), by_name), else_=note)


def flat_evidence(compiler: Compiler, persons: pa.Table | None) -> pa.Table:
    """Cited records of ``persons`` (a table with ``person_id``), or of everyone when None.

    Each table's records of those persons are tagged and joined with their per-person
    quantities once, into a temporary table; every leaf's citations are then picked from
    it (a union over the tagged query itself made the backend, and Ibis compiling it,
    repeat that work for every leaf: 8 s of the 11 s the evidence took at 100,000 persons).
    Only the records some leaf cites are kept. On every backend the union then reads small
    tables: on Spark a union over the joined relation itself carried the whole single pass
    once per leaf and ran the driver out of heap while Spark analysed it."""
    db = compiler.db
    pset = db.upload(persons.select(["person_id"]), "evidence_persons") if persons is not None else None
    restricted = persons is not None
    known = compiler.prepared.evidence_sql.get(restricted) if db.backend == "duckdb" else None
    if known is not None:
        for stem, sql in known[0]:
            db.execute(f'CREATE OR REPLACE TEMP TABLE "trialdesk_{stem}" AS {sql}')
        return _unordered(compiler, known[1]).select(FLAT_SCHEMA.names).cast(FLAT_SCHEMA)
    steps: list[tuple[str, str]] = []
    parts: list[ir.Table] = []
    for domain, agg in compiler.aggregates.items():
        spec = DOMAINS[domain]
        compiler.progress(f"reading the evidence in {spec.table}")
        rows = compiler.rows(domain)
        if pset is not None:
            rows = rows.filter(rows.person_id.isin(pset.person_id))
        t, contexts = compiler.tagged(domain, rows)
        joined = t.join(agg, t.person_id == agg[f"pid_{domain}"])
        # only the records some leaf of their set cites (everyone's tagged records with their
        # 150 quantities made a temporary table of 36 s at 100,000 persons)
        ids = compiler.set_ids()
        by_set: dict[int, Any] = {}
        for leaf in compiler.leaves(domain):
            sid = ids[leaf.node.value_set]
            c = lv.cited(leaf, joined, joined)
            by_set[sid] = by_set[sid] | c if sid in by_set else c
        if by_set:
            joined = joined.filter(ibis.cases(*[(joined.set_id == sid, c) for sid, c in by_set.items()], else_=False))
        stem = f"evidence_{domain}"
        if db.backend == "duckdb":
            steps.append((stem, str(db.con.compile(joined))))
        j = db.materialize(joined, stem)
        has_value = "value" in t.columns
        for leaf in compiler.leaves(domain):
            sel = j.filter((j.value_set == leaf.node.value_set) & lv.cited(leaf, j, j))
            parts.append(sel.select(
                person_id=sel.person_id, leaf=ibis.literal(leaf.key, "int32"), table=ibis.literal(spec.table, "string"),
                record_id=sel.record_id, date=sel.start, concept_id=sel.concept_id, source_value=sel.source_value,
                value=sel.value if has_value else ibis.null("float64"),
                unit=sel.unit if has_value else ibis.null("string"),
                range_low=sel.range_low if has_value else ibis.null("float64"),
                range_high=sel.range_high if has_value else ibis.null("float64"),
                note=_note(compiler, leaf, sel, contexts).cast("string"),
            ))
    if not parts:
        return FLAT_SCHEMA.empty_table()
    u = parts[0].union(*parts[1:], distinct=False) if len(parts) > 1 else parts[0]
    compiler.progress("collecting the evidence")
    if db.backend == "duckdb":  # kept with the screen's SQL, for the next chart
        sql = str(db.con.compile(u))
        compiler.prepared.evidence_sql[restricted] = (steps, sql)
        compiler.keep_prepared()
        table = _unordered(compiler, sql)
    else:
        table = u.to_pyarrow()
    return table.select(FLAT_SCHEMA.names).cast(FLAT_SCHEMA)


def _unordered(compiler: Compiler, sql: str) -> pa.Table:
    """The union's rows in any order (the worksheet sorts them): DuckDB 1.4.5 failed an internal
    assertion ("Lowest moved batch ...") streaming a union of scans of temporary tables in
    insertion order, with every person's evidence (360,000 rows at 100,000 persons)."""
    db = compiler.db
    db.execute("SET preserve_insertion_order = false")
    try:
        return compiler.query(sql)
    finally:
        db.execute("RESET preserve_insertion_order")

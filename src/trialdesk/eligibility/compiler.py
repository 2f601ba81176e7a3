"""Compiling criteria to one pass per table: one implementation for a whole population and
for one patient, on DuckDB, PostgreSQL and Spark alike (through Ibis).

The plan, for N criteria over a population:
1. every value set the protocol uses is resolved against the database: concept ids (with
   descendants, through the vocabulary where there is one), the source values of each
   table that carry one of its codes (or, marked as such, one of its names), and the
   answers of the answer sets (positive, negative, pregnant …);
2. each clinical table is read **once**: its records, typed and cleaned
   (:mod:`trialdesk.eligibility.reading`), joined with those small lookups and aggregated
   per person into every leaf's deciding quantities (:mod:`trialdesk.eligibility.leaves`):
   counts, first and last dates, the latest result's status, and the ids of the records
   that decided. Only those per-person columns are kept;
3. the statuses of every person and criterion follow from those columns by the criteria's
   ALL / ANY / NOT trees (:mod:`trialdesk.eligibility.tree`), with the absence rule: no
   record within observed time is ``not_met``, outside observed time ``unknown``; a part
   whose table is absent is ``unknown`` for everyone, and one whose table the source is
   silent about for a person (``silent_domain``: a FHIR chart with no record of the kind)
   is ``unknown`` for that person, with the reason;
4. evidence is looked up afterwards, only for the persons someone will read
   (:mod:`trialdesk.eligibility.evidence`), from the ids kept in step 2.

On DuckDB the SQL of steps 2 and 3 depends only on the protocol, the dates and the
database's columns (every data-dependent list is an uploaded table), so checking the next
patient's chart re-runs the same statements instead of building them again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from trialdesk.criteria.language import Duration, Measurement, Occurrence
from trialdesk.criteria.windows import Anchors
from trialdesk.eligibility import kept_sql
from trialdesk.eligibility import leaves as lv
from trialdesk.eligibility import value_sets as vsr
from trialdesk.eligibility.plan import DOMAINS, domain_of, plan_for
from trialdesk.eligibility.reading import Quality, domain_rows, person_rows, present
from trialdesk.eligibility.tree import status_table
from trialdesk.protocol.model import Protocol
from trialdesk.sources.omop import ABSENT_EFFECT, SILENT_DOMAIN, OmopDatabase
from trialdesk.terminology.value_set import ValueSet

UnitFactor = Callable[[str, str, str | None], float | None]


@dataclass
class Lookups:
    """The data-dependent inputs of a screen, as small Arrow tables uploaded under fixed names."""

    concepts: dict[str, pa.Table] = field(default_factory=dict)  # domain -> (concept_id, value_set)
    sources: dict[str, pa.Table] = field(default_factory=dict)  # domain -> (source_value, value_set, name)
    #: domain -> (k_concept, k_source, value_set, matched_name): for each distinct (concept id,
    #: source value) pair of the table, the value sets its records belong to
    keys: dict[str, pa.Table] = field(default_factory=dict)
    factors: dict[str, pa.Table] = field(default_factory=dict)  # domain -> (f_unit, f<k>...)
    answers: pa.Table | None = None  # key (c:<concept id> or t:<text>) -> one flag per answer set


@dataclass
class Prepared:
    """The SQL of a screen, for re-running on new data of the same shape (DuckDB)."""

    distinct_sql: dict[str, str] = field(default_factory=dict)
    #: domain -> (per person and value set, per person); the first is empty where the per-person
    #: statement reads the per-set groups itself (a few persons: see :attr:`Compiler.few`)
    aggregate_sql: dict[str, tuple[str, str]] = field(default_factory=dict)
    status_sql: str = ""
    unavailable: dict[int, str] = field(default_factory=dict)
    #: restricted to some persons? -> (temporary tables made first: (stem, SQL)), the SQL of the evidence
    evidence_sql: dict[bool, tuple[list[tuple[str, str]], str]] = field(default_factory=dict)


_PREPARED: dict[tuple[Any, ...], Prepared] = {}

#: DuckDB optimisers skipped on the screen's large statements over a few persons: planning them again for every
#: chart is most of their time, and the common-subexpression pass over the evidence union's ~55 parts (126 kB of SQL)
#: and the status statement's nested CASEs cost ~20 % of it, for rows it cannot make cheaper (a chart's few
#: dozen). An optimiser changes how, never what, is computed: the same rows (BENCHMARKS.md, "Tenth session").
#: (``expression_rewriter`` too would save more, but DuckDB 1.4.5 then fails an internal assertion on these.)
FEW_SKIPPED_OPTIMIZERS = "common_subexpressions"


class Compiler:
    """Builds the per-person status table for one database, and its evidence on demand."""

    def __init__(self, db: OmopDatabase, protocol: Protocol, value_sets: dict[str, ValueSet], anchors: Anchors,
                 unit_factor: UnitFactor, progress: Callable[[str], None] | None = None, few: bool = False):
        self.db = db
        #: the caller knows the database holds a few persons (one FHIR chart, a chunk of an export): each table's
        #: per-person row is made in one statement, its slots spread by aggregation (:meth:`spread_expr`)
        self.few = few
        self.value_sets = value_sets
        self.plan = plan_for(protocol, anchors)
        self.unit_factor = unit_factor
        self.progress = progress or (lambda _msg: None)
        self.quality = Quality()
        self.lookups = Lookups()
        #: domain -> its per-person table, made on first use where only its name is known (a prepared screen)
        self._aggregates: dict[str, ir.Table | None] = {}
        self.resolution: vsr.Resolution | None = None
        self.uploaded: dict[str, ir.Table] = {}
        self._prepared = Prepared()
        self._slots: dict[str, dict[str, tuple[int, str]]] = {}  # domain -> leaf column -> (set id, slot)

    # -- which leaves read which table ---------------------------------------------------

    def leaves(self, domain: str) -> list[lv.Leaf]:
        out = []
        for k, node in self.plan.record_leaves(domain).items():
            if k in self.plan.unavailable:
                continue
            start, end = self.plan.window(node)
            out.append(lv.Leaf(k, node, start, end, self.db.backend))
        return out

    def domains(self) -> list[str]:
        """The tables the criteria read, after marking leaves whose table or date column is absent."""
        used = sorted({domain_of(n) for n in self.plan.record_leaves().values()})
        for domain in used:
            spec = DOMAINS[domain]
            why = None
            if not self.db.has(spec.table):
                why = f"table '{spec.table}' is absent from the database"
            elif not present(self.db, spec.table, spec.start):
                why = f"table '{spec.table}' has no column '{spec.start}', so its records cannot be dated"
            if why:
                for k in self.plan.record_leaves(domain):
                    self.plan.unavailable[k] = why
        return [d for d in used if self.leaves(d)]

    def with_silence(self, wide: ir.Table) -> tuple[ir.Table, dict[str, str]]:
        """The per-person form of a table absent from the database: where the source says, in
        ``silent_domain``, that it holds nothing of a table's kind for a person (a FHIR chart with
        no medication record at all), that person's ``why_<domain>`` column holds the reason
        (NULL for everyone else). Returns the table and, per domain read, its column's name.
        A database without ``silent_domain`` (an OMOP CDM) gets no column and the SQL of before."""
        if not self.db.has(SILENT_DOMAIN):
            return wide, {}
        from trialdesk.eligibility.reading import as_int

        s = self.db.table(SILENT_DOMAIN)
        columns: dict[str, str] = {}
        for domain in sorted({domain_of(n) for k, n in self.plan.record_leaves().items() if k not in self.plan.unavailable}):
            why = f"why_{domain}"
            part = s.filter(s.table_name == DOMAINS[domain].table)
            part = part.select(**{f"_silent_{domain}": as_int(self.db, part.person_id), why: part.reason.cast("string")})
            j = wide.left_join(part, wide.person_id == part[f"_silent_{domain}"])
            wide = j.select(*wide.columns, why)
            columns[domain] = why
        return wide, columns

    def _sets_read(self, domain: str) -> list[str]:
        """The value sets whose records this table's pass must tag."""
        sets: set[str] = set()
        for leaf in self.leaves(domain):
            node = leaf.node
            sets.add(node.value_set)
            if isinstance(node, Measurement) and node.context is not None:
                sets |= {node.context.oxygen, node.context.exertion}
                if node.context.exertional_readings:
                    sets.add(node.context.exertional_readings)
        return sorted(s for s in sets if s in self.value_sets)

    def _answer_sets(self) -> list[str]:
        out: set[str] = set()
        for node in self.plan.record_leaves().values():
            if isinstance(node, Occurrence) and node.value:
                out.add(node.value)
            if isinstance(node, Measurement) and node.qualitative is not None:
                out |= {node.qualitative.positive, node.qualitative.negative}
        return sorted(out)

    # -- step 1: lookups -----------------------------------------------------------------

    def resolve(self, domains: list[str]) -> None:
        used = {s for d in domains for s in self._sets_read(d)} | set(self._answer_sets())
        self.resolution = vsr.resolve_concepts(self.db, self.value_sets, used)
        self.plan.concept_names = self.resolution.names
        self.plan.notes.extend(self.resolution.notes)
        for domain in domains:
            self.lookups.concepts[domain] = self.resolution.concept_table(self._sets_read(domain))
        answers = self._answer_sets()
        keys: dict[str, set[str]] = {}
        for a in answers:
            for cid in self.resolution.concepts.get(a, ()):
                keys.setdefault(f"c:{cid}", set()).add(a)
            for text in _answer_texts(self.value_sets[a]):
                keys.setdefault(f"t:{text}", set()).add(a)
        ordered = sorted(keys)
        cols: dict[str, pa.Array] = {"answer_key": pa.array(ordered, pa.string())}
        for i, a in enumerate(answers):
            cols[f"ans{i}"] = pa.array([a in keys[k] for k in ordered], pa.bool_())
        self.lookups.answers = pa.table(cols)

    def source_lookup(self, domain: str, distinct: Iterable[str | None]) -> pa.Table:
        """source value -> value set, by code; by name (marked) where no code of the set matched."""
        values = [v for v in distinct if v is not None]
        sets = self._sets_read(domain)
        by_code = vsr.match_source_values(values, self.value_sets, sets)
        seen = set(zip(by_code["source_value"].to_pylist(), by_code["value_set"].to_pylist(), strict=True))
        names = [(v, s, n) for v, s, n in match_names(values, self.value_sets, sets) if (v, s) not in seen]
        return pa.table({
            "source_value": pa.array(by_code["source_value"].to_pylist() + [v for v, _, _ in names], pa.string()),
            "value_set": pa.array(by_code["value_set"].to_pylist() + [s for _, s, _ in names], pa.string()),
            "name": pa.array([None] * by_code.num_rows + [n for _, _, n in names], pa.string()),
        })

    def factor_table(self, domain: str, units: Iterable[str | None]) -> pa.Table:
        """For each numeric comparison of this table, the factor from every unit found to the unit compared in."""
        found = sorted({u for u in units if u is not None})
        cols: dict[str, pa.Array] = {"f_unit": pa.array(found, pa.string())}
        for leaf in self.leaves(domain):
            cmp = leaf.node.compare if isinstance(leaf.node, Measurement) else None
            if cmp is not None and cmp.unit is not None and cmp.ref is None:
                loinc = self.value_sets[leaf.node.value_set].codes_in("LOINC") if leaf.node.value_set in self.value_sets else []
                analyte = loinc[0].code if loinc else None
                cols[f"f{leaf.key}"] = pa.array([self.unit_factor(u, cmp.unit, analyte) for u in found], pa.float64())
        return pa.table(cols)

    def _numeric(self, domain: str) -> list[lv.Leaf]:
        return [leaf for leaf in self.leaves(domain) if isinstance(leaf.node, Measurement) and leaf.node.compare is not None
                and leaf.node.compare.unit is not None and leaf.node.compare.ref is None]

    # -- step 2: one pass per table ------------------------------------------------------

    def rows(self, domain: str) -> ir.Table:
        spec = DOMAINS[domain]
        until = max(leaf.end for leaf in self.leaves(domain))
        return domain_rows(self.db, spec, until)

    def distinct_expr(self, domain: str) -> ir.Table:
        """The table's distinct (concept id, source value) pairs (and units, where a comparison
        converts them): what the value sets are matched against, in Python, to make the key table
        the single pass joins with (:meth:`key_table`)."""
        rows = self.rows(domain)
        if DOMAINS[domain].has_value and self._numeric(domain):
            return rows.select("concept_id", "source_value", "unit").distinct()
        return rows.select("concept_id", "source_value").distinct()

    def key_table(self, domain: str, distinct: pa.Table) -> pa.Table:
        """For every distinct (concept id, source value) pair of the table, one row per value set
        its records belong to: by concept (``matched_name`` NULL), else by source value (by code,
        ``matched_name`` NULL, or by a name, that name). A record found both ways for the same set
        counts once, as found by concept; a NULL concept id or source value matches nothing by
        itself, but the other half of its pair still can. Pairs that belong to no set are left
        out, so the inner join with the table drops their records."""
        pairs = sorted(set(zip(distinct["concept_id"].to_pylist(), distinct["source_value"].to_pylist(), strict=True)),
                       key=lambda p: (p[0] is None, p[0] or 0, p[1] is None, p[1] or ""))
        by_concept: dict[int, list[str]] = {}
        concepts = self.lookups.concepts[domain]
        for cid, vs in zip(concepts["concept_id"].to_pylist(), concepts["value_set"].to_pylist(), strict=True):
            by_concept.setdefault(cid, []).append(vs)
        sources = self.lookups.sources[domain]
        by_source: dict[str, list[tuple[str, str | None]]] = {}
        for sv, vs, name in zip(sources["source_value"].to_pylist(), sources["value_set"].to_pylist(),
                                sources["name"].to_pylist(), strict=True):
            by_source.setdefault(sv, []).append((vs, name))
        out: dict[str, list[Any]] = {"k_concept": [], "k_source": [], "value_set": [], "matched_name": []}

        def add(cid: int | None, sv: str | None, vs: str, name: str | None) -> None:
            out["k_concept"].append(cid)
            out["k_source"].append(sv)
            out["value_set"].append(vs)
            out["matched_name"].append(name)

        for cid, sv in pairs:
            found = by_concept.get(cid, []) if cid is not None else []
            for vs in found:
                add(cid, sv, vs, None)
            for vs, name in (by_source.get(sv, []) if sv is not None else []):
                if vs not in found:
                    add(cid, sv, vs, name)
        return pa.table({"k_concept": pa.array(out["k_concept"], pa.int64()), "k_source": pa.array(out["k_source"], pa.string()),
                         "value_set": pa.array(out["value_set"], pa.string()),
                         "matched_name": pa.array(out["matched_name"], pa.string())})

    def tagged(self, domain: str, rows: ir.Table) -> tuple[ir.Table, dict[str, lv.ContextColumns]]:
        """The records of the table that belong to a value set read, one row per (record,
        value set), with the flags and factors the leaves need."""
        # one join with the key table made from the table's distinct (concept id, source value) pairs
        # (:meth:`key_table`): the table is read once, where a union of a join by concept and a join
        # by source value (with an anti-join dropping the pairs found both ways) read it twice
        km = self.lookup(f"{domain}_keys")
        j = rows.join(km, [_same(rows.concept_id, km.k_concept, self.db.backend),
                           _same(rows.source_value, km.k_source, self.db.backend)])
        t = self._with_answers(j.select(*rows.columns, value_set=km.value_set, set_id=km.set_id,
                                        matched_name=km.matched_name))
        contexts: dict[str, lv.ContextColumns] = {}
        for leaf in self.leaves(domain):
            ctx = leaf.node.context if isinstance(leaf.node, Measurement) else None
            if ctx is not None and ctx.model_dump_json() not in contexts:
                t, cols = lv.context_flags(t, ctx, len(contexts))
                contexts[ctx.model_dump_json()] = cols
        if self._numeric(domain):
            f = self.lookup(f"{domain}_factors")
            j = t.left_join(f, t.unit == f.f_unit)
            t = j.select(*t.columns, *[c for c in f.columns if c != "f_unit"])
        return t, contexts

    def answers(self) -> lv.AnswerTest:
        return lv.AnswerTest({a: f"ans{i}" for i, a in enumerate(self._answer_sets())})

    def _with_answers(self, t: ir.Table) -> ir.Table:
        """One flag column per answer set, from two joins with the answer keys (by value concept, by written value)."""
        if not self._answer_sets() or "value_concept" not in t.columns:
            return t
        aw = self.lookup("answers")
        flags = [c for c in aw.columns if c != "answer_key"]
        by_c = aw.select(c_key=aw.answer_key, **{f"c_{f}": aw[f] for f in flags})
        by_t = aw.select(t_key=aw.answer_key, **{f"t_{f}": aw[f] for f in flags})
        keyed = t.mutate(_ck="c:" + t.value_concept.cast("string"), _tk="t:" + t.value_text.strip().lower())
        j = keyed.left_join(by_c, keyed._ck == by_c.c_key)
        j = j.left_join(by_t, j._tk == by_t.t_key)
        return j.select(*t.columns, **{f: ibis.coalesce(j[f"c_{f}"], False) | ibis.coalesce(j[f"t_{f}"], False) for f in flags})

    def result_status(self, leaf: lv.Leaf, t: ir.Table, contexts: dict[str, lv.ContextColumns]) -> ir.IntegerValue:
        node = leaf.node
        assert isinstance(node, Measurement)
        factor = t[f"f{leaf.key}"] if f"f{leaf.key}" in t.columns else ibis.null("float64")
        ctx = contexts.get(node.context.model_dump_json()) if node.context is not None else None
        return lv.result_status(node, t, factor, self.answers(), ctx)

    def set_ids(self) -> dict[str, int]:
        """A small integer for every value set a leaf or a context reads: the tagged records
        carry it, so a leaf's rows are picked by comparing integers, not strings."""
        names: set[str] = set()
        for node in self.plan.record_leaves().values():
            names.add(node.value_set)
            if isinstance(node, Measurement) and node.context is not None:
                names |= {node.context.oxygen, node.context.exertion}
                if node.context.exertional_readings:
                    names.add(node.context.exertional_readings)
        return {name: i for i, name in enumerate(sorted(names))}

    def _with_set_ids(self, table: pa.Table) -> pa.Table:
        ids = self.set_ids()
        return table.append_column("set_id", pa.array([ids[v] for v in table["value_set"].to_pylist()], pa.int32()))

    def aggregate_expr(self, domain: str) -> ir.Table:
        """The quantities of every leaf that reads this table, per (person, value set), in one pass over it.

        Leaves that read the same value set share the work: the tagged records are first
        grouped by person *and value set*, and each aggregate there is a "slot" (the j-th
        leaf of whichever set the group is, one quantity of it) whose filter and value are
        a CASE on the set, so each leaf's conditions are evaluated on its own set's rows
        only (the filter work is the sum over sets of rows x leaves of the set, not every
        row x every leaf). :meth:`spread_expr` then spreads the slots into the leaves' own
        columns (``k<key>_<quantity>``), one row per person."""
        t, contexts = self.tagged(domain, self.rows(domain))
        key = lv.order_key(t)
        answers = self.answers()
        ids = self.set_ids()
        per_leaf: dict[int, dict[str, lv.Agg]] = {}
        slot_of: dict[str, tuple[int, str]] = {}  # leaf column -> (set id, slot name)
        slots: dict[str, list[tuple[int, lv.Agg]]] = {}
        taken: dict[int, int] = {}  # set id -> leaves of it given slots so far
        for leaf in self.leaves(domain):
            node = leaf.node
            if isinstance(node, Occurrence):
                aggs = lv.occurrence_aggregates(leaf, t, key, answers)
            elif isinstance(node, Duration):
                aggs = lv.duration_aggregates(leaf, t, key)
            else:
                aggs = lv.measurement_aggregates(leaf, t, key, self.result_status(leaf, t, contexts))
            per_leaf[leaf.key] = aggs
            sid = ids[node.value_set]
            j = taken.get(sid, 0)
            taken[sid] = j + 1
            for name, agg in aggs.items():
                slot = f"_s{j}_{name[len(leaf.p):]}_{agg.kind}"
                slots.setdefault(slot, []).append((sid, agg))
                slot_of[name] = (sid, slot)
        first: dict[str, Any] = {
            "_undated": t.record_id.count(where=t.start.isnull()),
            "_end_before_start": t.record_id.count(where=t.end_before_start),
        }
        if "value_raw" in t.columns:
            first["_unreadable"] = t.record_id.count(where=t.value_raw.notnull())
        for slot, members in slots.items():
            first[slot] = _slot_aggregate(t, members, self.db.backend)
        self._slots[domain] = slot_of
        return t.group_by(["person_id", "set_id"]).aggregate(**first)

    def spread_expr(self, domain: str, per_set: ir.Table) -> ir.Table:
        """One row per person of the table: the quality counts, and each leaf's quantities
        taken from the (person, value set) group of its set, by one join per set (a pivot by
        aggregation, with a filter or a CASE per leaf column, cost 3 to 15 s at 100,000
        persons for the measurements' 150 columns; the joins' probe side is one row per person).

        For a few persons (:attr:`few`) it is that pivot by aggregation, ``max(CASE WHEN set_id = s
        THEN slot END)`` per leaf column, over ``per_set`` not materialised: each join cost DuckDB a few
        milliseconds however small its input (the measurements' 27 joins ~250 ms for one chart). A
        (person, set) group is one row, so the maximum over a person's rows of the one value given
        for that set is that value, or NULL where the person has no group of the set: the same
        columns, types and values as the joins give."""
        slot_of = self._slots[domain]
        pid = f"pid_{domain}"
        q = {f"q_undated_{domain}": per_set["_undated"].sum(),
             f"q_end_before_start_{domain}": per_set["_end_before_start"].sum()}
        if "_unreadable" in per_set.columns:
            q[f"q_unreadable_{domain}"] = per_set["_unreadable"].sum()
        by_set: dict[int, list[tuple[str, str]]] = {}
        for name, (sid, slot) in slot_of.items():
            by_set.setdefault(sid, []).append((name, slot))
        counts: list[str] = []
        if self.few:
            spread = {name: ibis.cases((per_set.set_id == sid, per_set[slot])).max()
                      for sid, cols in sorted(by_set.items()) for name, slot in cols}
            out = per_set.group_by(per_set.person_id.name(pid)).aggregate(**q, **spread)
            counts = [name for sid, cols in sorted(by_set.items()) for name, slot in cols if slot.endswith("_count")]
            return out.mutate(**{c: ibis.coalesce(out[c], 0) for c in counts}) if counts else out
        out = per_set.group_by(per_set.person_id.name(pid)).aggregate(**q)
        for sid, cols in sorted(by_set.items()):
            part = per_set.filter(per_set.set_id == sid)
            part = part.select(**{f"_p{sid}": part.person_id}, **{name: part[slot] for name, slot in cols})
            j = out.left_join(part, out[pid] == part[f"_p{sid}"])
            out = j.select(*out.columns, *[name for name, _ in cols])
            counts += [name for name, slot in cols if slot.endswith("_count")]
        # a person with records of the table but none of a set counts none of it (0, not NULL)
        return out.mutate(**{c: ibis.coalesce(out[c], 0) for c in counts}) if counts else out

    # -- running it ----------------------------------------------------------------------

    @property
    def prepared(self) -> Prepared:
        return self._prepared

    @property
    def aggregates(self) -> dict[str, ir.Table]:
        """domain -> its per-person table (``trialdesk_agg_<domain>``), as an Ibis table: asked of the
        database only here (a DESCRIBE each, ~15 ms a chart in all), which a prepared screen never needs."""
        for domain, t in self._aggregates.items():
            if t is None:
                self._aggregates[domain] = self.db.con.table(f"trialdesk_agg_{domain}")
        return {d: t for d, t in self._aggregates.items() if t is not None}

    def keep_prepared(self) -> None:
        """Keep the prepared SQL, grown since :meth:`run` (the evidence's), for later processes too."""
        key = getattr(self, "_key", None)
        if key is not None and self.db.backend == "duckdb":
            kept_sql.save(key, self._prepared)

    def upload(self, table: pa.Table, stem: str) -> None:
        if self.db.backend == "duckdb":
            # registered only: the Ibis table (a DESCRIBE each, ~5 ms) is made when an expression is built
            # (:meth:`lookup`), which a prepared screen re-running its SQL never does
            self.db.register(table, stem)
            self.uploaded.pop(stem, None)
        else:
            self.uploaded[stem] = self.db.upload(table, stem)

    def lookup(self, stem: str) -> ir.Table:
        """The uploaded lookup table ``stem``, as an Ibis table."""
        if stem not in self.uploaded:
            self.uploaded[stem] = self.db.con.table(f"trialdesk_{stem}")
        return self.uploaded[stem]

    def _upload(self, domain: str) -> None:
        self.upload(self._with_set_ids(self.lookups.keys[domain]), f"{domain}_keys")
        if domain in self.lookups.factors:
            self.upload(self.lookups.factors[domain], f"{domain}_factors")

    def _upload_answers(self) -> None:
        if self._answer_sets():
            assert self.lookups.answers is not None
            self.upload(self.lookups.answers, "answers")

    def _distinct(self, domain: str, prepared: Prepared | None) -> pa.Table:
        if prepared is not None:
            return self.db.query(prepared.distinct_sql[domain])
        expr = self.distinct_expr(domain)
        if self.db.backend == "duckdb":
            sql = self._sql(expr)
            self._prepared.distinct_sql[domain] = sql
            return self.db.query(sql)
        return expr.to_pyarrow()

    def run(self, active_within_months: int | None = None) -> pa.Table:
        """The status table (one row per person; see :func:`trialdesk.eligibility.tree.status_table`)."""
        key = self._cache_key(active_within_months)
        self._key = key
        prepared = _PREPARED.get(key) if self.db.backend == "duckdb" else None
        if prepared is None and self.db.backend == "duckdb":
            prepared = kept_sql.load(key)  # kept by an earlier process (the command line only)
            if prepared is not None:
                _PREPARED[key] = prepared
        self._prepared = prepared or Prepared()
        domains = self.domains()
        self.resolve(domains)
        self._upload_answers()
        for domain in domains:
            self.progress(f"reading {DOMAINS[domain].table}")
            distinct = self._distinct(domain, prepared)
            self.lookups.sources[domain] = self.source_lookup(domain, sorted(
                {v for v in distinct["source_value"].to_pylist() if v is not None}))
            self.lookups.keys[domain] = self.key_table(domain, distinct)
            if "unit" in distinct.column_names:
                self.lookups.factors[domain] = self.factor_table(domain, distinct["unit"].to_pylist())
            self._upload(domain)
            if prepared is not None:
                sets_sql, agg_sql = prepared.aggregate_sql[domain]
                if sets_sql:
                    self.db.execute(f'CREATE OR REPLACE TEMP TABLE "trialdesk_sets_{domain}" AS {sets_sql}')
                self.db.execute(f'CREATE OR REPLACE TEMP TABLE "trialdesk_agg_{domain}" AS {agg_sql}')
                self._aggregates[domain] = None
            elif self.few:
                spread = self.spread_expr(domain, self.aggregate_expr(domain))
                if self.db.backend == "duckdb":
                    self._prepared.aggregate_sql[domain] = ("", self._sql(spread))
                self._aggregates[domain] = self.db.materialize(spread, f"agg_{domain}")
            else:
                expr = self.aggregate_expr(domain)
                per_set = self.db.materialize(expr, f"sets_{domain}")
                if self.db.backend == "postgres":
                    # each join of spread_expr reads one set's groups: without an index PostgreSQL scanned the
                    # whole table once per set (10 s for the measurements' 640,000 groups at 100,000 persons)
                    self.db.execute(f'CREATE INDEX ON "trialdesk_sets_{domain}" (set_id)')
                spread = self.spread_expr(domain, per_set)
                if self.db.backend == "duckdb":
                    self._prepared.aggregate_sql[domain] = (self._sql(expr), self._sql(spread))
                self._aggregates[domain] = self.db.materialize(spread, f"agg_{domain}")
        self.progress("deciding every criterion")
        if prepared is not None:
            self.plan.unavailable.update(prepared.unavailable)
            table = self.query(prepared.status_sql)
        else:
            expr = status_table(self, active_within_months)
            if self.db.backend == "duckdb":
                self._prepared.status_sql = self._sql(expr)
                self._prepared.unavailable = dict(self.plan.unavailable)
                if len(_PREPARED) >= 32:
                    _PREPARED.pop(next(iter(_PREPARED)))
                _PREPARED[key] = self._prepared
                kept_sql.save(key, self._prepared)
                table = self.query(self._prepared.status_sql)
            else:
                table = expr.to_pyarrow()
        self._collect_quality(table)
        return table

    def people(self, active_within_months: int | None = None) -> ir.Table:
        """Every person once, with the observed-time flag (and recent activity when asked)."""
        as_of = self.plan.anchors.as_of
        people = person_rows(self.db, as_of)
        op = self.db.table("observation_period")
        from trialdesk.eligibility.reading import as_date, as_int

        start, end = as_date(self.db, op.observation_period_start_date), as_date(self.db, op.observation_period_end_date)
        observed = op.filter((start <= as_of) & (end >= as_of)).select(obs_pid=as_int(self.db, op.person_id)).distinct()
        j = people.left_join(observed, people.person_id == observed.obs_pid)
        people = j.select(*people.columns, observed=j.obs_pid.notnull())
        # a person recorded as dead on or before the screening date is no candidate, whatever the criteria say (the
        # earliest such date when the death table repeats a person); a death with no readable date may be before it,
        # so such a person cannot be eligible (``death_undated``); a death after the screening date changes nothing
        if self.db.has("death"):
            d = self.db.table("death")
            dd = as_date(self.db, d.death_date)
            dead = (d.filter(dd.isnull() | (dd <= as_of)).select(dead_pid=as_int(self.db, d.person_id), dd=dd)
                    .group_by("dead_pid").aggregate(first_death=lambda t: t.dd.min(),
                                                    undated=lambda t: t.dd.isnull().any()))
            j = people.left_join(dead, people.person_id == dead.dead_pid)
            people = j.select(*people.columns, died_on=j.first_death,
                              death_undated=j.first_death.isnull() & ibis.coalesce(j.undated, False))
        else:
            people = people.mutate(died_on=ibis.null("date"), death_undated=ibis.literal(False))
        if active_within_months is not None:
            from trialdesk.criteria.windows import add_months

            since = add_months(as_of, -active_within_months)
            if self.db.has("visit_occurrence"):
                v = self.db.table("visit_occurrence")
                vd = as_date(self.db, v.visit_start_date)
                recent = v.filter((vd >= since) & (vd <= as_of)).select(act_pid=as_int(self.db, v.person_id)).distinct()
            else:
                recent = op.filter((end >= since) & (start <= as_of)).select(act_pid=as_int(self.db, op.person_id)).distinct()
            j = people.left_join(recent, people.person_id == recent.act_pid)
            people = j.select(*people.columns, active=j.act_pid.notnull())
        return people

    def _collect_quality(self, table: pa.Table) -> None:
        q = self.quality
        everyone = table.num_rows  # what is absent touches every person screened
        for name, cols in sorted(self.db.missing_columns.items()):
            for col in cols:
                q.add(name, col, "column absent from the extract", 0, everyone,
                      "read as empty; criterion parts that need it are unknown where it would decide")
        for name in ("concept", "concept_ancestor"):
            if not self.db.has(name):
                q.add(name, "(table)", "vocabulary table absent from the extract", 0, everyone, ABSENT_EFFECT[name]
                      + "; a record found no other way is missed, so a criterion it would decide may read as not met")
        for k, why in sorted(self.plan.unavailable.items()):
            node = self.plan.leaves[k]
            assert isinstance(node, (Occurrence, Duration, Measurement))
            cids = ", ".join(sorted(self.plan.leaf_criteria[k]))
            q.problems.append(_problem_for_unavailable(DOMAINS[domain_of(node)].table, why, table.num_rows, cids))
        import pyarrow.compute as pc

        def count(col: str) -> tuple[int, int]:
            if col not in table.column_names:
                return 0, 0
            c = table[col]
            return int(pc.sum(c).as_py() or 0), int(pc.sum(pc.greater(c, 0)).as_py() or 0)

        for domain in self._aggregates:
            spec = DOMAINS[domain]
            records, persons = count(f"q_undated_{domain}")
            q.add(spec.table, spec.start, "no date, or a date that does not exist", records, persons,
                  "these records cannot be placed in a window: the parts of criteria they could decide are unknown")
            records, persons = count(f"q_unreadable_{domain}")
            q.add(spec.table, "value_as_number", "a value that is not a number (e.g. '12,5', 'n/a', '>5', '')", records, persons,
                  "not guessed: a result that cannot be read makes its criterion part unknown when it is the one that decides")
            if spec.end:
                records, persons = count(f"q_end_before_start_{domain}")
                q.add(spec.table, spec.end, "ends before it starts", records, persons,
                      "read as a one-day record on its start date")
        copies = table["copies"].to_numpy(zero_copy_only=False) if "copies" in table.column_names else None
        if copies is not None:
            dup = int((copies > 1).sum())
            q.add("person", "person_id", "the same person_id on more than one row", int(copies[copies > 1].sum()), dup,
                  "screened once; birth and sex fields the rows disagree on are unknown")
        if "birth_problem" in table.column_names:
            problems = table["birth_problem"].to_pylist()
            for problem in sorted({p for p in problems if p}):
                n = sum(1 for p in problems if p == problem)
                q.add("person", "year_of_birth" if "year" in problem else ("month_of_birth" if "month" in problem else "day_of_birth"),
                      problem, n, n, "age counted from what can be trusted (year, or year and month); unknown where that cannot decide")

    def query(self, sql: str) -> pa.Table:
        """DuckDB: the rows of ``sql``, a large statement of the screen (the status statement, the evidence union).
        For a few persons without DuckDB's common-subexpression optimiser (:data:`FEW_SKIPPED_OPTIMIZERS`)."""
        if not self.few:
            return self.db.query(sql)
        self.db.execute(f"SET disabled_optimizers = '{FEW_SKIPPED_OPTIMIZERS}'")
        try:
            return self.db.query(sql)
        finally:
            self.db.execute("RESET disabled_optimizers")

    # -- SQL kept for the next chart ------------------------------------------------------

    def _sql(self, expr: ir.Table) -> str:
        return str(self.db.con.compile(expr))

    def _cache_key(self, active_within_months: int | None) -> tuple[Any, ...]:
        # not the database's name: the SQL names its tables the same way in every file or folder
        return (
            self.db.backend,
            tuple(sorted((n, tuple(zip(t.columns, map(str, t.schema().types), strict=True))) for n, t in self.db.tables.items())),
            tuple(sorted(self.db.missing_columns.items())),
            self.plan.protocol.model_dump_json(), self.plan.anchors, active_within_months, self.few,
            tuple(self.value_sets[v].model_dump_json() for v in sorted(self.value_sets)),
        )


def _same(a: Any, b: Any, backend: str) -> Any:
    """``a`` and ``b`` equal, or both NULL, as a join condition every backend hashes: PostgreSQL
    cannot hash ``IS NOT DISTINCT FROM`` (it would loop over the key table for every record), so
    there the NULL-ness is compared apart from a value made non-NULL."""
    if backend != "postgres":
        return a.identical_to(b)
    fill = ibis.literal(0, "int64") if a.type().is_integer() else ibis.literal("", "string")
    return (ibis.coalesce(a, fill) == ibis.coalesce(b, fill)) & (a.isnull() == b.isnull())


def _slot_aggregate(t: ir.Table, members: list[tuple[int, lv.Agg]], backend: str) -> Any:
    """One aggregate over a (person, value set) group standing for the same quantity of
    several leaves, each of its own set. Its filter, value and key are the leaf's own on
    that leaf's set's rows; a group's slot is read only for the leaf of the group's set, so
    what the slot holds for a set no member reads does not matter. Members whose filter (or
    value, or key) is the same expression share one branch: the IPAF serologies, one set
    each with the same window and the same answers, need no CASE at all."""
    head = members[0][1]

    def by_set(part: Callable[[lv.Agg], Any]) -> Any:
        groups: list[tuple[Any, list[int]]] = []
        for sid, a in members:
            e = part(a)
            if e is None:
                continue
            for g in groups:
                if g[0].equals(e):
                    g[1].append(sid)
                    break
            else:
                groups.append((e, [sid]))
        if not groups:
            return None
        if len(groups) == 1:
            return groups[0][0]
        return ibis.cases(*[(t.set_id.isin(sids), e) for e, sids in groups[:-1]], else_=groups[-1][0])

    return lv.Agg(head.kind, by_set(lambda a: a.x), by_set(lambda a: a.where), by_set(lambda a: a.key)).build(backend)


def _problem_for_unavailable(table: str, why: str, persons: int, cids: str) -> Any:
    from trialdesk.eligibility.reading import Problem

    return Problem(table, "(table)" if "absent" in why else "(date)", why, 0, persons,
                   f"the parts of {cids} that read it are unknown for everyone (an ANY still holds where another part is met)")


def _answer_texts(vs: ValueSet) -> set[str]:
    """The written forms of an answer set: its texts and its codes, trimmed and case-folded."""
    return {t.strip().lower() for t in vs.texts} | {c.code.strip().lower() for c in vs.codes if c.system != "OMOP"}


def match_names(values: Iterable[str], value_sets: dict[str, ValueSet], used: Iterable[str]) -> list[tuple[str, str, str]]:
    """(source value, value set, name) for every source text that holds one of a set's
    names as a whole word or phrase, case-insensitively."""
    patterns = []
    for vs_id in sorted(set(used)):
        names = value_sets[vs_id].names if vs_id in value_sets else []
        for name in names:
            patterns.append((vs_id, name, re.compile(r"(?<![A-Za-z0-9])" + re.escape(name.strip()) + r"(?![A-Za-z0-9])", re.I)))
    if not patterns:
        return []
    out = []
    by_set: dict[tuple[str, str], str] = {}
    for value in values:
        for vs_id, name, pat in patterns:
            if (value, vs_id) not in by_set and pat.search(value):
                by_set[(value, vs_id)] = name
    for (value, vs_id), name in by_set.items():
        out.append((value, vs_id, name))
    return out

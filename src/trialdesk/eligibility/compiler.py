"""Compiling criteria to Ibis expressions: one implementation for a whole population
and for one patient, on DuckDB, PostgreSQL and Spark alike.

The plan, for N criteria over a population:
1. each clinical domain table is read once: its rows joined with the value sets'
   concept ids and source values give a small table of *hits* (records that belong to
   some value set the protocol uses, dated up to the last window's end);
2. each leaf of a criterion (an occurrence, a duration, a measurement) is a query over
   the hits, giving a status for the people it concerns and the evidence that decided it;
3. leaf statuses are pivoted to one row per person and combined by the criterion's
   ALL / ANY / NOT tree as plain column expressions, with the absence rule applied:
   no record within observed time is ``not_met``; outside observed time ``unknown``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from trialdesk.eligibility import value_sets as vsr
from trialdesk.criteria.language import (
    Age,
    All,
    AnyOf,
    Attestation,
    Compare,
    Duration,
    Expression,
    Measurement,
    Not,
    Occurrence,
    Sex,
)
from trialdesk.criteria.status import Status
from trialdesk.criteria.windows import Anchors, resolve
from trialdesk.protocol.model import Protocol
from trialdesk.sources.omop import OmopDatabase
from trialdesk.terminology.value_set import ValueSet

MET, NOT_MET, UNKNOWN, NEEDS_REVIEW = (int(s) for s in (Status.MET, Status.NOT_MET, Status.UNKNOWN, Status.NEEDS_REVIEW))

FEMALE, MALE = 8532, 8507


@dataclass(frozen=True)
class DomainTable:
    table: str
    id: str
    concept: str
    start: str
    end: str | None
    source: str


DOMAINS: dict[str, DomainTable] = {
    "condition": DomainTable("condition_occurrence", "condition_occurrence_id", "condition_concept_id",
                             "condition_start_date", "condition_end_date", "condition_source_value"),
    "drug": DomainTable("drug_exposure", "drug_exposure_id", "drug_concept_id", "drug_exposure_start_date",
                        "drug_exposure_end_date", "drug_source_value"),
    "procedure": DomainTable("procedure_occurrence", "procedure_occurrence_id", "procedure_concept_id",
                             "procedure_date", None, "procedure_source_value"),
    "observation": DomainTable("observation", "observation_id", "observation_concept_id", "observation_date",
                               None, "observation_source_value"),
    "measurement": DomainTable("measurement", "measurement_id", "measurement_concept_id", "measurement_date",
                               None, "measurement_source_value"),
}

EVIDENCE_SCHEMA = ibis.schema({
    "person_id": "int64", "leaf": "int32", "table": "string", "record_id": "int64", "date": "date",
    "concept_id": "int64", "source_value": "string", "value": "float64", "unit": "string",
    "range_low": "float64", "range_high": "float64", "note": "string",
})

LeafNode = Occurrence | Duration | Measurement


@dataclass
class _DomainStep:
    domain: str
    distinct_sql: str
    hits_sql: str
    value_sets: list[str]


@dataclass
class _Prepared:
    """The SQL statements of a screen, in order, for re-running on new data (DuckDB)."""

    domains: list[_DomainStep] = field(default_factory=list)
    table_sql: str = ""
    evidence_sql: str = ""
    missing: dict[str, str] = field(default_factory=dict)


_PREPARED: dict[tuple[Any, ...], _Prepared] = {}


def _domain_of(node: LeafNode) -> str:
    if isinstance(node, Measurement):
        return "measurement"
    if isinstance(node, Duration):
        return node.domain
    return node.kind


@dataclass
class Plan:
    """The compiled form of a protocol's criteria against one database."""

    protocol: Protocol
    anchors: Anchors
    leaves: dict[str, int] = field(default_factory=dict)  # leaf json -> key
    leaf_nodes: dict[int, LeafNode] = field(default_factory=dict)
    leaf_criteria: dict[int, set[str]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # criterion id -> why unknown
    notes: list[str] = field(default_factory=list)
    concept_names: dict[int, str] = field(default_factory=dict)

    def key(self, node: LeafNode, criterion_id: str) -> int:
        text = node.model_dump_json()
        if text not in self.leaves:
            k = len(self.leaves)
            self.leaves[text] = k
            self.leaf_nodes[k] = node
            self.leaf_criteria[k] = set()
        k = self.leaves[text]
        self.leaf_criteria[k].add(criterion_id)
        return k


def plan_for(protocol: Protocol, anchors: Anchors) -> Plan:
    plan = Plan(protocol=protocol, anchors=anchors)
    for c in protocol.eligibility.criteria:
        if c.computable is None:
            continue
        stack: list[Expression] = [c.computable]
        while stack:
            node = stack.pop()
            if isinstance(node, (Occurrence, Duration, Measurement)):
                plan.key(node, c.id)
            elif isinstance(node, (All, AnyOf)):
                stack.extend(node.items)
            elif isinstance(node, Not):
                stack.append(node.item)
    return plan


class Compiler:
    """Builds the per-person status table and the evidence table for one database."""

    def __init__(self, db: OmopDatabase, protocol: Protocol, value_sets: dict[str, ValueSet], anchors: Anchors,
                 unit_factor: Callable[[str, str, str | None], float | None], progress: Callable[[str], None] | None = None):
        self.db = db
        self.value_sets = value_sets
        self.plan = plan_for(protocol, anchors)
        self.unit_factor = unit_factor
        self.progress = progress or (lambda _msg: None)
        self.hits: dict[str, ir.Table] = {}
        self._factors: dict[int, ir.Table] = {}
        self._steps = _Prepared()

    # -- step 1: one pass per domain -------------------------------------------------

    def _window_dates(self, node: LeafNode) -> tuple[dt.date | None, dt.date]:
        start, end = resolve(node.window, self.plan.anchors)
        return start, end if end is not None else self.plan.anchors.as_of

    def build_hits(self) -> None:
        by_domain: dict[str, list[LeafNode]] = {}
        for node in self.plan.leaf_nodes.values():
            by_domain.setdefault(_domain_of(node), []).append(node)
        used = {n.value_set for n in self.plan.leaf_nodes.values()}
        resolution = vsr.resolve_concepts(self.db, self.value_sets, used)
        self.plan.concept_names = resolution.names
        self.plan.notes.extend(resolution.notes)
        for domain, nodes in sorted(by_domain.items()):
            spec = DOMAINS[domain]
            if not self.db.has(spec.table):
                why = f"table '{spec.table}' is absent from the database"
                for n in nodes:
                    for cid in self.plan.leaf_criteria[self.plan.leaves[n.model_dump_json()]]:
                        self.plan.missing.setdefault(cid, why)
                continue
            self.progress(f"reading {spec.table}")
            self.hits[domain] = self._domain_hits(domain, spec, nodes, resolution)

    def _domain_hits(self, domain: str, spec: DomainTable, nodes: list[LeafNode], resolution: vsr.Resolution) -> ir.Table:
        t = self.db.table(spec.table)
        cols: dict[str, Any] = {
            "person_id": t.person_id.cast("int64"),
            "record_id": t[spec.id].cast("int64"),
            "concept_id": t[spec.concept].cast("int64"),
            "start": t[spec.start].cast("date"),
            "end": t[spec.end].cast("date") if spec.end else ibis.null("date"),
            "source_value": t[spec.source].cast("string"),
        }
        if domain == "measurement":
            cols.update(value=t.value_as_number.cast("float64"), unit_source=t.unit_source_value.cast("string"),
                        unit_concept_id=t.unit_concept_id.cast("int64"), range_low=t.range_low.cast("float64"),
                        range_high=t.range_high.cast("float64"))
        base = t.select(**cols)
        windows = [self._window_dates(n) for n in nodes]
        last = max(end for _, end in windows)
        base = base.filter(base.start <= last)
        if domain == "measurement" and all(s is not None for s, _ in windows):
            base = base.filter(base.start >= min(s for s, _ in windows if s is not None))
        sets = sorted({n.value_set for n in nodes})
        # Both lookups are always joined (an empty one matches nothing), so the SQL depends
        # only on the protocol and the dates, and a prepared screen can re-run it.
        cm = self.db.upload(resolution.concept_table(sets), f"{domain}_concepts")
        distinct_expr = base.select("source_value").distinct()
        distinct = distinct_expr.to_pyarrow()["source_value"].to_pylist()
        sm = self.db.upload(vsr.match_source_values(distinct, self.value_sets, sets), f"{domain}_sources")
        # A record is a hit of a value set through its concept or its source value. The
        # source-value branch leaves out what the concept branch already holds (an
        # anti-join on concept and value set, over the few rows matched), so the two add up
        # with UNION ALL: a UNION DISTINCT over every column of millions of hits cost more
        # than reading the table (BENCHMARKS.md).
        by_concept = base.join(cm, base.concept_id == cm.concept_id).select(*base.columns, "value_set")
        by_source = base.join(sm, base.source_value == sm.source_value).select(*base.columns, "value_set")
        by_source = by_source.anti_join(cm, [by_source.concept_id == cm.concept_id, by_source.value_set == cm.value_set])
        hits = by_concept.union(by_source, distinct=False)
        if domain == "measurement":
            hits = self._with_unit(hits)
        self._steps.domains.append(_DomainStep(domain, self._sql(distinct_expr), self._sql(hits), sets))
        return self.db.materialize(hits, domain)

    def _with_unit(self, hits: ir.Table) -> ir.Table:
        """The measurement's unit: its source string, else the UCUM code of its unit concept."""
        if not self.db.has("concept"):
            return hits.mutate(unit=hits.unit_source)
        c = self.db.table("concept")
        ucum = c.filter(c.vocabulary_id == "UCUM").select(unit_cid=c.concept_id.cast("int64"), unit_code=c.concept_code)
        j = hits.left_join(ucum, hits.unit_concept_id == ucum.unit_cid)
        unit = ibis.coalesce(ibis.ifelse(j.unit_source.strip() == "", ibis.null("string"), j.unit_source), j.unit_code)
        return j.select(*hits.columns, unit=unit)

    # -- step 2: leaves --------------------------------------------------------------

    def _evidence(self, rows: ir.Table, key: int, table: str, note: Any = None) -> ir.Table:
        is_meas = "value" in rows.columns
        return rows.select(
            person_id=rows.person_id, leaf=ibis.literal(key, "int32"), table=ibis.literal(table, "string"),
            record_id=rows.record_id, date=rows.start, concept_id=rows.concept_id, source_value=rows.source_value,
            value=rows.value if is_meas else ibis.null("float64"), unit=rows.unit if is_meas else ibis.null("string"),
            range_low=rows.range_low if is_meas else ibis.null("float64"),
            range_high=rows.range_high if is_meas else ibis.null("float64"),
            note=note if note is not None else ibis.null("string"),
        )

    def leaf(self, key: int) -> tuple[ir.Table, ir.Table] | None:
        node = self.plan.leaf_nodes[key]
        domain = _domain_of(node)
        if domain not in self.hits:
            return None
        h = self.hits[domain]
        h = h.filter(h.value_set == node.value_set)
        table = DOMAINS[domain].table
        start, end = self._window_dates(node)
        if isinstance(node, Measurement):
            return self._measurement(key, node, h, start, end, table)
        if isinstance(node, Duration):
            return self._duration(key, node, h, start, end, table)
        return self._occurrence(key, node, h, start, end, table)

    @staticmethod
    def _in_window(h: ir.Table, start: dt.date | None, end: dt.date, overlap: bool) -> ir.BooleanValue:
        if overlap:  # an exposure counts when its period touches the window
            cond = h.start <= end
            if start is not None:
                cond &= ibis.coalesce(h.end, h.start) >= start
            return cond
        cond = h.start <= end
        if start is not None:
            cond &= h.start >= start
        return cond

    def _occurrence(self, key: int, node: Occurrence, h: ir.Table, start: dt.date | None, end: dt.date,
                    table: str) -> tuple[ir.Table, ir.Table]:
        if node.first_ever:
            ranked = h.filter(h.start <= end).mutate(
                rn=ibis.row_number().over(group_by=h.person_id, order_by=[h.start, h.record_id]))
            first = ranked.filter(ranked.rn == 0)
            in_window = first.start >= start if start is not None else ibis.literal(True)
            status = first.select(person_id=first.person_id, leaf=ibis.literal(key, "int32"),
                                  status=ibis.ifelse(in_window, MET, NOT_MET).cast("int8"))
            note = ibis.ifelse(in_window, "first record, inside the window", "first record, before the window")
            return status, self._evidence(first, key, table, note)
        inside = h.filter(self._in_window(h, start, end, overlap=node.kind == "drug"))
        counts = inside.group_by("person_id").aggregate(n=inside.count())
        status = counts.select(person_id=counts.person_id, leaf=ibis.literal(key, "int32"),
                               status=ibis.ifelse(counts.n >= node.min_count, MET, NOT_MET).cast("int8"))
        ranked = inside.mutate(rn=ibis.row_number().over(group_by=inside.person_id,
                                                         order_by=[inside.start.desc(), inside.record_id.desc()]))
        return status, self._evidence(ranked.filter(ranked.rn < 3), key, table)

    def _duration(self, key: int, node: Duration, h: ir.Table, start: dt.date | None, end: dt.date,
                  table: str) -> tuple[ir.Table, ir.Table]:
        inside = h.filter(self._in_window(h, start, end, overlap=True))
        span = inside.group_by("person_id").aggregate(first=inside.start.min(), last=ibis.coalesce(inside.end, inside.start).max())
        days = span.last.delta(span.first, unit="day")
        ok = ibis.literal(True)
        if node.min_days is not None:
            ok &= days >= node.min_days
        if node.max_days is not None:
            ok &= days < node.max_days
        status = span.select(person_id=span.person_id, leaf=ibis.literal(key, "int32"),
                             status=ibis.ifelse(ok, MET, NOT_MET).cast("int8"))
        ranked = inside.mutate(
            a=ibis.row_number().over(group_by=inside.person_id, order_by=[inside.start, inside.record_id]),
            z=ibis.row_number().over(group_by=inside.person_id,
                                     order_by=[ibis.coalesce(inside.end, inside.start).desc(), inside.record_id.desc()]))
        ends = ranked.filter((ranked.a == 0) | (ranked.z == 0))
        note = ibis.ifelse(ends.a == 0, "first exposure of the therapy", "last exposure of the therapy")
        return status, self._evidence(ends, key, table, note)

    def _measurement(self, key: int, node: Measurement, h: ir.Table, start: dt.date | None, end: dt.date,
                     table: str) -> tuple[ir.Table, ir.Table]:
        inside = h.filter(self._in_window(h, start, end, overlap=False) & h.value.notnull())
        ranked = inside.mutate(rn=ibis.row_number().over(group_by=inside.person_id,
                                                         order_by=[inside.start.desc(), inside.record_id.desc()]))
        latest = ranked.filter(ranked.rn == 0)
        cmp = node.compare
        if cmp.op == "outside_range":
            low, high = latest.range_low, latest.range_high
            status = ibis.cases(
                ((low.notnull() & (latest.value < low)) | (high.notnull() & (latest.value > high)), MET),
                (low.notnull() & high.notnull(), NOT_MET),
                else_=UNKNOWN,
            )
            note = ibis.ifelse(low.isnull() | high.isnull(), "no complete reference range on the record", ibis.null("string"))
            latest = latest.mutate(status=status, note=note)
        elif cmp.ref is not None:
            bound = latest.range_high if cmp.ref == "ULN" else latest.range_low
            status = ibis.ifelse(bound.isnull(), UNKNOWN, ibis.ifelse(_op(cmp, latest.value, bound * cmp.factor), MET, NOT_MET))
            note = ibis.ifelse(bound.isnull(), f"no {cmp.ref} on the record", f"compared with {cmp.factor:g} x {cmp.ref}")
            latest = latest.mutate(status=status, note=note)
        else:
            latest = self._with_factor(latest, key)
            converted = latest.value * latest.factor
            status = ibis.ifelse(latest.factor.isnull(), UNKNOWN,
                                 ibis.ifelse(_op(cmp, converted, ibis.literal(cmp.value)), MET, NOT_MET))
            note = ibis.ifelse(latest.factor.isnull(),
                               ibis.literal("unit '") + ibis.coalesce(latest.unit, "(none)") + f"' cannot be converted to {cmp.unit}",
                               ibis.null("string"))
            latest = latest.mutate(status=status, note=note)
        status_t = latest.select(person_id=latest.person_id, leaf=ibis.literal(key, "int32"), status=latest.status.cast("int8"))
        return status_t, self._evidence(latest, key, table, latest.note)

    def _numeric_leaves(self) -> list[tuple[int, str, str | None]]:
        """(leaf key, unit compared in, analyte) of every measurement compared with a number."""
        out = []
        for k, node in sorted(self.plan.leaf_nodes.items()):
            if isinstance(node, Measurement) and node.compare.unit is not None and node.compare.ref is None:
                # mass-to-molar conversions need the analyte: the value set's first LOINC code
                loinc = self.value_sets[node.value_set].codes_in("LOINC")
                out.append((k, node.compare.unit, loinc[0].code if loinc else None))
        return out

    def _register_factors(self, units: list[str | None]) -> None:
        """For each numeric comparison, the factor from every unit found to the unit compared in."""
        for key, target, analyte in self._numeric_leaves():
            known = [(u, f) for u in units if u is not None and (f := self.unit_factor(u, target, analyte)) is not None]
            table = pa.table({"f_unit": pa.array([u for u, _ in known], pa.string()),
                              "factor": pa.array([f for _, f in known], pa.float64())})
            self._factors[key] = self.db.upload(table, f"unit_factors_{key}")

    def _with_factor(self, rows: ir.Table, key: int) -> ir.Table:
        ft = self._factors[key]
        j = rows.left_join(ft, rows.unit == ft.f_unit)
        return j.select(*rows.columns, "factor")

    # -- step 3: people ----------------------------------------------------------------

    def persons(self, active_within_months: int | None = None) -> ir.Table:
        as_of = self.plan.anchors.as_of
        p = self.db.table("person")
        op = self.db.table("observation_period")
        observed = op.filter((op.observation_period_start_date.cast("date") <= as_of)
                             & (op.observation_period_end_date.cast("date") >= as_of)).select(obs_pid=op.person_id.cast("int64")).distinct()
        cols = {
            "person_id": p.person_id.cast("int64"),
            "year_of_birth": p.year_of_birth.cast("int32"),
            "month_of_birth": (p.month_of_birth if "month_of_birth" in p.columns else ibis.null("int32")).cast("int32"),
            "day_of_birth": (p.day_of_birth if "day_of_birth" in p.columns else ibis.null("int32")).cast("int32"),
            "gender_concept_id": p.gender_concept_id.cast("int64"),
        }
        if "birth_datetime" in p.columns:
            bd = p.birth_datetime.cast("timestamp")
            cols["month_of_birth"] = ibis.coalesce(cols["month_of_birth"], bd.month().cast("int32"))
            cols["day_of_birth"] = ibis.coalesce(cols["day_of_birth"], bd.day().cast("int32"))
        people = p.select(**cols)
        j = people.left_join(observed, people.person_id == observed.obs_pid)
        people = j.select(*people.columns, observed=j.obs_pid.notnull())
        if active_within_months is not None:
            from trialdesk.criteria.windows import add_months

            since = add_months(as_of, -active_within_months)
            if self.db.has("visit_occurrence"):
                v = self.db.table("visit_occurrence")
                recent = v.filter((v.visit_start_date.cast("date") >= since) & (v.visit_start_date.cast("date") <= as_of))
                recent = recent.select(act_pid=recent.person_id.cast("int64")).distinct()
            else:
                recent = op.filter((op.observation_period_end_date.cast("date") >= since)
                                   & (op.observation_period_start_date.cast("date") <= as_of))
                recent = recent.select(act_pid=recent.person_id.cast("int64")).distinct()
            j = people.left_join(recent, people.person_id == recent.act_pid)
            people = j.select(*people.columns, active=j.act_pid.notnull())
        return people

    def _sql(self, expr: ir.Table) -> str:
        return str(self.db.con.compile(expr))

    def _cache_key(self, active_within_months: int | None) -> tuple[Any, ...]:
        used = sorted({n.value_set for n in self.plan.leaf_nodes.values()})
        return (
            self.db.backend, self.db.description, tuple(sorted((n, tuple(t.columns)) for n, t in self.db.tables.items())),
            self.plan.protocol.model_dump_json(), self.plan.anchors, active_within_months,
            tuple(self.value_sets[v].model_dump_json() for v in used),
        )

    def compile_arrow(self, active_within_months: int | None = None) -> tuple[pa.Table, pa.Table]:
        """(status table: one row per person, one int column per criterion and a flag per
        deciding leaf; evidence rows), computed on the database's backend.

        On DuckDB the SQL of a screen is kept, keyed by everything it depends on (protocol,
        value sets, dates, the database's tables): checking the next patient's chart re-runs
        the same statements on new data instead of building and compiling them again."""
        if self.db.backend != "duckdb":
            table, ev = self.compile(active_within_months)
            return table.to_pyarrow(), ev.to_pyarrow()
        key = self._cache_key(active_within_months)
        prepared = _PREPARED.get(key)
        if prepared is not None:
            return self._run(prepared)
        table, ev = self.compile(active_within_months)
        self._steps.table_sql, self._steps.evidence_sql = self._sql(table), self._sql(ev)
        self._steps.missing = dict(self.plan.missing)
        if len(_PREPARED) >= 32:
            _PREPARED.pop(next(iter(_PREPARED)))
        _PREPARED[key] = self._steps
        return self.db.query(self._steps.table_sql), self.db.query(self._steps.evidence_sql)

    def _run(self, prepared: _Prepared) -> tuple[pa.Table, pa.Table]:
        """Re-run a prepared screen's statements on this database's data."""
        used = {n.value_set for n in self.plan.leaf_nodes.values()}
        resolution = vsr.resolve_concepts(self.db, self.value_sets, used)
        self.plan.concept_names = resolution.names
        self.plan.notes.extend(resolution.notes)
        self.plan.missing.update(prepared.missing)
        for step in prepared.domains:
            self.progress(f"reading {DOMAINS[step.domain].table}")
            self.db.register(resolution.concept_table(step.value_sets), f"{step.domain}_concepts")
            distinct = self.db.query(step.distinct_sql)["source_value"].to_pylist()
            self.db.register(vsr.match_source_values(distinct, self.value_sets, step.value_sets), f"{step.domain}_sources")
            self.db.execute(f'CREATE OR REPLACE TEMP TABLE "trialdesk_{step.domain}" AS {step.hits_sql}')
        if any(s.domain == "measurement" for s in prepared.domains):
            self._register_factors(self.db.query("SELECT DISTINCT unit FROM trialdesk_measurement")["unit"].to_pylist())
        return self.db.query(prepared.table_sql), self.db.query(prepared.evidence_sql)

    def compile(self, active_within_months: int | None = None) -> tuple[ir.Table, ir.Table]:
        """(status table: one row per person, one int column per criterion; evidence rows)."""
        self.build_hits()
        if "measurement" in self.hits:
            h = self.hits["measurement"]
            self._register_factors(h.select("unit").distinct().to_pyarrow()["unit"].to_pylist())
        statuses, evidence = [], []
        for key in sorted(self.plan.leaf_nodes):
            out = self.leaf(key)
            if out is not None:
                statuses.append(out[0])
                evidence.append(out[1])
        people = self.persons(active_within_months)
        if statuses:
            u = statuses[0].union(*statuses[1:]) if len(statuses) > 1 else statuses[0]
            pivot = u.group_by("person_id").aggregate(
                **{f"l{k}": u.status.max(where=u.leaf == k) for k in sorted(self.plan.leaf_nodes)})
            pivot = pivot.rename(pv_pid="person_id")
            wide = people.left_join(pivot, people.person_id == pivot.pv_pid)
            wide = wide.select(*people.columns, *[f"l{k}" for k in sorted(self.plan.leaf_nodes)])
        else:
            wide = people.mutate(**{f"l{k}": ibis.null("int8") for k in sorted(self.plan.leaf_nodes)})
        computed = [c for c in self.plan.protocol.eligibility.criteria if c.id not in self.plan.missing and c.computable]
        wide, node = self._node_columns(wide, [c.computable for c in computed if c.computable is not None])
        crit = {}
        for c in self.plan.protocol.eligibility.criteria:
            if c.id in self.plan.missing:
                crit[f"c_{c.id}"] = ibis.literal(UNKNOWN, "int8")
            elif c.computable is None:
                crit[f"c_{c.id}"] = ibis.literal(NEEDS_REVIEW, "int8")
            else:
                crit[f"c_{c.id}"] = node(c.computable).cast("int8")
                deciding: dict[int, Any] = {}
                self._deciding(c.computable, node, ibis.literal(True), deciding)
                for k, flag in deciding.items():
                    crit[f"d_{c.id}_{k}"] = flag
        table = wide.select(*people.columns, **crit)
        if evidence:
            ev = evidence[0].union(*evidence[1:]) if len(evidence) > 1 else evidence[0]
        else:
            ev = self.db.upload(pa.table({n: pa.array([], t.to_pyarrow()) for n, t in EVIDENCE_SCHEMA.items()}), "no_evidence")
        return table, ev

    def _node_columns(self, wide: ir.Table, roots: list[Expression]) -> tuple[ir.Table, Callable[[Expression], Any]]:
        """Every node of the criteria's trees as its own status column (``n0``, ``n1``, …),
        added in layers from the leaves up, so that each node is computed once and its
        parent refers to it by name. (Nested inline, the status of an ANY inside an ALL was
        repeated in every flag that names the evidence: the statement grew to 40 kB, and
        DuckDB spent 50 ms planning it for every one-patient check.) Returns the table and
        a function giving the column of a node."""
        names: dict[str, str] = {}
        depth: dict[str, int] = {}
        nodes: dict[str, Expression] = {}

        def visit(n: Expression) -> int:
            key = n.model_dump_json()
            if key not in depth:
                children = n.items if isinstance(n, (All, AnyOf)) else [n.item] if isinstance(n, Not) else []
                depth[key] = 1 + max((visit(c) for c in children), default=-1)
                nodes[key], names[key] = n, f"n{len(names)}"
            return depth[key]

        for root in roots:
            visit(root)
        def column_in(t: ir.Table) -> Callable[[Expression], Any]:
            def status_of(n: Expression) -> Any:
                return t[names[n.model_dump_json()]]
            return status_of

        w = wide
        for level in range(max(depth.values(), default=-1) + 1):
            below = column_in(w)  # the nodes of lower levels are columns of w
            w = w.mutate(**{names[k]: self._expr(nodes[k], w, below) for k in depth if depth[k] == level})
        return w, column_in(w)

    def _deciding(self, node: Expression, status_of: Callable[[Expression], Any], needed: Any, out: dict[int, Any]) -> None:
        """Which leaves decided a criterion's status for a person, so the evidence cited is
        the evidence that counted: under an ALL that is not met, only the parts not met;
        under an ANY that is met, only the parts met; otherwise every part."""
        if isinstance(node, (Occurrence, Duration, Measurement)):
            k = self.plan.leaves[node.model_dump_json()]
            out[k] = _or(out.get(k), needed)
        elif isinstance(node, (All, AnyOf)):
            status = status_of(node)
            decisive = NOT_MET if isinstance(node, All) else MET
            for item in node.items:
                self._deciding(item, status_of, needed & ((status != decisive) | (status_of(item) == decisive)), out)
        elif isinstance(node, Not):
            self._deciding(node.item, status_of, needed, out)

    def _expr(self, node: Expression, w: ir.Table, child: Callable[[Expression], Any]) -> ir.IntegerValue:
        """The status of one node over table ``w``; ``child`` gives a child node's status."""
        if isinstance(node, Attestation):
            return ibis.literal(NEEDS_REVIEW, "int8")
        if isinstance(node, Age):
            return _age_status(node, w, self.plan.anchors)
        if isinstance(node, Sex):
            allowed = {"female": FEMALE, "male": MALE}
            ok = [allowed[s] for s in node.allowed]
            return ibis.cases((w.gender_concept_id.isin(ok), MET), (w.gender_concept_id.isin([FEMALE, MALE]), NOT_MET),
                              else_=UNKNOWN)
        if isinstance(node, (Occurrence, Duration, Measurement)):
            col = w[f"l{self.plan.leaves[node.model_dump_json()]}"]
            if isinstance(node, Measurement):
                return ibis.coalesce(col, UNKNOWN)
            return ibis.coalesce(col, ibis.ifelse(w.observed, NOT_MET, UNKNOWN))
        if isinstance(node, (All, AnyOf)):
            parts = [child(i) for i in node.items]
            if len(parts) == 1:
                return parts[0]
            return ibis.least(*parts) if isinstance(node, All) else ibis.greatest(*parts)
        if isinstance(node, Not):
            inner = child(node.item)
            return ibis.cases((inner == MET, NOT_MET), (inner == NOT_MET, MET), else_=inner)
        raise TypeError(f"unsupported criterion node {type(node).__name__}")


def _or(a: Any, b: Any) -> Any:
    return b if a is None else a | b


def _op(cmp: Compare, left: Any, right: Any) -> Any:
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[cmp.op]


def _age_status(node: Age, w: ir.Table, anchors: Anchors) -> ir.IntegerValue:
    """Age in completed years at the anchor. Without a full birth date the age is a
    range (year and month known: exact except in the birth month); the criterion is
    unknown when that range straddles a bound."""
    ref = anchors.date(node.anchor)
    years = ref.year - w.year_of_birth
    md_before = (w.month_of_birth > ref.month) | ((w.month_of_birth == ref.month) & (w.day_of_birth > ref.day))
    exact = years - ibis.ifelse(md_before, 1, 0)
    month_only = ibis.ifelse(w.month_of_birth > ref.month, years - 1, years)
    full = w.day_of_birth.notnull() & w.month_of_birth.notnull()
    month_known = w.month_of_birth.notnull() & (w.month_of_birth != ref.month)
    lo = ibis.cases((full, exact), (month_known, month_only), else_=years - 1)
    hi = ibis.cases((full, exact), (month_known, month_only), else_=years)

    def ok(age: Any) -> Any:
        cond = ibis.literal(True)
        if node.min is not None:
            cond &= (age >= node.min) if node.min_inclusive else (age > node.min)
        if node.max is not None:
            cond &= (age <= node.max) if node.max_inclusive else (age < node.max)
        return cond

    return ibis.cases((w.year_of_birth.isnull(), UNKNOWN), (ok(lo) & ok(hi), MET), (~ok(lo) & ~ok(hi), NOT_MET),
                      else_=UNKNOWN)

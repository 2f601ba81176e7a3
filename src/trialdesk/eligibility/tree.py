"""From the per-person columns of every leaf to every criterion's status, by its ALL /
ANY / NOT tree, in three-valued logic: ALL is the least of its parts and ANY the greatest
(``not_met < unknown < needs_review < met``), so ``met OR unknown`` is met and
``not_met AND unknown`` is not met; a part that cannot be evaluated on this database is
unknown, and decides nothing that another part already decides.

Each node of a tree is its own column (``n0``, ``n1``, …), added in layers from the leaves
up, so each is computed once and its parent refers to it by name. Beside every criterion's
status, a flag per leaf says whether that leaf decided it for the person (so the evidence
cited is the evidence that counted), and ``s_<id>`` counts the supporting features the
records show for its attestations (IPAF's serologic and clinical domains).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir

from trialdesk.criteria.language import (
    Age,
    All,
    AnyOf,
    Attestation,
    Duration,
    Expression,
    Measurement,
    Not,
    Occurrence,
    Sex,
    walk,
)
from trialdesk.criteria.windows import Anchors
from trialdesk.eligibility import leaves as lv
from trialdesk.eligibility.plan import children, domain_of

if TYPE_CHECKING:
    from trialdesk.eligibility.compiler import Compiler

MET, NOT_MET, UNKNOWN, NEEDS_REVIEW = lv.MET, lv.NOT_MET, lv.UNKNOWN, lv.NEEDS_REVIEW
FEMALE, MALE = 8532, 8507


def status_table(compiler: Compiler, active_within_months: int | None) -> ir.Table:
    """person_id, observed, the person's birth fields, ``c_<id>`` per criterion, ``d_<id>_<k>``
    deciding flags, ``s_<id>`` supporting features, the data-quality counts, and ``why_<domain>``
    where the source is silent about a table for a person (see :meth:`Compiler.with_silence`)."""
    plan = compiler.plan
    wide = compiler.people(active_within_months)
    if compiler.few:
        # the narrow joins first: each join of DuckDB copies every column it carries, however few the rows
        wide, silent = compiler.with_silence(wide)
    aggregates = list(compiler.aggregates.items())
    quality = [c for _, agg in aggregates for c in agg.columns if c.startswith("q_")]
    if compiler.few:  # and the narrower tables first
        aggregates.sort(key=lambda item: len(item[1].columns))
    for domain, agg in aggregates:
        pid = f"pid_{domain}"
        j = wide.left_join(agg, wide.person_id == agg[pid])
        wide = j.select(*wide.columns, *[c for c in agg.columns if c != pid])
    if not compiler.few:
        wide, silent = compiler.with_silence(wide)
    leaf_cols: dict[str, Any] = {}
    for k, leaf_node in plan.record_leaves().items():
        if k in plan.unavailable:  # the table is absent, or cannot be dated: unknown for everyone
            leaf_cols[f"l{k}"] = ibis.literal(UNKNOWN, "int8")
            continue
        start, end = plan.window(leaf_node)
        leaf = lv.Leaf(k, leaf_node, start, end)
        col = lv.leaf_status(leaf, wide)
        stated = isinstance(leaf_node, Measurement) and leaf_node.absent == "not_met"  # the protocol's own reading
        absent_is_absence = not isinstance(leaf_node, Measurement) or stated
        absence = ibis.ifelse(wide.observed, NOT_MET, UNKNOWN) if absent_is_absence else ibis.literal(UNKNOWN)
        why = silent.get(domain_of(leaf_node))
        # the source holds nothing of the kind for this person: where the protocol reads such a chart strictly
        # (``silent_chart: unknown``), absence by convention (a diagnosis, a drug) is unknown; a test whose
        # absence the protocol itself reads as not met (``absent: not_met``) keeps that reading
        if why is not None and absent_is_absence and not stated and plan.protocol.eligibility.silent_chart == "unknown":
            absence = ibis.ifelse(wide[why].notnull(), UNKNOWN, absence)
        leaf_cols[f"l{k}"] = ibis.coalesce(col, absence).cast("int8")
    wide = wide.mutate(**leaf_cols) if leaf_cols else wide
    roots = list(plan.roots.values())
    support_roots = [part.item for r in roots for n in walk(r) if isinstance(n, Attestation) for part in n.supporting]
    wide, node = _node_columns(_fenced(wide, compiler), roots + support_roots, compiler)
    crit: dict[str, Any] = {}
    for c in plan.protocol.eligibility.criteria:
        if c.computable is None:
            crit[f"c_{c.id}"] = ibis.literal(NEEDS_REVIEW, "int8")
            continue
        crit[f"c_{c.id}"] = node(c.computable).cast("int8")
        deciding: dict[int, Any] = {}
        _deciding(c.computable, node, ibis.literal(True), deciding, compiler)
        features = []
        for att in (n for n in walk(c.computable) if isinstance(n, Attestation)):
            for part in att.supporting:
                shown = node(part.item) == MET
                features.append(ibis.ifelse(shown, 1, 0))
                _deciding(part.item, node, shown, deciding, compiler)
        for k, flag in deciding.items():
            crit[f"d_{c.id}_{k}"] = flag
        if features:
            total = features[0]
            for f in features[1:]:
                total = total + f
            crit[f"s_{c.id}"] = total.cast("int16")
    quality += ["copies", "birth_problem"]
    keep = ["person_id", "observed", "died_on", "death_undated", "year_of_birth", "month_of_birth", "day_of_birth", "gender_concept_id",
            *silent.values()]
    if active_within_months is not None:
        keep.append("active")
    return wide.select(*keep, *[ibis.coalesce(wide[q], 0).name(q) if q.startswith("q_") else wide[q] for q in quality], **crit)


def _node_columns(wide: ir.Table, roots: list[Expression], compiler: Compiler) -> tuple[ir.Table, Callable[[Expression], Any]]:
    names: dict[str, str] = {}
    depth: dict[str, int] = {}
    nodes: dict[str, Expression] = {}

    def visit(n: Expression) -> int:
        key = n.model_dump_json()
        if key not in depth:
            depth[key] = 1 + max((visit(c) for c in children(n)), default=-1)
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
        below = column_in(w)
        w = _fenced(w.mutate(**{names[k]: _expr(nodes[k], w, below, compiler) for k in depth if depth[k] == level}), compiler)
    return w, column_in(w)


#: a LIMIT no table reaches: PostgreSQL never merges a subquery that has a LIMIT into its parent
_NO_LIMIT = (1 << 63) - 1


def _fenced(wide: ir.Table, compiler: Compiler) -> ir.Table:
    """PostgreSQL: each layer of columns computed once. PostgreSQL merges the layers of
    columns that refer to the layer below into one projection, copying a column's expression
    wherever it is used, so each node's subtree was evaluated again for every parent and
    every deciding flag that reads it (11 of the 14 s of the status statement at 100,000
    persons). A LIMIT keeps a layer a subquery of its own; DuckDB and Spark compute each
    layer once anyway."""
    return wide.limit(_NO_LIMIT) if compiler.db.backend == "postgres" else wide


def _deciding(node: Expression, status_of: Callable[[Expression], Any], needed: Any, out: dict[int, Any],
              compiler: Compiler) -> None:
    """Which leaves decided a node's status for a person: under an ALL that is not met, only
    the parts not met; under an ANY that is met, only the parts met; otherwise every part."""
    plan = compiler.plan
    if isinstance(node, (Occurrence, Duration, Measurement, Age, Sex)):
        k = plan.key(node)
        out[k] = needed if k not in out else out[k] | needed
    elif isinstance(node, (All, AnyOf)):
        status = status_of(node)
        decisive = NOT_MET if isinstance(node, All) else MET
        for item in node.items:
            _deciding(item, status_of, needed & ((status != decisive) | (status_of(item) == decisive)), out, compiler)
    elif isinstance(node, Not):
        _deciding(node.item, status_of, needed, out, compiler)


def _expr(node: Expression, w: ir.Table, child: Callable[[Expression], Any], compiler: Compiler) -> ir.IntegerValue:
    plan = compiler.plan
    if isinstance(node, Attestation):
        return ibis.literal(NEEDS_REVIEW, "int8")
    if isinstance(node, Age):
        return age_status(node, w, plan.anchors)
    if isinstance(node, Sex):
        allowed = {"female": FEMALE, "male": MALE}
        ok = [allowed[s] for s in node.allowed]
        return ibis.cases((w.gender_concept_id.isin(ok), MET), (w.gender_concept_id.isin([FEMALE, MALE]), NOT_MET),
                          else_=UNKNOWN).cast("int8")
    if isinstance(node, (Occurrence, Duration, Measurement)):
        return w[f"l{plan.key(node)}"]
    if isinstance(node, (All, AnyOf)):
        parts = [child(i) for i in node.items]
        if len(parts) == 1:
            return parts[0]
        return ibis.least(*parts) if isinstance(node, All) else ibis.greatest(*parts)
    if isinstance(node, Not):
        inner = child(node.item)
        return ibis.cases((inner == MET, NOT_MET), (inner == NOT_MET, MET), else_=inner).cast("int8")
    raise TypeError(f"unsupported criterion node {type(node).__name__}")


def age_status(node: Age, w: ir.Table, anchors: Anchors) -> ir.IntegerValue:
    """Age in completed years at the anchor. Without a full birth date the age is a range
    (year and month known: exact except in the birth month); the criterion is unknown when
    that range straddles a bound."""
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
                      else_=UNKNOWN).cast("int8")


__all__ = ["age_status", "domain_of", "status_table"]

"""Each kind of leaf as three pieces over the records of one domain, tagged with the value
sets they belong to (``value_set``):

- ``aggregates``: the per-person quantities that decide the leaf, computed in the single
  pass over the domain (counts, first and last dates, the latest result's status and the
  id of every record that decided);
- ``status``: the leaf's status from those quantities, for every person (NULL where the
  person has no record, so the absence rule can apply);
- ``evidence``: which of the person's records to cite (by the ids kept in the pass), with
  a note saying how each decided.

One definition serves the population, one patient's chart and a single ``explain``, so a
person's evidence is the same whichever way it was asked for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from trialdesk.criteria.language import Compare, Duration, Measurement, Occurrence, OxygenContext
from trialdesk.criteria.status import Status
from trialdesk.eligibility.plan import RecordLeaf

MET, NOT_MET, UNKNOWN, NEEDS_REVIEW = (int(s) for s in (Status.MET, Status.NOT_MET, Status.UNKNOWN, Status.NEEDS_REVIEW))

#: a condition whose status says it is over (FHIR clinicalStatus; a site's own status text)
ENDED_STATUSES = ("resolved", "inactive", "remission")

#: what the evidence says of a cited preliminary diagnosis (``tentative``, see :mod:`.reading`)
TENTATIVE_NOTE = "a preliminary diagnosis (not confirmed)"
#: the note on a cited record with no date, where it is what leaves its leaf unknown
UNDATED_NOTE = "no date recorded: it may lie in the window, or be the latest, so the records cannot decide this"


@dataclass(frozen=True)
class Leaf:
    """One leaf of the plan with its key and window dates, and the backend it runs on."""

    key: int
    node: RecordLeaf
    start: dt.date | None
    end: dt.date
    backend: str = ""

    @property
    def p(self) -> str:
        return f"k{self.key}_"


#: streaming aggregates that take the value at the greatest (least) key, where the backend has them:
#: Ibis compiles ``argmax`` to an ordered ``FIRST(x ORDER BY key)``, which DuckDB evaluates by sorting
#: each group (the measurement pass at 100,000 persons took 14 s that way)
_NATIVE = {"duckdb": ("arg_max", "arg_min"), "pyspark": ("max_by", "min_by")}
_UDAFS: dict[tuple[str, str], Any] = {}


def _udaf(name: str, x: ir.Value) -> Any:
    import ibis.expr.datatypes as dt_

    kind = "int8" if x.type().is_integer() and x.type().nbytes == 1 else "int64"
    if (name, kind) not in _UDAFS:
        xt = dt_.int8 if kind == "int8" else dt_.int64

        def fn(x: Any, key: Any) -> Any:  # the signature below types it
            ...

        fn.__name__ = f"{name}_{kind}"
        _UDAFS[(name, kind)] = ibis.udf.agg.builtin(fn, name=name, signature=((xt, dt_.int64), xt))
    return _UDAFS[(name, kind)]


def arg_max(leaf: Leaf, x: ir.Value, key: ir.IntegerValue, where: Any) -> Any:
    """The value of ``x`` at the greatest ``key`` among the rows ``where`` holds."""
    return native_arg("arg_max", leaf.backend, x, key, where)


def arg_min(leaf: Leaf, x: ir.Value, key: ir.IntegerValue, where: Any) -> Any:
    return native_arg("arg_min", leaf.backend, x, key, where)


def native_arg(kind: str, backend: str, x: ir.Value, key: ir.IntegerValue, where: Any) -> Any:
    if backend in _NATIVE:
        return _udaf(_NATIVE[backend][0 if kind == "arg_max" else 1], x)(x, key, where=where)
    if backend == "postgres":
        return _packed_arg(kind, x, key, where)
    return x.argmax(key, where=where) if kind == "arg_max" else x.argmin(key, where=where)


_HALF, _WIDTH = 1 << 63, 1 << 64


def _packed_arg(kind: str, x: ir.Value, key: ir.IntegerValue, where: Any) -> Any:
    """PostgreSQL has no arg_max, and Ibis's ``argmax`` there is ``ARRAY_AGG(x ORDER BY key)[1]``:
    a sort and an array per group and per slot (at 100,000 persons the measurement pass spent
    13 s in that aggregate, on disk). Both the key and the value are 64-bit integers here, so
    they are packed into one exact NUMERIC, ``(key + 2^63) * 2^64 + (x + 2^63)``, ordered as
    the key (then the value, for equal keys), and the plain ``max``/``min`` of it is a hashed
    aggregate; the value is the remainder. Rows with a NULL key or value are skipped, as
    DuckDB's ``arg_max`` does."""
    import ibis.expr.datatypes as dt_

    numeric = dt_.Decimal(None, None)
    half, width = ibis.literal(_HALF, numeric), ibis.literal(_WIDTH, numeric)
    packed = (key.cast(numeric) + half) * width + (x.cast(numeric) + half)
    rows = key.notnull() & x.notnull() if where is None else where & key.notnull() & x.notnull()
    best = packed.max(where=rows) if kind == "arg_max" else packed.min(where=rows)
    return ((best % width) - half).cast(x.type())


@dataclass(frozen=True)
class Agg:
    """One per-person quantity of a leaf, not yet an aggregate: its kind (``count``, ``min``,
    ``max``, ``arg_max``, ``arg_min``), the value aggregated, the rows it is taken over and,
    for the arg kinds, the ordering key. The compiler groups the quantities of the leaves
    that read the same value set, so each filter runs on that set's rows only."""

    kind: str
    x: Any
    where: Any
    key: Any = None

    def build(self, backend: str) -> Any:
        if self.kind == "count":
            return self.x.count(where=self.where)
        if self.kind == "min":
            return self.x.min(where=self.where)
        if self.kind == "max":
            return self.x.max(where=self.where)
        return native_arg(self.kind, backend, self.x, self.key, self.where)


def order_key(t: ir.Table) -> ir.IntegerValue:
    """Newest first: the record's date and time, then its id, packed in one 64-bit integer (a
    total order, so every quantity taken from "the latest record" comes from the same record on
    every backend; a string key cost several times more at a million records). Seconds since
    1900 (clamped at 0; records after the window's end are already left out) times 2^30, plus
    the id modulo 2^30."""
    seconds = ibis.greatest(t.moment.epoch_seconds().cast("int64") + 2_208_988_800, 0)
    return seconds * (1 << 30) + (t.record_id % (1 << 30))


def _op(op: str, left: Any, right: Any) -> Any:
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def dated_in(leaf: Leaf, t: ir.Table, *, overlap: bool) -> ir.BooleanValue:
    """The record is dated inside the leaf's window (a period: touches it)."""
    cond = t.start <= leaf.end
    if leaf.start is not None:
        cond &= (ibis.coalesce(t.end, t.start) if overlap else t.start) >= leaf.start
    return cond & t.start.notnull()


# -- occurrences ---------------------------------------------------------------------------


def _lasting_in(leaf: Leaf, t: ir.Table) -> ir.BooleanValue:
    """A state that began by the window's end and had not ended before its start."""
    cond = t.start.notnull() & (t.start <= leaf.end)
    if leaf.start is not None:
        ended_status = t.status_text.lower().strip().isin(list(ENDED_STATUSES)) if "status_text" in t.columns else ibis.literal(False)
        ended_at = ibis.coalesce(t.end, ibis.ifelse(ibis.coalesce(ended_status, False), t.start, ibis.null("date")))
        cond &= ended_at.isnull() | (ended_at >= leaf.start)
    return cond


def occurrence_aggregates(leaf: Leaf, t: ir.Table, key: ir.IntegerValue, answers: AnswerTest) -> dict[str, Agg]:
    """Over the rows of the leaf's value set (the compiler restricts them)."""
    node = leaf.node
    assert isinstance(node, Occurrence)
    p = leaf.p
    of_set = answers.is_in(node.value, t) if node.value is not None else ibis.literal(True)
    rid = t.record_id
    undated = Agg("count", rid, of_set & t.start.isnull())
    undated_id = Agg("arg_max", rid, of_set & t.start.isnull(), key)
    # a preliminary diagnosis decides nothing: it is kept apart, and the leaf asks about it (``tentative``:
    # conditions whose extract has condition_status_concept_id; elsewhere no record is tentative)
    tentative = t.tentative if "tentative" in t.columns else None
    if node.first_ever:
        before_end = of_set & t.start.notnull() & (t.start <= leaf.end)
        out = {p + "first": Agg("min", t.start, before_end), p + "id": Agg("arg_min", rid, before_end, key),
               p + "undated": undated, p + "uid": undated_id}
        if tentative is not None:  # the first confirmed record, beside the first record of any kind
            out |= {p + "cfirst": Agg("min", t.start, before_end & ~tentative),
                    p + "cid": Agg("arg_min", rid, before_end & ~tentative, key)}
        return out
    began_inside = dated_in(leaf, t, overlap=node.kind == "drug")
    if node.lasting == "review":
        # counted: what began in the window; asked about: what began before and has not ended
        still = of_set & _lasting_in(leaf, t) & ~began_inside
        hit = of_set & began_inside
    else:
        hit = of_set & (_lasting_in(leaf, t) if node.lasting else began_inside)
    counted = hit & ~tentative if tentative is not None else hit
    out = {p + "n": Agg("count", rid, counted), p + "id": Agg("arg_max", rid, counted, key),
           p + "fid": Agg("arg_min", rid, counted, key), p + "undated": undated, p + "uid": undated_id}
    if node.lasting == "review":
        out |= {p + "old": Agg("count", rid, still), p + "oid": Agg("arg_max", rid, still, key)}
    if tentative is not None:  # the newest preliminary record that counts (and how many, where one is not enough)
        out[p + "tid"] = Agg("arg_max", rid, hit & tentative, key)
        if node.min_count > 1:
            out[p + "tn"] = Agg("count", rid, hit & tentative)
    return out


def _tentative_hits(leaf: Leaf, a: ir.Table) -> Any:
    """The leaf's preliminary records would make it met if they held (None: the table has no such records)."""
    node = leaf.node
    assert isinstance(node, Occurrence)
    p = leaf.p
    if p + "tid" not in a.columns:
        return None
    if node.min_count > 1:
        return a[p + "tid"].notnull() & (ibis.coalesce(a[p + "n"], 0) + ibis.coalesce(a[p + "tn"], 0) >= node.min_count)
    return a[p + "tid"].notnull()


def occurrence_status(leaf: Leaf, a: ir.Table) -> ir.IntegerValue:
    node = leaf.node
    assert isinstance(node, Occurrence)
    p = leaf.p
    undated = ibis.coalesce(a[p + "undated"], 0) > 0
    if node.first_ever:
        first = a[p + "first"]
        in_window = first >= leaf.start if leaf.start is not None else ibis.literal(True)
        cases: list[tuple[Any, Any]] = [
            (undated, UNKNOWN),  # an undated record might be the first
            (first.isnull(), ibis.null("int8"))]
        if p + "cfirst" in a.columns:
            # the first record is a preliminary diagnosis: read both ways (it holds, it does not) and asked
            # about only where the two readings disagree (it is in the window and no confirmed record follows
            # there; or it is before the window and the first confirmed record is inside)
            cfirst = a[p + "cfirst"]
            confirmed_first = cfirst.notnull() & (cfirst == first)
            cfirst_in_window = cfirst >= leaf.start if leaf.start is not None else cfirst.notnull()
            cases += [(~confirmed_first & in_window & cfirst.isnull(), NEEDS_REVIEW),
                      (~confirmed_first & ~in_window & ibis.coalesce(cfirst_in_window, False), NEEDS_REVIEW)]
        return ibis.cases(*cases, (in_window, MET), else_=NOT_MET).cast("int8")
    n = a[p + "n"]
    cases = [(n >= node.min_count, MET)]
    tentative = _tentative_hits(leaf, a)
    if tentative is not None:
        cases.append((tentative, NEEDS_REVIEW))  # met only if a preliminary diagnosis holds
    if node.lasting == "review":
        cases.append((ibis.coalesce(a[p + "old"], 0) > 0, NEEDS_REVIEW))  # began before the window, no end recorded
    cases += [(undated, UNKNOWN),  # an undated record might lie in the window
              (n.isnull() | (n == 0), ibis.null("int8"))]
    return ibis.cases(*cases, else_=NOT_MET).cast("int8")


def occurrence_note(leaf: Leaf, t: ir.Table, a: ir.Table) -> Any:
    node = leaf.node
    assert isinstance(node, Occurrence)
    p = leaf.p
    if node.first_ever:
        inside = t.start >= leaf.start if leaf.start is not None else ibis.literal(True)
        where = ibis.ifelse(inside, "inside the window", "before the window")
        note = "first record, " + where
        if p + "cid" in a.columns:  # the first confirmed record, cited beside a first record that is preliminary
            note = ibis.ifelse(t.record_id == a[p + "id"], note, "first confirmed record, " + where)
        return _with_tentative(leaf, t, a, note)
    count = a[p + "n"].cast("string")
    which = ibis.ifelse(t.record_id == a[p + "id"], "newest", "earliest")
    note = ibis.ifelse(a[p + "n"] > 1, which + " of " + count + " records in the window", ibis.null("string"))
    if "tentative" in t.columns:  # the count is of confirmed records
        note = ibis.ifelse(ibis.coalesce(t.tentative, False), ibis.null("string"), note)
    if node.lasting:
        began_before = t.start < leaf.start if leaf.start is not None else ibis.literal(False)
        ended = "began before the window and has no end recorded" + (
            ": is it still active?" if node.lasting == "review" else ", so it is read as still present")
        note = ibis.ifelse(began_before, ended, note)
    return _with_tentative(leaf, t, a, note)


def _with_tentative(leaf: Leaf, t: ir.Table, a: ir.Table, note: Any) -> Any:
    """A cited preliminary diagnosis says so, and asks whether it holds where that decides the leaf."""
    if "tentative" not in t.columns:
        return note
    said = TENTATIVE_NOTE + ibis.ifelse(occurrence_status(leaf, a) == NEEDS_REVIEW, ": does it hold?", "")
    return ibis.ifelse(ibis.coalesce(t.tentative, False), ibis.coalesce(note + "; " + said, said), note)


# -- durations -----------------------------------------------------------------------------


def duration_aggregates(leaf: Leaf, t: ir.Table, key: ir.IntegerValue) -> dict[str, Agg]:
    """Over the rows of the leaf's value set (the compiler restricts them)."""
    p = leaf.p
    node = leaf.node
    assert isinstance(node, Duration)
    hit = dated_in(leaf, t, overlap=True)
    last = ibis.coalesce(t.end, t.start)
    # the last exposure by its end day, then newest first: days since 1900 above the record key's bits
    end_key = (last.delta(ibis.date(1900, 1, 1), unit="day").cast("int64") * 86_400).clip(lower=0) * (1 << 30) \
        + (t.record_id % (1 << 30))
    return {p + "first": Agg("min", t.start, hit), p + "last": Agg("max", last, hit),
            p + "fid": Agg("arg_min", t.record_id, hit, key), p + "lid": Agg("arg_max", t.record_id, hit, end_key),
            p + "undated": Agg("count", t.record_id, t.start.isnull()),
            p + "uid": Agg("arg_max", t.record_id, t.start.isnull(), key)}


def duration_status(leaf: Leaf, a: ir.Table) -> ir.IntegerValue:
    node = leaf.node
    assert isinstance(node, Duration)
    p = leaf.p
    first, last = a[p + "first"], a[p + "last"]
    days = last.delta(first, unit="day")
    ok = ibis.literal(True)
    if node.min_days is not None:
        ok &= days >= node.min_days
    if node.max_days is not None:
        ok &= days < node.max_days
    if node.current_within_days is not None:
        ok &= last >= leaf.end - dt.timedelta(days=node.current_within_days)
    undated = ibis.coalesce(a[p + "undated"], 0) > 0
    return ibis.cases((undated, UNKNOWN), (first.isnull(), ibis.null("int8")), (ok, MET), else_=NOT_MET).cast("int8")


def duration_note(leaf: Leaf, t: ir.Table, a: ir.Table) -> Any:
    node = leaf.node
    assert isinstance(node, Duration)
    p = leaf.p
    span = a[p + "last"].delta(a[p + "first"], unit="day").cast("string")
    first = ibis.ifelse(t.record_id == a[p + "fid"], "first exposure of the therapy", ibis.null("string"))
    last = ibis.ifelse(t.record_id == a[p + "lid"], "last exposure of the therapy", ibis.null("string"))
    text = ibis.coalesce(first + "; " + last, first, last)
    note = text + " (" + span + " days from first to last"
    if node.current_within_days is not None:
        current = a[p + "last"] >= leaf.end - dt.timedelta(days=node.current_within_days)
        note = note + ibis.ifelse(current, "; current", f"; ended more than {node.current_within_days} days before")
    return note + ")"


# -- measurements --------------------------------------------------------------------------


class AnswerTest:
    """Whether a record's value is an answer of a value set: its value concept is one of the
    set's concepts, or its written value (trimmed, case-folded) one of its codes or texts.

    The tagged records carry one flag column per answer set (``ans<i>``), filled by two
    joins with a small table of answer keys (``c:<concept id>``, ``t:<text>``), so a leaf
    asks a column, not a subquery (a subquery per leaf made DuckDB plan a join for each)."""

    def __init__(self, columns: dict[str, str]):
        self.columns = columns  # answer set -> flag column

    def is_in(self, value_set: str, t: ir.Table) -> ir.BooleanValue:
        col = self.columns.get(value_set)
        if col is None or col not in t.columns:
            return ibis.literal(False)
        return t[col]


def carries_result(t: ir.Table) -> ir.BooleanValue:
    """The record holds a result of some kind (a number, an unreadable number, a coded or
    written value); a row with none (a panel header) is not a result."""
    return (t.value.notnull() | t.value_raw.notnull() | (ibis.coalesce(t.value_concept, 0) != 0)
            | (ibis.coalesce(t.value_text.strip(), "") != ""))


@dataclass(frozen=True)
class ContextColumns:
    """Per-record flags of an oxygen context, computed over the records at the same moment."""

    on_oxygen: str
    room_air: str
    exertion: str


def context_flags(t: ir.Table, ctx: OxygenContext, n: int) -> tuple[ir.Table, ContextColumns]:
    """Whether oxygen, room air or exertion was recorded at the record's moment (same person,
    same date and time). Computed over the records of the context's own value sets, grouped by
    (person, moment) and joined back: a window over every tagged record partitioned every
    measurement (5 of the 11 s of the measurement pass at 100,000 persons). A record with no
    moment has no date either, so it is never in a window and its setting decides nothing."""
    exertional_sets = [ctx.exertion] + ([ctx.exertional_readings] if ctx.exertional_readings else [])
    s = t.filter(t.value_set.isin([ctx.oxygen, *exertional_sets]))
    pct = ibis.coalesce(s.unit.lower().isin(["%", "percent", "pct"]), False)
    is_o2 = s.value_set == ctx.oxygen
    on = is_o2 & (s.value.isnull() | (pct & (s.value > 21)) | (~pct & (s.value > 0)))
    room = is_o2 & s.value.notnull() & ((pct & (s.value <= 21)) | (~pct & (s.value == 0)))
    ex = s.value_set.isin(exertional_sets)
    cols = ContextColumns(f"ctx{n}_o2", f"ctx{n}_ra", f"ctx{n}_ex")
    at = s.group_by([s.person_id.name(f"ctx{n}_pid"), s.moment.name(f"ctx{n}_moment")]).aggregate(
        **{cols.on_oxygen: on.max(), cols.room_air: room.max(), cols.exertion: ex.max()})
    j = t.left_join(at, [t.person_id == at[f"ctx{n}_pid"], t.moment == at[f"ctx{n}_moment"]])
    return j.select(*t.columns, **{c: ibis.coalesce(j[c], False) for c in (cols.on_oxygen, cols.room_air, cols.exertion)}), cols


def numeric_status(cmp: Compare, t: ir.Table, factor: Any) -> Any:
    """A number compared: met, not met, or unknown (no range, or a unit that does not convert)."""
    v = t.value
    if cmp.op == "outside_range":
        low, high = t.range_low, t.range_high
        return ibis.cases(((low.notnull() & (v < low)) | (high.notnull() & (v > high)), MET),
                          (low.notnull() & high.notnull(), NOT_MET), else_=UNKNOWN)
    if cmp.ref is not None:
        bound = t.range_high if cmp.ref == "ULN" else t.range_low
        return ibis.cases((bound.isnull(), UNKNOWN), (_op(cmp.op, v, bound * cmp.factor), MET), else_=NOT_MET)
    if cmp.plausible is not None:
        low, high = cmp.plausible
        return ibis.cases((factor.isnull(), UNKNOWN), (~(v * factor).between(low, high), UNKNOWN),
                          (_op(cmp.op, v * factor, ibis.literal(cmp.value)), MET), else_=NOT_MET)
    return ibis.cases((factor.isnull(), UNKNOWN), (_op(cmp.op, v * factor, ibis.literal(cmp.value)), MET), else_=NOT_MET)


def result_status(node: Measurement, t: ir.Table, factor: Any, answers: AnswerTest,
                  ctx: ContextColumns | None) -> ir.IntegerValue:
    """The status one result gives, in its setting."""
    cases: list[tuple[Any, Any]] = []
    if node.compare is not None:
        status = numeric_status(node.compare, t, factor)
        if node.context is not None and ctx is not None:
            status = _in_context(node.compare.op, node.context, status, t, ctx)
        cases.append((t.value.notnull(), status))
    if node.qualitative is not None:
        cases.append((answers.is_in(node.qualitative.positive, t), MET))
        cases.append((answers.is_in(node.qualitative.negative, t), NOT_MET))
    return ibis.cases(*cases, else_=UNKNOWN).cast("int8")


def _in_context(op: str, ctx: OxygenContext, status: Any, t: ir.Table, c: ContextColumns) -> Any:
    """Oxygen raises a reading, exertion lowers it: outside rest on room air a reading
    decides only in the direction those cannot explain."""
    below = op in ("<", "<=")
    on_o2, exertional = t[c.on_oxygen], t[c.exertion]
    recorded = on_o2 | exertional | t[c.room_air]
    lost_on_o2 = NOT_MET if below else MET
    lost_in_exertion = MET if below else NOT_MET
    out = ibis.cases(
        (on_o2 & exertional, UNKNOWN),
        (on_o2 & (status == lost_on_o2), UNKNOWN),
        (exertional & (status == lost_in_exertion), UNKNOWN),
        else_=status)
    if ctx.unrecorded == "unknown":
        out = ibis.ifelse(recorded, out, UNKNOWN)
    return out


def result_note(node: Measurement, t: ir.Table, factor: Any, answers: AnswerTest, ctx: ContextColumns | None) -> Any:
    """Why a cited result decided as it did, in words."""
    parts: list[tuple[Any, Any]] = [(t.value.isnull() & t.value_raw.notnull(),
                                     "the value '" + t.value_raw + "' cannot be read as a number")]
    if node.compare is not None and node.qualitative is None:  # a number was expected, and there is none
        parts.append((t.value.isnull() & t.value_text.notnull(),
                      "no number recorded: the result reads '" + t.value_text + "', which decides nothing"))
    if node.compare is not None:
        cmp = node.compare
        if cmp.op == "outside_range":
            parts.append((t.value.notnull() & (t.range_low.isnull() | t.range_high.isnull()),
                          "no complete reference range on the record"))
        elif cmp.ref is not None:
            bound = t.range_high if cmp.ref == "ULN" else t.range_low
            parts.append((t.value.notnull() & bound.isnull(), f"no {cmp.ref} on the record"))
            parts.append((t.value.notnull(), f"compared with {cmp.factor:g} x {cmp.ref}"))
        else:
            parts.append((t.value.notnull() & factor.isnull(),
                          "unit '" + ibis.coalesce(t.unit, "(none)") + f"' cannot be converted to {cmp.unit}"))
            if cmp.plausible is not None:
                low, high = cmp.plausible
                parts.append((t.value.notnull() & ~(t.value * factor).between(low, high),
                              f"a value outside what is possible ({low:g}–{high:g} {cmp.unit}): a recording error? "
                              "It decides nothing"))
        if node.context is not None and ctx is not None:
            below = cmp.op in ("<", "<=")
            on_o2, ex = t[ctx.on_oxygen], t[ctx.exertion]
            parts.append((on_o2 & ex, "taken on supplemental oxygen during exertion: shows nothing about rest on room air"))
            parts.append((on_o2, "taken on supplemental oxygen: " + (
                "a value this low shows the room-air value is too" if below else "a value this high may be the oxygen's")
                + ibis.ifelse(numeric_status(cmp, t, factor) == (NOT_MET if below else MET),
                              "; it cannot show the room-air value", "")))
            parts.append((ex, "taken during exertion: " + (
                "a value this high shows the resting value is too" if below else "a value this low may be the exertion's")
                + ibis.ifelse(numeric_status(cmp, t, factor) == (MET if below else NOT_MET),
                              "; it cannot show the resting value", "")))
            parts.append((t[ctx.room_air], "recorded on room air"))
            if node.context.unrecorded == "at_rest_on_room_air":
                parts.append((ibis.literal(True), "no oxygen or exertion recorded: read as at rest on room air"))
            else:
                parts.append((ibis.literal(True), "no oxygen or exertion recorded: the setting is unknown"))
    if node.qualitative is not None:
        parts.append((answers.is_in(node.qualitative.positive, t), "reported as positive"))
        parts.append((answers.is_in(node.qualitative.negative, t), "reported as negative"))
        parts.append((t.value.isnull(), "reported as '" + ibis.coalesce(t.value_text, "(no value)") + "': neither positive nor negative"))
    return ibis.cases(*parts, else_=ibis.null("string"))


def measurement_aggregates(leaf: Leaf, t: ir.Table, key: ir.IntegerValue, status: ir.IntegerValue) -> dict[str, Agg]:
    """Over the rows of the leaf's value set (the compiler restricts them)."""
    node = leaf.node
    assert isinstance(node, Measurement)
    p = leaf.p
    of_set = carries_result(t)
    hit = of_set & dated_in(leaf, t, overlap=False)
    rid = t.record_id
    out = {p + "undated": Agg("count", rid, of_set & t.start.isnull()),
           p + "uid": Agg("arg_max", rid, of_set & t.start.isnull(), key)}
    if node.select == "latest":
        out |= {p + "id": Agg("arg_max", rid, hit, key), p + "st": Agg("arg_max", status, hit, key)}
    else:
        out |= {p + "n": Agg("count", rid, hit), p + "met": Agg("count", rid, hit & (status == MET)),
                p + "not": Agg("count", rid, hit & (status == NOT_MET)),
                p + "id": Agg("arg_max", rid, hit & (status == MET), key),
                p + "nid": Agg("arg_max", rid, hit, key)}
    return out


def measurement_status(leaf: Leaf, a: ir.Table) -> ir.IntegerValue:
    node = leaf.node
    assert isinstance(node, Measurement)
    p = leaf.p
    undated = ibis.coalesce(a[p + "undated"], 0) > 0
    if node.select == "latest":
        st = a[p + "st"]
        # an undated result might be the latest: the latest cannot be known
        decided = ibis.cases((undated, UNKNOWN), (st.notnull(), st), else_=ibis.null("int8"))
    else:
        decided = ibis.cases((a[p + "met"] > 0, MET), (undated, UNKNOWN), (a[p + "not"] > 0, NOT_MET),
                             (a[p + "n"] > 0, UNKNOWN), else_=ibis.null("int8"))
    return decided.cast("int8")


def cited_ids(leaf: Leaf) -> list[str]:
    """The aggregate columns that hold the ids of the records a leaf cites."""
    node = leaf.node
    if isinstance(node, Duration):
        return [leaf.p + "fid", leaf.p + "lid"]
    if isinstance(node, Measurement) and node.select == "any":
        return [leaf.p + "id", leaf.p + "nid"]
    if isinstance(node, Occurrence) and node.lasting == "review":
        return [leaf.p + "id", leaf.p + "fid", leaf.p + "oid"]
    if isinstance(node, Occurrence) and not node.first_ever:
        return [leaf.p + "id", leaf.p + "fid"]  # the newest and the earliest record in the window
    return [leaf.p + "id"]


def cited(leaf: Leaf, t: ir.Table, a: ir.Table) -> ir.BooleanValue:
    """The record is one the leaf cites for its person."""
    ids = cited_ids(leaf)
    if isinstance(leaf.node, Measurement) and leaf.node.select == "any":
        # the newest positive result when there is one, else the newest result
        return (t.record_id == ibis.coalesce(a[ids[0]], a[ids[1]]))
    cond = ibis.literal(False)
    for c in ids:
        cond |= t.record_id == a[c]
    node = leaf.node
    if isinstance(node, Occurrence) and leaf.p + "cid" in a.columns:  # first_ever: the first confirmed record too
        cond |= t.record_id == a[leaf.p + "cid"]
    elif isinstance(node, Occurrence) and leaf.p + "tid" in a.columns:
        # the newest preliminary record, where the confirmed ones are not enough (it is what the leaf asks about)
        cond |= (t.record_id == a[leaf.p + "tid"]) & (ibis.coalesce(a[leaf.p + "n"], 0) < node.min_count)
    return ibis.coalesce(cond | _cited_undated(leaf, t, a), False)


def leaf_status(leaf: Leaf, a: ir.Table) -> ir.IntegerValue:
    """A record leaf's status from its per-person aggregates."""
    node = leaf.node
    if isinstance(node, Occurrence):
        return occurrence_status(leaf, a)
    if isinstance(node, Duration):
        return duration_status(leaf, a)
    return measurement_status(leaf, a)


def _cited_undated(leaf: Leaf, t: ir.Table, a: ir.Table) -> ir.BooleanValue:
    """The newest record with no date, where the leaf is unknown: it is what keeps the leaf from being decided,
    and the person checking needs to see which record it is."""
    return (t.record_id == a[leaf.p + "uid"]) & (leaf_status(leaf, a) == UNKNOWN)


def undated_note(t: ir.Table, note: Any) -> Any:
    """A cited record with no date says why it matters (every cited undated record is cited for that reason)."""
    return ibis.ifelse(t.start.isnull(), ibis.literal(UNDATED_NOTE), note)

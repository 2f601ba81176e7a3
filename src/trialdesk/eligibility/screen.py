"""Screening: run a protocol's criteria over an OMOP CDM and report per person and
criterion, with the evidence, an ATLAS-style attrition funnel, and ranked candidates.

The heavy work (reading the domain tables) runs on the database's own backend; the
result — one small row per person and the evidence rows — is assembled into the output
files in an embedded DuckDB, so every backend produces byte-for-byte the same files.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trialdesk.eligibility.compiler import Compiler, Plan
from trialdesk.criteria.status import Status
from trialdesk.criteria.windows import Anchors
from trialdesk.protocol.loader import load_value_sets
from trialdesk.protocol.model import Protocol
from trialdesk.sources.omop import OmopDatabase, OmopError, observation_bounds
from trialdesk.terminology.value_set import ValueSet

LABELS = {int(s): s.label for s in Status}


def _unit_factor(from_unit: str, to_unit: str, analyte: str | None) -> float | None:
    from trialdesk.terminology.units import linear_factor

    return linear_factor(from_unit, to_unit, analyte)


@dataclass
class ScreenResult:
    protocol: Protocol
    anchors: Anchors
    statuses: pa.Table
    evidence: pa.Table
    plan: Plan
    notes: list[str] = field(default_factory=list)
    active_within_months: int | None = None
    _connection: duckdb.DuckDBPyConnection | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def criterion_ids(self) -> list[str]:
        return [c.id for c in self.protocol.eligibility.criteria]

    @property
    def ordinal(self) -> dict[str, int]:
        """Each criterion's place in the protocol (the key the long table is built on)."""
        return {cid: i for i, cid in enumerate(self.criterion_ids)}

    def _con(self) -> duckdb.DuckDBPyConnection:
        """An embedded DuckDB over the result's tables, opened once per result (opening one
        and registering the tables cost tens of milliseconds of every one-patient check).
        Like the result itself, it is for one thread at a time."""
        if self._connection is None:
            self._connection = self._open()
        return self._connection

    def _open(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        con.register("s", self.statuses)
        con.register("e", self.evidence)
        ordinal = self.ordinal
        lc = [(k, ordinal[cid]) for k, cids in self.plan.leaf_criteria.items() for cid in sorted(cids)]
        con.register("lc", pa.table({"leaf": pa.array([k for k, _ in lc], pa.int32()),
                                     "ord": pa.array([o for _, o in lc], pa.int8())}))
        names = self.plan.concept_names
        con.register("cn", pa.table({"concept_id": pa.array(list(names), pa.int64()),
                                     "display": pa.array(list(names.values()), pa.string())}))
        order = self.criterion_ids
        con.register("co", pa.table({"criterion_id": order, "ord": pa.array(range(len(order)), pa.int8())}))
        return con

    def _evidence_sql(self) -> str:
        """Every cited record as one flat row: ``row`` (the person's rank by person id times
        the number of criteria, plus the criterion's ordinal) and the evidence fields,
        sorted by row, newest first, then by record id."""
        as_of = self.anchors.as_of
        ordinal = self.ordinal
        age = _item_columns(
            table="'person'", record_id="person_id",
            birth="concat_ws('-', year_of_birth::VARCHAR, lpad(month_of_birth::VARCHAR, 2, '0'), lpad(day_of_birth::VARCHAR, 2, '0'))",
            note=f"'age on {as_of}: ' || CASE WHEN day_of_birth IS NOT NULL AND month_of_birth IS NOT NULL "
                 f"THEN (date_sub('year', make_date(year_of_birth, month_of_birth, day_of_birth), DATE '{as_of}'))::VARCHAR "
                 "ELSE 'from birth year' || CASE WHEN month_of_birth IS NOT NULL THEN ' and month' ELSE '' END END")
        sex = _item_columns(table="'person'", record_id="person_id", concept_id="gender_concept_id",
                            display="CASE gender_concept_id WHEN 8532 THEN 'FEMALE' WHEN 8507 THEN 'MALE' ELSE 'not recorded' END")
        demo = []
        if "I1" in ordinal and self._kind("I1") == "age":
            demo.append(f"SELECT person_id, {ordinal['I1']} AS ord, 0 AS newest, {age} FROM s WHERE year_of_birth IS NOT NULL")
        if "I2" in ordinal and self._kind("I2") == "sex":
            demo.append(f"SELECT person_id, {ordinal['I2']} AS ord, 0 AS newest, {sex} FROM s")
        records = _item_columns(table='e."table"', record_id="e.record_id", date="e.date::VARCHAR", concept_id="e.concept_id",
                                code="e.source_value", display="cn.display", value="e.value", unit="e.unit",
                                range_low="e.range_low", range_high="e.range_high", note="e.note")
        return f"""
        SELECT pos.pos * {len(ordinal)} + x.ord AS "row", x.* EXCLUDE (person_id, ord, newest)
        FROM (
          SELECT e.person_id, e.ord, date_diff('day', e.date, DATE '1970-01-01') AS newest, {records}
          FROM (SELECT lc.ord, e.* EXCLUDE (leaf)
                FROM e JOIN lc ON e.leaf = lc.leaf JOIN s ON s.person_id = e.person_id
                WHERE {self._deciding_sql()}
                -- a record cited by two parts of a criterion is listed once, with its note
                QUALIFY row_number() OVER (PARTITION BY e.person_id, lc.ord, e."table", e.record_id
                                           ORDER BY e.note NULLS LAST) = 1) e
               LEFT JOIN cn ON e.concept_id = cn.concept_id
          {"".join(" UNION ALL " + d for d in demo)}
        ) x JOIN pos USING (person_id)
        ORDER BY "row", x.newest, x.record_id, x."table"
        """

    def _deciding_sql(self) -> str:
        """True when the evidence row's leaf decided its criterion for that person."""
        cols = set(self.statuses.column_names)
        ordinal = self.ordinal
        arms = [f"WHEN lc.ord = {ordinal[cid]} AND e.leaf = {k} THEN s.d_{cid}_{k}"
                for k, cids in self.plan.leaf_criteria.items() for cid in cids if f"d_{cid}_{k}" in cols]
        return "CASE " + " ".join(arms) + " ELSE TRUE END" if arms else "TRUE"

    def _kind(self, cid: str) -> str | None:
        c = self.protocol.eligibility.criterion(cid).computable
        return c.kind if c is not None else None

    def person_criteria(self) -> pa.Table:
        """One row per person and criterion, sorted by person id and then in the protocol's
        order: person_id, criterion_id, status, and evidence — the records that decided the
        status, newest first, as a list of structs (a typed list in Parquet, a list of dicts
        in Python; every item has every field of :data:`EVIDENCE_FIELDS`, NULL where it does
        not apply).

        The long table is assembled in Arrow from the wide status table and the flat, sorted
        evidence rows (list offsets from a count per row). Built in SQL, the same table cost
        several times more: DuckDB's list aggregate over 12-field structs and the join of 15
        million rows with their lists dominated the whole screen at a million persons."""
        long = self.long_statuses()
        m = len(self.criterion_ids)
        persons = long.num_rows // m if m else 0
        con = self._con()
        con.register("pos", pa.table({"person_id": self.statuses["person_id"], "pos": self._person_rank()}))
        flat = con.execute(self._evidence_sql()).fetch_arrow_table().combine_chunks()
        counts = np.bincount(flat["row"].to_numpy(), minlength=persons * m)
        offsets = np.zeros(persons * m + 1, dtype=np.int32)
        np.cumsum(counts, out=offsets[1:])
        items = pa.StructArray.from_arrays([flat[f].chunk(0) if flat[f].num_chunks else pa.array([], flat[f].type)
                                            for f in EVIDENCE_FIELDS], names=list(EVIDENCE_FIELDS))
        return long.append_column("evidence", pa.ListArray.from_arrays(pa.array(offsets), items))

    def _person_rank(self) -> np.ndarray:
        """Each status row's place when the persons are sorted by id."""
        order = np.argsort(self.statuses["person_id"].to_numpy(zero_copy_only=False), kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order), dtype=np.int64)
        return rank

    def long_statuses(self) -> pa.Table:
        """person_id, criterion_id and status: one row per person and criterion, sorted by
        person id and then in the protocol's order (:meth:`person_criteria` without the evidence)."""
        cids = self.criterion_ids
        m = len(cids)
        s = self.statuses
        order = np.argsort(s["person_id"].to_numpy(zero_copy_only=False), kind="stable")
        undecided = [c for c in cids if s[f"c_{c}"].null_count]
        if undecided:  # every criterion has a status for every person; a NULL is a compiler bug
            raise AssertionError(f"criteria without a status for some persons: {undecided}")
        codes = np.stack([s[f"c_{c}"].to_numpy(zero_copy_only=False) for c in cids], axis=1)[order].ravel() if m else np.array([])
        low = min(LABELS)
        status = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int8) - low, pa.int8()),
                                                pa.array([LABELS[k] for k in range(low, low + len(LABELS))]))
        criterion = pa.DictionaryArray.from_arrays(pa.array(np.tile(np.arange(m, dtype=np.int8), len(order))), pa.array(cids))
        return pa.table({"person_id": pa.array(np.repeat(s["person_id"].to_numpy(zero_copy_only=False)[order], m), pa.int64()),
                         "criterion_id": criterion, "status": status})

    def write_person_criteria(self, path: Path) -> None:
        pq.write_table(self.person_criteria(), path, compression="zstd")

    # -- funnel and candidates ------------------------------------------------------

    @staticmethod
    def _excluding(cid: str) -> int:
        """The status by which criterion ``cid`` excludes: an inclusion not met, an exclusion met."""
        return int(Status.NOT_MET if cid.startswith("I") else Status.MET)

    def _excl(self, cid: str) -> str:
        return f"(c_{cid} = {self._excluding(cid)})"

    def _codes(self, cid: str) -> np.ndarray:
        return np.asarray(self.statuses[f"c_{cid}"].to_numpy(zero_copy_only=False))

    def _excluded(self, cid: str) -> np.ndarray:
        """Who criterion ``cid`` excludes."""
        return np.asarray(self._codes(cid) == self._excluding(cid))

    def funnel(self) -> list[dict[str, Any]]:
        """Criteria applied in order; counts among those still remaining before each step
        (counted in NumPy over the status columns: one pass per criterion)."""
        rows: list[dict[str, Any]] = []
        remaining = np.ones(self.statuses.num_rows, dtype=bool)
        if self.active_within_months is not None:
            remaining = self.statuses["active"].to_numpy(zero_copy_only=False).astype(bool)
            active = int(remaining.sum())
            rows.append({"criterion_id": f"ACTIVE_{self.active_within_months}M", "met": active,
                         "not_met": self.statuses.num_rows - active, "unknown": 0, "needs_review": 0, "remaining": active})
        for cid in self.criterion_ids:
            counts = np.bincount(self._codes(cid)[remaining].astype(np.int64), minlength=len(LABELS))
            by = {LABELS[k]: int(counts[k]) for k in LABELS}
            remaining &= ~self._excluded(cid)
            rows.append({"criterion_id": cid, "met": by["met"], "not_met": by["not_met"], "unknown": by["unknown"],
                         "needs_review": by["needs_review"], "remaining": int(remaining.sum())})
        return rows

    def candidates(self) -> pa.Table:
        """People not excluded: eligible first, then by how few items remain to check."""
        con = self._con()
        cids = self.criterion_ids
        not_excluded = " AND ".join(f"NOT {self._excl(c)}" for c in cids)
        settled = " + ".join(
            f"(CASE WHEN c_{c} = {int(Status.MET if c.startswith('I') else Status.NOT_MET)} THEN 0 ELSE 1 END)" for c in cids)
        unknown = "concat_ws(' ', " + ", ".join(f"CASE WHEN c_{c} = {int(Status.UNKNOWN)} THEN '{c}' END" for c in cids) + ")"
        review = "concat_ws(' ', " + ", ".join(f"CASE WHEN c_{c} = {int(Status.NEEDS_REVIEW)} THEN '{c}' END" for c in cids) + ")"
        active = " AND active" if self.active_within_months is not None else ""
        q = f"""
          SELECT row_number() OVER (ORDER BY items, person_id) AS rank, person_id,
                 CASE WHEN items = 0 THEN 'eligible' ELSE 'needs_review' END AS overall, items AS items_to_check,
                 unknown_criteria, needs_review_criteria
          FROM (SELECT person_id, {settled} AS items, {unknown} AS unknown_criteria, {review} AS needs_review_criteria
                FROM s WHERE {not_excluded}{active})
          ORDER BY rank"""
        return con.execute(q).fetch_arrow_table()

    def overall(self) -> pa.Table:
        con = self._con()
        cids = self.criterion_ids
        excluded = " OR ".join(self._excl(c) for c in cids)
        clean = " AND ".join(f"c_{c} = {int(Status.MET if c.startswith('I') else Status.NOT_MET)}" for c in cids)
        return con.execute(f"""SELECT person_id, CASE WHEN {excluded} THEN 'not_eligible' WHEN {clean} THEN 'eligible'
                               ELSE 'needs_review' END AS overall FROM s ORDER BY person_id""").fetch_arrow_table()

    def for_person(self, person_id: int) -> dict[str, Any]:
        """The worksheet of one person: overall and, per criterion, status and evidence."""
        rows = [r for r in self.person_criteria().to_pylist() if r["person_id"] == person_id]
        if not rows:
            raise KeyError(f"person {person_id} is not in the screened population")
        statuses = {r["criterion_id"]: Status.from_label(r["status"]) for r in rows}
        from trialdesk.criteria.status import overall

        return {"overall": overall(statuses),
                "criteria": [{"id": r["criterion_id"], "status": r["status"], "evidence": r["evidence"]} for r in rows]}


#: one cited record; every item has every field (NULL where it does not apply), so the
#: evidence column is a typed list in Parquet and a list of dicts in Python
EVIDENCE_FIELDS: dict[str, str] = {
    "table": "VARCHAR", "record_id": "BIGINT", "date": "VARCHAR", "concept_id": "BIGINT", "code": "VARCHAR",
    "display": "VARCHAR", "value": "DOUBLE", "unit": "VARCHAR", "range_low": "DOUBLE", "range_high": "DOUBLE",
    "note": "VARCHAR", "birth": "VARCHAR",
}


def _item_columns(**given: str) -> str:
    """SQL select-list of one evidence item's fields from the given expressions; the rest NULL."""
    unknown = set(given) - set(EVIDENCE_FIELDS)
    if unknown:
        raise KeyError(f"not evidence fields: {sorted(unknown)}")
    return ", ".join(f'({given.get(k, "NULL")})::{t} AS "{k}"' for k, t in EVIDENCE_FIELDS.items())


def _sql_str(text: str) -> str:
    return text.replace("'", "''")


def screen(db: OmopDatabase, protocol: Protocol, as_of: dt.date, *, value_sets: dict[str, ValueSet] | None = None,
           planned_first_infusion: dt.date | None = None, active_within_months: int | None = None,
           check_bounds: bool = True, progress: Callable[[str], None] | None = None) -> ScreenResult:
    """Screen every person in ``db`` against ``protocol`` as of ``as_of``."""
    from trialdesk.terminology.units import warm_up

    warm_up()  # the unit registry is built while the database reads the domain tables
    if check_bounds:
        lo, hi = observation_bounds(db)
        if lo is None or hi is None:
            raise OmopError(f"{db.description}: observation_period is empty; the data cover no time, so nothing can be screened")
        if not lo <= as_of <= hi:
            raise OmopError(f"--as-of {as_of} is outside the data (observation periods run {lo} to {hi}); choose a date within")
    pfi = planned_first_infusion or as_of + dt.timedelta(days=protocol.enrolment.screening_to_first_infusion_days)
    anchors = Anchors(as_of=as_of, planned_first_infusion=pfi)
    compiler = Compiler(db, protocol, value_sets if value_sets is not None else load_value_sets(), anchors,
                        _unit_factor, progress)
    statuses, ev = compiler.compile_arrow(active_within_months)
    notes = list(db.notes) + compiler.plan.notes
    notes += [f"{cid}: unknown for everyone — {why}" for cid, why in sorted(compiler.plan.missing.items())]
    return ScreenResult(protocol=protocol, anchors=anchors, statuses=statuses, evidence=ev, plan=compiler.plan,
                        notes=notes, active_within_months=active_within_months)


def write_outputs(result: ScreenResult, out: Path) -> dict[str, Path]:
    """funnel.csv, person_criteria.parquet and candidates.csv, written to a temporary
    folder first and moved into ``out`` only when all three are complete."""
    import pyarrow.csv as pacsv

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        funnel = result.funnel()
        pacsv.write_csv(pa.Table.from_pylist(funnel, schema=pa.schema(
            [("criterion_id", pa.string()), ("met", pa.int64()), ("not_met", pa.int64()), ("unknown", pa.int64()),
             ("needs_review", pa.int64()), ("remaining", pa.int64())])), tmp / "funnel.csv")
        result.write_person_criteria(tmp / "person_criteria.parquet")
        pacsv.write_csv(result.candidates(), tmp / "candidates.csv")
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        for name in ("funnel.csv", "person_criteria.parquet", "candidates.csv"):
            (tmp / name).replace(out / name)
            written[name] = out / name
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

"""Screening: run a protocol's criteria over an OMOP CDM and report every person's status
for every criterion, the evidence where someone will read it, an ATLAS-style attrition
funnel, ranked candidates, and what was wrong in the data.

The heavy work (one pass over each table) runs on the database's own backend
(:mod:`trialdesk.eligibility.compiler`); the result — one small row per person — and the
evidence are assembled in an embedded DuckDB, so every backend produces the same files:

- ``statuses.parquet``: one row per person: ``person_id``, ``overall``, one column per
  criterion id (``met``, ``not_met``, ``unknown``, ``needs_review``; dictionary-encoded);
- ``evidence.parquet``: ``person_id``, ``criterion_id`` and one cited record per row, for
  the candidates (default) or everyone (``evidence="all"``);
- ``funnel.csv``, ``candidates.csv`` and ``quality.csv``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from trialdesk.criteria.language import Age, Measurement, Sex
from trialdesk.criteria.status import Status, excluding_status, overall_codes, settled_status
from trialdesk.criteria.windows import Anchors
from trialdesk.eligibility.compiler import Compiler
from trialdesk.eligibility.evidence import flat_evidence
from trialdesk.eligibility.plan import DOMAINS, Plan
from trialdesk.eligibility.reading import Quality
from trialdesk.protocol.loader import load_value_sets
from trialdesk.protocol.model import Protocol
from trialdesk.sources.omop import OmopDatabase, OmopError, observation_bounds
from trialdesk.terminology.value_set import ValueSet

LABELS = {int(s): s.label for s in Status}
Coverage = Literal["candidates", "all"]

#: one cited record; every item has every field (NULL where it does not apply)
EVIDENCE_FIELDS: dict[str, str] = {
    "table": "VARCHAR", "record_id": "BIGINT", "date": "VARCHAR", "concept_id": "BIGINT", "code": "VARCHAR",
    "display": "VARCHAR", "value": "DOUBLE", "unit": "VARCHAR", "range_low": "DOUBLE", "range_high": "DOUBLE",
    "note": "VARCHAR", "birth": "VARCHAR",
}


def _unit_factor(from_unit: str, to_unit: str, analyte: str | None) -> float | None:
    from trialdesk.terminology.units import linear_factor

    return linear_factor(from_unit, to_unit, analyte)


@dataclass(frozen=True)
class Death:
    """A death the source records up to the screening date: its date, or None when the record has no readable date."""

    on: dt.date | None

    def sentence(self) -> str:
        """The line a worksheet shows."""
        if self.on is not None:
            return f"recorded as dead on {self.on.isoformat()}: not eligible, whatever the criteria say"
        return ("recorded as dead, with no readable date: the death may be before the screening date, so the patient "
                "cannot be eligible until a person checks")

    @staticmethod
    def verdict(death: Death | None, from_criteria: str) -> str:
        """The overall verdict once the death is taken into account."""
        if death is None:
            return from_criteria
        if death.on is not None:
            return "not_eligible"
        return "needs_review" if from_criteria == "eligible" else from_criteria


@dataclass
class ScreenResult:
    protocol: Protocol
    anchors: Anchors
    statuses: pa.Table  # the compiler's table: person_id, birth fields, c_<id> codes, d_ flags, s_ features
    plan: Plan
    compiler: Compiler
    quality: Quality
    notes: list[str] = field(default_factory=list)
    active_within_months: int | None = None
    _evidence: dict[tuple[int, ...] | None, pa.Table] = field(default_factory=dict, init=False, repr=False)
    _deaths: dict[int, Death] | None = field(default=None, init=False, repr=False)

    @property
    def criterion_ids(self) -> list[str]:
        return [c.id for c in self.protocol.eligibility.criteria]

    @property
    def roles(self) -> dict[str, Any]:
        return self.protocol.eligibility.roles

    def _codes(self, cid: str) -> np.ndarray:
        return np.asarray(self.statuses[f"c_{cid}"].to_numpy(zero_copy_only=False))

    def _excluded(self, cid: str) -> np.ndarray:
        return np.asarray(self._codes(cid) == int(excluding_status(self.roles[cid])))

    def _dead(self) -> np.ndarray:
        """Persons recorded as dead on or before the screening date (OMOP ``death``; FHIR ``Patient.deceased``)."""
        if "died_on" not in self.statuses.column_names:
            return np.zeros(self.statuses.num_rows, dtype=bool)
        return np.asarray(self.statuses["died_on"].is_valid().to_numpy(zero_copy_only=False), dtype=bool)

    def _undated_death(self) -> np.ndarray:
        """Persons with a death record whose date cannot be read (it may be before the screening date)."""
        if "death_undated" not in self.statuses.column_names:
            return np.zeros(self.statuses.num_rows, dtype=bool)
        return np.asarray(self.statuses["death_undated"].fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)

    def death(self, person_id: int) -> Death | None:
        """What the source records of ``person_id``'s death up to the screening date, if anything."""
        if self._deaths is None:  # the few recorded, found once (a batch's worksheets ask for every patient)
            self._deaths = {}
            if "died_on" in self.statuses.column_names:
                pid = self.statuses["person_id"].to_numpy(zero_copy_only=False)
                days = self.statuses["died_on"]
                for i in np.nonzero(self._dead() | self._undated_death())[0]:
                    self._deaths[int(pid[i])] = Death(days[int(i)].as_py())
        return self._deaths.get(person_id)

    def _overall(self) -> np.ndarray:
        """Each person's verdict from the criteria; a person recorded as dead is not eligible whatever they say, and
        one whose death record has no date cannot be eligible (it may be before the screening date)."""
        verdicts = np.asarray(overall_codes({c: self._codes(c) for c in self.criterion_ids}, self.roles))
        verdicts = np.where(self._undated_death() & (verdicts == "eligible"), "needs_review", verdicts)
        return np.where(self._dead(), "not_eligible", verdicts)

    # -- statuses ------------------------------------------------------------------------

    def _order(self) -> np.ndarray:
        return np.argsort(self.statuses["person_id"].to_numpy(zero_copy_only=False), kind="stable")

    def statuses_table(self) -> pa.Table:
        """One row per person (sorted by person id): person_id, overall, and each criterion's status."""
        order = self._order()
        low = min(LABELS)
        labels = pa.array([LABELS[k] for k in range(low, low + len(LABELS))])
        cols: dict[str, Any] = {
            "person_id": pa.array(self.statuses["person_id"].to_numpy(zero_copy_only=False)[order], pa.int64()),
            "overall": pa.array(self._overall()[order], pa.string()).dictionary_encode(),
        }
        for cid in self.criterion_ids:
            codes = self._codes(cid)
            if np.any(codes < 0):  # every criterion has a status for every person; anything else is a bug
                raise AssertionError(f"criterion {cid} has no status for some persons")
            cols[cid] = pa.DictionaryArray.from_arrays(pa.array(codes[order].astype(np.int8) - low, pa.int8()), labels)
        return pa.table(cols)

    def long_statuses(self) -> pa.Table:
        """person_id, criterion_id and status: one row per person and criterion, sorted by
        person id and then in the protocol's order."""
        wide = self.statuses_table()
        cids = self.criterion_ids
        m = len(cids)
        n = wide.num_rows
        codes = np.stack([wide[c].combine_chunks().indices.to_numpy() for c in cids], axis=1).ravel() if m else np.array([])
        labels = wide[cids[0]].combine_chunks().dictionary if m else pa.array([], pa.string())
        return pa.table({
            "person_id": pa.array(np.repeat(wide["person_id"].to_numpy(), m), pa.int64()),
            "criterion_id": pa.DictionaryArray.from_arrays(pa.array(np.tile(np.arange(m, dtype=np.int8), n)), pa.array(cids)),
            "status": pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int8), pa.int8()), labels),
        })

    # -- evidence ------------------------------------------------------------------------

    def candidate_ids(self) -> list[int]:
        return [int(p) for p in self.candidates()["person_id"].to_pylist()]

    def evidence(self, persons: Coverage | Iterable[int] = "candidates") -> pa.Table:
        """Cited records, long: person_id, criterion_id and the record's fields, sorted by
        person, criterion (the protocol's order), newest first."""
        if persons == "all":
            ids: tuple[int, ...] | None = None
        elif persons == "candidates":
            ids = tuple(sorted(self.candidate_ids()))
        else:
            ids = tuple(sorted({int(p) for p in persons}))
        if ids not in self._evidence:
            self._evidence[ids] = self._assemble(ids)
        return self._evidence[ids]

    def _assemble(self, ids: tuple[int, ...] | None) -> pa.Table:
        persons = None if ids is None else pa.table({"person_id": pa.array(ids, pa.int64())})
        flat = flat_evidence(self.compiler, persons)
        few = self.compiler.few
        con = duckdb.connect(config={"threads": 1} if few else {})
        try:
            con.register("e", flat)
            con.register("s", self.statuses)
            if persons is not None:
                con.register("p", persons)
            order = self.criterion_ids
            con.register("co", pa.table({"criterion_id": order, "ord": pa.array(range(len(order)), pa.int16())}))
            rows: list[tuple[int, int, str | None]] = []
            for k, cids in self.plan.leaf_criteria.items():
                for cid in sorted(cids):
                    labels: list[str | None] = [*sorted({lab for c, lab in self.plan.supporting.get(k, set()) if c == cid})]
                    rows += [(k, order.index(cid), lab) for lab in (labels or [None])]
            con.register("lc", pa.table({"leaf": pa.array([r[0] for r in rows], pa.int32()),
                                         "ord": pa.array([r[1] for r in rows], pa.int16()),
                                         "support": pa.array([r[2] for r in rows], pa.string())}))
            names = self.plan.concept_names
            con.register("cn", pa.table({"concept_id": pa.array(list(names), pa.int64()),
                                         "display": pa.array(list(names.values()), pa.string())}))
            if few:
                con.register("df", self._deciding_long())
            return con.execute(self._evidence_sql(persons is not None)).fetch_arrow_table()
        finally:
            con.close()

    def _arms(self) -> list[tuple[int, int, str]]:
        """(criterion's place in the protocol, leaf, its ``d_`` column of the status table) for every part
        of a criterion that can decide it."""
        cols = set(self.statuses.column_names)
        order = self.criterion_ids
        return [(order.index(cid), k, f"d_{cid}_{k}") for k, cids in self.plan.leaf_criteria.items() for cid in cids
                if f"d_{cid}_{k}" in cols]

    def _deciding_long(self) -> pa.Table:
        """Where a part decided its criterion for a person, one row (person_id, ord, leaf): the ``d_`` flags of the
        status table that are true, long (a few persons only: one row per person and flag at most)."""
        import pyarrow.compute as pc

        pid = self.statuses["person_id"].cast(pa.int64())
        parts = [(pc.filter(pid, pc.fill_null(self.statuses[col], False)), o, k) for o, k, col in self._arms()]
        return pa.table({"person_id": pa.concat_arrays([p.combine_chunks() for p, _, _ in parts] or [pa.array([], pa.int64())]),
                         "ord": pa.array([o for p, o, _ in parts for _ in range(len(p))], pa.int16()),
                         "leaf": pa.array([k for p, _, k in parts for _ in range(len(p))], pa.int32())})

    def _flag(self, alias_ord: str, alias_leaf: str) -> str:
        if self.compiler.few:  # the true flags, long (:meth:`_deciding_long`), rather than a CASE over every column
            return (f"EXISTS (SELECT 1 FROM df WHERE df.person_id = s.person_id AND df.ord = {alias_ord} "
                    f"AND df.leaf = {alias_leaf})")
        cols = set(self.statuses.column_names)
        order = self.criterion_ids
        arms = [f"WHEN {alias_ord} = {order.index(cid)} AND {alias_leaf} = {k} THEN s.d_{cid}_{k}"
                for k, cids in self.plan.leaf_criteria.items() for cid in cids if f"d_{cid}_{k}" in cols]
        return "CASE " + " ".join(arms) + " ELSE FALSE END" if arms else "FALSE"

    def _evidence_sql(self, restricted: bool) -> str:
        as_of = self.anchors.as_of
        person_leaves = [(k, n) for k, n in self.plan.leaves.items() if isinstance(n, (Age, Sex))]
        demo = []
        birth = ("concat_ws('-', year_of_birth::VARCHAR, lpad(month_of_birth::VARCHAR, 2, '0'),"
                 " lpad(day_of_birth::VARCHAR, 2, '0'))")
        for k, node in person_leaves:
            if isinstance(node, Age):
                note = (f"'age on {as_of}: ' || CASE WHEN day_of_birth IS NOT NULL AND month_of_birth IS NOT NULL "
                        f"THEN (date_sub('year', make_date(year_of_birth::INT, month_of_birth::INT, day_of_birth::INT),"
                        f" DATE '{as_of}'))::VARCHAR ELSE 'from birth year' || CASE WHEN month_of_birth IS NOT NULL "
                        f"THEN ' and month' ELSE '' END END")
                item = _item_columns(table="'person'", record_id="person_id", birth=birth,
                                     note=f"CASE WHEN year_of_birth IS NULL THEN 'no usable birth date' ELSE {note} END")
            else:
                item = _item_columns(table="'person'", record_id="person_id", concept_id="gender_concept_id",
                                     display="CASE gender_concept_id WHEN 8532 THEN 'FEMALE' WHEN 8507 THEN 'MALE' "
                                             "ELSE 'not recorded' END")
            demo.append(f"SELECT s.person_id, lc.ord, 0 AS newest, 0 AS rid, {item} FROM s JOIN lc ON lc.leaf = {k} "
                        f"WHERE {self._flag('lc.ord', str(k))}" + (" AND s.person_id IN (SELECT person_id FROM p)" if restricted else ""))
        demo += self._silence_sql(restricted)
        note = "CASE WHEN e.support IS NOT NULL THEN 'supporting (' || e.support || ')' || coalesce(': ' || e.note, '') ELSE e.note END"
        records = _item_columns(table='e."table"', record_id="e.record_id", date="e.date::VARCHAR", concept_id="e.concept_id",
                                code="e.source_value", display="cn.display", value="e.value", unit="e.unit",
                                range_low="e.range_low", range_high="e.range_high", note=note)
        return f"""
        SELECT x.person_id, co.criterion_id, x.* EXCLUDE (person_id, ord, newest, rid)
        FROM (
          SELECT e.person_id, e.ord, -date_diff('day', DATE '1970-01-01', e.date) AS newest, e.record_id AS rid, {records}
          FROM (SELECT lc.ord, lc.support, e.* EXCLUDE (leaf)
                FROM e JOIN lc ON e.leaf = lc.leaf JOIN s ON s.person_id = e.person_id
                WHERE {self._flag('lc.ord', 'e.leaf')}
                -- a record cited by two parts of a criterion is listed once
                QUALIFY row_number() OVER (PARTITION BY e.person_id, lc.ord, e."table", e.record_id
                                           ORDER BY lc.support NULLS FIRST, e.note NULLS LAST) = 1) e
               LEFT JOIN cn ON e.concept_id = cn.concept_id
          {"".join(" UNION ALL " + d for d in demo)}
        ) x JOIN co ON co.ord = x.ord
        ORDER BY x.person_id, x.ord, x.newest NULLS LAST, x.rid DESC, x."table"
        """

    def _silence_sql(self, restricted: bool) -> list[str]:
        """Evidence items for the criterion parts read where the source holds nothing of their table's kind
        for the person (``why_<domain>``): the table and the reason (and, where the protocol reads such a
        chart by the convention, that no record was read as none), once per criterion and table, where such
        a part decided."""
        out = []
        for domain in sorted(DOMAINS):
            why = f"why_{domain}"
            if why not in self.statuses.column_names:
                continue
            strict = self.plan.protocol.eligibility.silent_chart == "unknown"
            groups: dict[bool, list[int]] = {}
            for k, n in self.plan.record_leaves(domain).items():
                if k in self.plan.unavailable:
                    continue
                stated = isinstance(n, Measurement) and n.absent == "not_met"
                # as tree.status_table reads it: is this part's absence read as none here?
                groups.setdefault((not isinstance(n, Measurement) or stated) and (stated or not strict), []).append(k)
            for read_as_none, keys in sorted(groups.items()):
                read = " || ': no record is read as none, as for anything the chart does not hold; check the full record'"
                item = _item_columns(table=f"'{DOMAINS[domain].table}'", note=f"s.{why}{read if read_as_none else ''}")
                out.append(f"SELECT DISTINCT s.person_id, lc.ord, 0 AS newest, 0 AS rid, {item} FROM s JOIN lc "
                           f"ON lc.leaf IN ({', '.join(map(str, keys))}) WHERE s.{why} IS NOT NULL AND {self._flag('lc.ord', 'lc.leaf')}"
                           + (" AND s.person_id IN (SELECT person_id FROM p)" if restricted else ""))
        return out

    def person_criteria(self, persons: Coverage | Iterable[int] = "all") -> pa.Table:
        """One row per person and criterion: person_id, criterion_id, status and the evidence as
        a list of records (every item has every field of :data:`EVIDENCE_FIELDS`)."""
        ev = self.evidence(persons)
        long = self.long_statuses()
        wanted = None if persons == "all" else set(ev["person_id"].to_pylist()) | (
            set(self.candidate_ids()) if persons == "candidates" else {int(p) for p in persons})
        grouped: dict[tuple[int, str], list[dict[str, Any]]] = {}
        for row in ev.to_pylist():
            grouped.setdefault((row.pop("person_id"), row.pop("criterion_id")), []).append(row)
        rows = [r for r in long.to_pylist() if wanted is None or r["person_id"] in wanted]
        for r in rows:
            r["evidence"] = grouped.get((r["person_id"], r["criterion_id"]), [])
        item = pa.struct([(k, _ARROW[t]) for k, t in EVIDENCE_FIELDS.items()])
        return pa.Table.from_pylist(rows, schema=pa.schema([("person_id", pa.int64()), ("criterion_id", pa.string()),
                                                            ("status", pa.string()), ("evidence", pa.list_(item))]))

    # -- funnel and candidates ------------------------------------------------------------

    def funnel(self) -> list[dict[str, Any]]:
        """Criteria applied in order; counts among those still remaining before each step."""
        rows: list[dict[str, Any]] = []
        remaining = np.ones(self.statuses.num_rows, dtype=bool)
        dead = self._dead()
        undated = self._undated_death()
        if dead.any() or undated.any():  # a row of its own, first, only where someone is recorded as dead
            remaining &= ~dead
            alive = int(remaining.sum())
            rows.append({"criterion_id": "ALIVE", "met": alive - int(undated.sum()), "not_met": int(dead.sum()),
                         "unknown": int(undated.sum()), "needs_review": 0, "remaining": alive})
        if self.active_within_months is not None:
            before = int(remaining.sum())
            remaining &= self.statuses["active"].to_numpy(zero_copy_only=False).astype(bool)
            active = int(remaining.sum())
            rows.append({"criterion_id": f"ACTIVE_{self.active_within_months}M", "met": active,
                         "not_met": before - active, "unknown": 0, "needs_review": 0, "remaining": active})
        for cid in self.criterion_ids:
            counts = np.bincount(self._codes(cid)[remaining].astype(np.int64), minlength=len(LABELS))
            by = {LABELS[k]: int(counts[k]) for k in LABELS}
            remaining &= ~self._excluded(cid)
            rows.append({"criterion_id": cid, "met": by["met"], "not_met": by["not_met"], "unknown": by["unknown"],
                         "needs_review": by["needs_review"], "remaining": int(remaining.sum())})
        return rows

    def candidates(self) -> pa.Table:
        """People not excluded: eligible first, then those whose records show the most features
        supporting an attested item (IPAF; counted once though the item sits under several
        criteria), then by how few items remain to check."""
        cids = self.criterion_ids
        n = self.statuses.num_rows
        keep = np.ones(n, dtype=bool)
        items = np.zeros(n, dtype=np.int64)
        features = np.zeros(n, dtype=np.int64)
        for cid in cids:
            codes = self._codes(cid)
            keep &= codes != int(excluding_status(self.roles[cid]))
            items += codes != int(settled_status(self.roles[cid]))
            if f"s_{cid}" in self.statuses.column_names:  # the same attested item (IPAF) may sit under several criteria
                shown = np.nan_to_num(self.statuses[f"s_{cid}"].to_numpy(zero_copy_only=False).astype(float)).astype(np.int64)
                features = np.maximum(features, shown)
        if self.active_within_months is not None:
            keep &= self.statuses["active"].to_numpy(zero_copy_only=False).astype(bool)
        keep &= ~self._dead()
        pid = self.statuses["person_id"].to_numpy(zero_copy_only=False)
        idx = np.nonzero(keep)[0]
        order = idx[np.lexsort((pid[idx], items[idx], -features[idx], items[idx] != 0))]

        ranked = {c: self._codes(c)[order] for c in cids}  # each column read once, not once per person

        def listing(status: Status) -> list[str]:
            has = {c: ranked[c] == int(status) for c in cids}
            return [" ".join(c for c in cids if has[c][i]) for i in range(len(order))]

        return pa.table({
            "rank": pa.array(np.arange(1, len(order) + 1), pa.int64()),
            "person_id": pa.array(pid[order], pa.int64()),
            "overall": pa.array(np.where((items[order] == 0) & ~self._undated_death()[order], "eligible", "needs_review"),
                                pa.string()),
            "items_to_check": pa.array(items[order], pa.int64()),
            "unknown_criteria": pa.array(listing(Status.UNKNOWN), pa.string()),
            "needs_review_criteria": pa.array(listing(Status.NEEDS_REVIEW), pa.string()),
            "supporting_features": pa.array(features[order], pa.int64()),
        })

    def overall(self) -> pa.Table:
        order = self._order()
        return pa.table({"person_id": pa.array(self.statuses["person_id"].to_numpy(zero_copy_only=False)[order], pa.int64()),
                         "overall": pa.array(self._overall()[order], pa.string())})

    def for_person(self, person_id: int) -> dict[str, Any]:
        """The worksheet of one person: overall and, per criterion, status and evidence."""
        rows = self.person_criteria([person_id]).to_pylist()
        rows = [r for r in rows if r["person_id"] == person_id]
        if not rows:
            raise KeyError(f"person {person_id} is not in the screened population")
        from trialdesk.criteria.status import overall

        statuses = {r["criterion_id"]: Status.from_label(r["status"]) for r in rows}
        death = self.death(person_id)
        return {"overall": Death.verdict(death, overall(statuses, self.roles)), "death": death,
                "criteria": [{"id": r["criterion_id"], "status": r["status"], "evidence": r["evidence"]} for r in rows]}


_ARROW = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64()}


def _item_columns(**given: str) -> str:
    """SQL select-list of one evidence item's fields from the given expressions; the rest NULL."""
    unknown = set(given) - set(EVIDENCE_FIELDS)
    if unknown:
        raise KeyError(f"not evidence fields: {sorted(unknown)}")
    return ", ".join(f'({given.get(k, "NULL")})::{t} AS "{k}"' for k, t in EVIDENCE_FIELDS.items())


def screen(db: OmopDatabase, protocol: Protocol, as_of: dt.date, *, value_sets: dict[str, ValueSet] | None = None,
           planned_first_infusion: dt.date | None = None, active_within_months: int | None = None,
           check_bounds: bool = True, progress: Callable[[str], None] | None = None, few: bool = False) -> ScreenResult:
    """Screen every person in ``db`` against ``protocol`` as of ``as_of``.

    ``few``: the caller knows ``db`` holds a few persons (one chart, a chunk of an export), so statements made
    for a population (a table per step, a join per value set) are written for a small input instead
    (:attr:`trialdesk.eligibility.compiler.Compiler.few`); the answers are the same."""
    from trialdesk.terminology.units import warm_up

    warm_up()  # the unit registry is built while the database reads the tables
    if check_bounds:
        lo, hi = observation_bounds(db)
        if lo is None or hi is None:
            raise OmopError(f"{db.description}: observation_period is empty; the data cover no time, so nothing can be screened")
        if not lo <= as_of <= hi:
            raise OmopError(f"--as-of {as_of} is outside the data (observation periods run {lo} to {hi}); choose a date within")
    pfi = planned_first_infusion or as_of + dt.timedelta(days=protocol.enrolment.screening_to_first_infusion_days)
    anchors = Anchors(as_of=as_of, planned_first_infusion=pfi)
    compiler = Compiler(db, protocol, value_sets if value_sets is not None else load_value_sets(), anchors,
                        _unit_factor, progress, few=few)
    statuses = compiler.run(active_within_months)
    notes = list(db.notes) + compiler.plan.notes + compiler.quality.summary()
    result = ScreenResult(protocol=protocol, anchors=anchors, statuses=statuses, plan=compiler.plan, compiler=compiler,
                          quality=compiler.quality, notes=notes, active_within_months=active_within_months)
    dead, undated = int(result._dead().sum()), int(result._undated_death().sum())
    if dead:
        notes.append(f"{dead:,} person(s) recorded as dead on or before {as_of}: not eligible whatever the criteria say, "
                     "and left out of the candidates (funnel row ALIVE)")
    if undated:
        notes.append(f"{undated:,} person(s) with a death record that has no readable date: they may have died before "
                     f"{as_of}, so none is eligible until a person checks (funnel row ALIVE, unknown)")
    return result


OUTPUTS = ("funnel.csv", "statuses.parquet", "evidence.parquet", "candidates.csv", "quality.csv")


class OutputError(Exception):
    """The output folder cannot take the screen's files."""


def check_output_folder(out: Path) -> None:
    """Before any work: ``out`` is a folder this process can write in, or can be made in a
    folder it can write in (nothing is created until the files are ready)."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: is a file, not a folder; give a folder for {', '.join(OUTPUTS)}")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"--out {out}: {existing} is a file, so the folder cannot be made there; choose another place")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"--out {out}: {existing} is not writable; choose a folder you can write in")


def write_outputs(result: ScreenResult, out: Path, evidence: Coverage = "candidates") -> dict[str, Path]:
    """The five files, written into a temporary folder inside ``out`` (so the final moves
    never cross filesystems) and moved into place only when all are complete."""
    import pyarrow.csv as pacsv

    check_output_folder(out)
    made = [p for p in (out, *out.parents) if not p.exists()]  # folders this call creates, deepest first
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=out))
    done = False
    try:
        pacsv.write_csv(pa.Table.from_pylist(result.funnel(), schema=pa.schema(
            [("criterion_id", pa.string()), ("met", pa.int64()), ("not_met", pa.int64()), ("unknown", pa.int64()),
             ("needs_review", pa.int64()), ("remaining", pa.int64())])), tmp / "funnel.csv")
        pq.write_table(result.statuses_table(), tmp / "statuses.parquet", compression="zstd")
        pq.write_table(result.evidence(evidence), tmp / "evidence.parquet", compression="zstd")
        pacsv.write_csv(result.candidates(), tmp / "candidates.csv")
        pacsv.write_csv(result.quality.to_arrow(), tmp / "quality.csv")
        written = {}
        for name in OUTPUTS:
            (tmp / name).replace(out / name)
            written[name] = out / name
        done = True
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not done:  # a failure leaves no trace: not even the folders made for the files
            for folder in made:
                try:
                    folder.rmdir()
                except OSError:  # no longer empty: someone else writes there
                    break

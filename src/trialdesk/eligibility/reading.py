"""Reading the CDM as real extracts are: typed where the data allow, and every value that
cannot be read set aside and counted, never guessed and never allowed to stop a screen.

Each clinical table is seen as one relation with the same columns whatever the CDM
version, the backend or the column types the extract happens to use:
``person_id, record_id, concept_id, start, end, moment, source_value`` and, for
measurements and observations, ``value, value_raw, value_concept, value_text, unit,
range_low, range_high``; conditions also carry ``status_text`` and, where the extract has
``condition_status_concept_id``, ``tentative`` (a preliminary diagnosis, 32899: the leaves
read it as a question, not a fact; without the column no record is tentative and the
screen's SQL is what it was).

- A date that is missing or impossible (``'2024-02-30'``) is NULL: the record cannot be
  placed in a window, and the engine reads it as "might be in the window" (unknown),
  never as absence.
- A number written as text that is not a number (``'12,5'``, ``'n/a'``, ``'>5'``, ``''``) is
  NULL in ``value`` and kept in ``value_raw``: a result that cannot be read makes its leaf
  unknown, with the text in the evidence.
- A drug exposure that ends before it starts is read as one day, its start date.
- A person row with an impossible birth date keeps what can be trusted (year, or year
  and month); a person id given twice is one person, and fields the copies disagree on
  are unknown.

What was found goes to :class:`Quality` (``quality.csv``): table, column, what was wrong,
how many records and persons, and what it did to the result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.datatypes as dt_
import ibis.expr.types as ir
import pyarrow as pa

from trialdesk.eligibility.plan import DomainTable
from trialdesk.sources.omop import OmopDatabase

#: a decimal number as written in a text column (what a text value must look like to be read as a number)
_NUMBER = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"
_ISO_DATE = r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}"
#: OMOP Condition Status "Preliminary diagnosis" (a FHIR Condition unconfirmed, provisional or differential;
#: 32893 is "Confirmed diagnosis")
PRELIMINARY_DIAGNOSIS = 32899


@dataclass
class Problem:
    table: str
    column: str
    problem: str
    records: int
    persons: int
    effect: str


@dataclass
class Quality:
    """What a screen found wrong in the data, and what it did to the result."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, table: str, column: str, problem: str, records: int, persons: int, effect: str) -> None:
        if records or persons:
            self.problems.append(Problem(table, column, problem, int(records), int(persons), effect))

    SCHEMA = pa.schema([("table", pa.string()), ("column", pa.string()), ("problem", pa.string()),
                        ("records", pa.int64()), ("persons", pa.int64()), ("effect", pa.string())])

    def to_arrow(self) -> pa.Table:
        rows = [p.__dict__ for p in self.problems]
        return pa.Table.from_pylist(rows, schema=self.SCHEMA)

    def summary(self) -> list[str]:
        return [f"{p.table}.{p.column}: {p.problem} ({p.records} records, {p.persons} persons) — {p.effect}"
                for p in self.problems]


def days_in_month(year: Any, month: Any) -> Any:
    """Arithmetic, so an impossible month never reaches a date function (which would fail)."""
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    return ibis.cases((month == 2, ibis.ifelse(leap, 29, 28)), (month.isin([4, 6, 9, 11]), 30), else_=31)


def _is_text(col: ir.Value) -> bool:
    return bool(col.type().is_string())


def as_number(db: OmopDatabase, col: ir.Value) -> ir.FloatingValue:
    """A numeric column as float64; text that is not a decimal number becomes NULL."""
    if col.type().is_numeric():
        return col.cast("float64")
    if _is_text(col):
        if db.backend == "postgres":  # no TRY_CAST: only text that looks like a number is cast
            return ibis.ifelse(col.re_search(_NUMBER), col.strip().cast("float64"), ibis.null("float64"))
        return col.strip().try_cast("float64")
    return ibis.null("float64")


def as_date(db: OmopDatabase, col: ir.Value) -> ir.DateValue:
    """A date column as a date; text that is not a real ISO date becomes NULL."""
    t = col.type()
    if t.is_date():
        return col
    if t.is_timestamp():
        return col.cast("date")
    if _is_text(col):
        if db.backend == "postgres":
            y = col.substr(0, 4)
            m = col.substr(5, 2)
            d = col.substr(8, 2)
            ok = col.re_search(_ISO_DATE)
            yi = ibis.ifelse(ok, y.cast("int32"), ibis.null("int32"))
            mi = ibis.ifelse(ok, m.cast("int32"), ibis.null("int32"))
            di = ibis.ifelse(ok, d.cast("int32"), ibis.null("int32"))
            real = ok & mi.between(1, 12) & (di >= 1) & (di <= days_in_month(yi, mi))
            return ibis.ifelse(real, col.substr(0, 10).cast("date"), ibis.null("date"))
        return col.strip().substr(0, 10).try_cast("date")
    return ibis.null("date")


def as_timestamp(db: OmopDatabase, col: ir.Value) -> ir.TimestampValue:
    t = col.type()
    if t.is_timestamp():
        return col.cast(dt_.Timestamp())
    if t.is_date():
        return col.cast("timestamp")
    if _is_text(col) and db.backend != "postgres":
        return col.strip().try_cast("timestamp")
    return ibis.null("timestamp")


def as_int(db: OmopDatabase, col: ir.Value) -> ir.IntegerValue:
    if col.type().is_integer():
        return col.cast("int64")
    if col.type().is_numeric():
        return col.cast("int64")
    if _is_text(col):
        if db.backend == "postgres":
            return ibis.ifelse(col.re_search(r"^\s*-?[0-9]+\s*$"), col.strip().cast("int64"), ibis.null("int64"))
        return col.strip().try_cast("int64")
    return ibis.null("int64")


def present(db: OmopDatabase, table: str, column: str) -> bool:
    """The column is in the extract (not one the reader filled with NULLs)."""
    return db.has(table) and column in db.table(table).columns and column not in db.missing_columns.get(table, ())


def domain_rows(db: OmopDatabase, spec: DomainTable, until: dt.date) -> ir.Table:
    """The domain's records, typed, dated up to ``until`` (or undated)."""
    t = db.table(spec.table)

    def col(name: str | None, kind: str) -> Any:
        if name is None or not present(db, spec.table, name):
            return ibis.null(kind)
        c = t[name]
        if kind == "date":
            return as_date(db, c)
        if kind == "float64":
            return as_number(db, c)
        if kind == "int64":
            return as_int(db, c)
        if kind == "timestamp":
            return as_timestamp(db, c)
        return c.cast("string")

    start = col(spec.start, "date")
    end = col(spec.end, "date")
    cols: dict[str, Any] = {
        "person_id": col("person_id", "int64"),
        "record_id": col(spec.id, "int64"),
        "concept_id": col(spec.concept, "int64"),
        "start": start,
        # an end before the start is not a period: the record is read as its start day
        "end": ibis.ifelse(end < start, ibis.null("date"), end),
        "end_before_start": ibis.coalesce(end < start, False),
        "moment": ibis.coalesce(col(spec.moment, "timestamp"), start.cast("timestamp")),
        "source_value": col(spec.source, "string"),
    }
    if spec.domain == "condition":
        cols["status_text"] = col("condition_status_source_value", "string")
        if present(db, spec.table, "condition_status_concept_id"):
            cols["tentative"] = ibis.coalesce(col("condition_status_concept_id", "int64") == PRELIMINARY_DIAGNOSIS, False)
    if spec.has_value:
        raw = t["value_as_number"] if present(db, spec.table, "value_as_number") else None
        value = col("value_as_number", "float64")
        cols["value"] = value
        unreadable = raw.cast("string").strip() if raw is not None and _is_text(raw) else None
        cols["value_raw"] = (ibis.ifelse(value.isnull() & unreadable.notnull(), unreadable, ibis.null("string"))
                             if unreadable is not None else ibis.null("string"))
        cols["value_concept"] = col("value_as_concept_id", "int64")
        text = col("value_source_value", "string")
        if spec.domain == "observation":
            text = ibis.coalesce(col("value_as_string", "string"), text)
        cols["value_text"] = text
        cols["unit_source"] = col("unit_source_value", "string")
        cols["unit_concept_id"] = col("unit_concept_id", "int64")
        cols["range_low"] = col("range_low", "float64")
        cols["range_high"] = col("range_high", "float64")
    rows = t.select(**cols)
    rows = rows.filter(rows.start.isnull() | (rows.start <= until))
    if spec.has_value:
        rows = _with_unit(db, rows)
    return rows


def _with_unit(db: OmopDatabase, rows: ir.Table) -> ir.Table:
    """The measurement's unit: its source string, else the UCUM code of its unit concept."""
    source = ibis.ifelse(rows.unit_source.strip() == "", ibis.null("string"), rows.unit_source.strip())
    if not db.has("concept"):
        return rows.mutate(unit=source).drop("unit_source")
    c = db.table("concept")
    ucum = c.filter(c.vocabulary_id == "UCUM").select(unit_cid=c.concept_id.cast("int64"), unit_code=c.concept_code.cast("string"))
    j = rows.left_join(ucum, rows.unit_concept_id == ucum.unit_cid)
    unit = ibis.coalesce(ibis.ifelse(j.unit_source.strip() == "", ibis.null("string"), j.unit_source.strip()), j.unit_code)
    return j.select(*[c for c in rows.columns if c != "unit_source"], unit=unit)


def person_rows(db: OmopDatabase, as_of: dt.date) -> ir.Table:
    """One row per person id: year, month and day of birth as far as they can be trusted,
    the recorded sex, and ``copies`` (rows the id has) with the fields the copies disagree
    on set to NULL; ``birth_problem`` names what was wrong with the birth date."""
    p = db.table("person")
    year = as_int(db, p.year_of_birth)
    month = as_int(db, p.month_of_birth) if present(db, "person", "month_of_birth") else ibis.null("int64")
    day = as_int(db, p.day_of_birth) if present(db, "person", "day_of_birth") else ibis.null("int64")
    if present(db, "person", "birth_datetime"):
        bd = as_timestamp(db, p.birth_datetime)
        same_year = bd.year().cast("int64") == year
        month = ibis.coalesce(month, ibis.ifelse(same_year, bd.month().cast("int64"), ibis.null("int64")))
        day = ibis.coalesce(day, ibis.ifelse(same_year, bd.day().cast("int64"), ibis.null("int64")))
    year_ok = year.between(1850, as_of.year)
    month_ok = year_ok & month.between(1, 12)
    day_ok = month_ok & (day >= 1) & (day <= days_in_month(year, month))
    problem = ibis.cases(
        (year.isnull(), "no year of birth"),
        (~year_ok, "impossible year of birth"),
        (month.notnull() & ~month_ok, "impossible month of birth"),
        (day.notnull() & month_ok & ~day_ok, "impossible day of birth"),
        else_=ibis.null("string"),
    )
    rows = p.select(
        person_id=as_int(db, p.person_id),
        y=ibis.ifelse(year_ok, year, ibis.null("int64")),
        m=ibis.ifelse(month_ok, month, ibis.null("int64")),
        d=ibis.ifelse(day_ok, day, ibis.null("int64")),
        g=as_int(db, p.gender_concept_id),
        problem=problem,
    )
    rows = rows.filter(rows.person_id.notnull())

    def agreed(c: ir.Value) -> Any:
        return ibis.ifelse((c.min() == c.max()) & (c.count() == rows.count()), c.min(), ibis.null(c.type()))

    people = rows.group_by("person_id").aggregate(
        year_of_birth=agreed(rows.y), month_of_birth=agreed(rows.m), day_of_birth=agreed(rows.d),
        gender_concept_id=agreed(rows.g), copies=rows.count(), birth_problem=rows.problem.max(),
    )
    return people

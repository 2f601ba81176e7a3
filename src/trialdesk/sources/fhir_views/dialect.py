"""The SQL the view compiler writes for one engine: DuckDB (JSON text, ``JSON[]`` lists and list
lambdas) or Spark 4 (``VARIANT``, ``ARRAY<VARIANT>`` and higher-order functions).

:mod:`.compiler` builds one query from a ViewDefinition; every piece of it that differs between
the engines (a literal, a list function, reading an element, telling a JSON string from a
number, raising an error) is a method here. :class:`DuckDB` writes exactly the SQL the compiler
always wrote; :class:`Spark` writes the same query for Spark SQL, where a resource is a
``VARIANT`` parsed once (``parse_json``) and an element is read with ``variant_get``.

Types are named in DuckDB's terms inside the compiler (``JSON``, ``JSON[]``, ``VARCHAR``…);
:meth:`Dialect.typ` spells them for the engine.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence

__all__ = ["DUCKDB", "SPARK", "Dialect", "DuckDB", "Spark"]

#: numbers bound by :meth:`Dialect.let`, shared by both dialects (one sequence per process)
LET = itertools.count()

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Dialect:
    """DuckDB's SQL (the default); :class:`Spark` overrides what Spark spells differently."""

    name = "duckdb"

    # ----- literals, names, types

    def q(self, s: str) -> str:
        """A string literal."""
        return "'" + s.replace("'", "''") + "'"

    def ident(self, s: str) -> str:
        return '"' + s.replace('"', '""') + '"'

    def typ(self, t: str) -> str:
        """The engine's name of a type the compiler names in DuckDB's terms."""
        return t

    @property
    def empty(self) -> str:
        """The empty collection."""
        return "CAST([] AS JSON[])"

    def null_json(self) -> str:
        return "NULL::JSON"

    # ----- lists

    def arr(self, *items: str) -> str:
        return "[" + ", ".join(items) + "]"

    def at(self, lst: str, i: int) -> str:
        """Item ``i`` (1-based, a constant) of ``lst``; NULL when there is none."""
        return f"{lst}[{i}]"

    def last(self, lst: str) -> str:
        return f"{lst}[-1]"

    def head(self, lst: str) -> str:
        """The list of the first item (empty when ``lst`` is)."""
        return f"{lst}[1:1]"

    def tail_one(self, lst: str) -> str:
        """The list of the last item (empty when ``lst`` is)."""
        return f"{lst}[-1:]"

    def size(self, lst: str) -> str:
        return f"len({lst})"

    def transform(self, lst: str, lam: str) -> str:
        return f"list_transform({lst}, {lam})"

    def filter(self, lst: str, lam: str) -> str:
        return f"list_filter({lst}, {lam})"

    def concat(self, *lists: str) -> str:
        return f"list_concat({', '.join(lists)})"

    def distinct(self, lst: str) -> str:
        return f"list_distinct({lst})"

    def join(self, lst: str, sep: str) -> str:
        return f"array_to_string({lst}, {sep})"

    def pos0(self, i: str) -> str:
        """The 0-based position of a list lambda's index parameter ``i``."""
        return f"{i} - 1"

    def struct(self, fields: Sequence[tuple[str, str]], *, plain: bool = False) -> str:
        """A struct of (name, value); ``plain`` names are written as they are (no quoting)."""
        return "struct_pack(" + ", ".join(f"{n if plain else self.ident(n)} := {v}" for n, v in fields) + ")"

    def let(self, value: str, body: Callable[[str], str]) -> str:
        """SQL: ``body(v)`` with ``v`` bound once to ``value`` (a one-item list lambda), so that a
        long expression is not repeated (and bound again by the engine) wherever the body uses it."""
        v = f"_l{next(LET)}"
        return self.at(f"({self.transform(self.arr(value), f'{v} -> ({body(v)})')})", 1)

    # ----- JSON values

    def extract(self, obj: str, paths: list[tuple[str, ...]]) -> str:
        """The list of the JSON at each path (names through objects) of the JSON ``obj``, one parse."""
        return f"json_extract({obj}, " + "[" + ", ".join(self.q("$" + "".join(f'."{n}"' for n in p)) for p in paths) + "])"

    def no_extract(self) -> str:
        return "CAST(NULL AS JSON[])"

    def get(self, x: str, name: str) -> str:
        """The JSON of member ``name`` of the JSON ``x`` (NULL when absent)."""
        return f"({x} -> {self.q(name)})"

    def text(self, x: str) -> str:
        """The text of the JSON ``x``: a string unquoted, anything else as JSON; NULL for null."""
        return f"({x} ->> '$')"

    def text_raw(self, x: str) -> str:
        """:meth:`text` as an operand (unparenthesised)."""
        return f"{x} ->> '$'"

    def text_at(self, x: str, name: str) -> str:
        return f"({x} ->> {self.q(name)})"

    def try_cast_json(self, x: str, t: str) -> str:
        """The JSON ``x`` (a number or the text of one) as ``t``; NULL when it is not one."""
        return f"TRY_CAST({x} ->> '$' AS {t})"

    def json_text(self, x: str) -> str:
        """The JSON ``x`` written as JSON text."""
        return f"CAST({x} AS VARCHAR)"

    def to_json(self, x: str) -> str:
        """A SQL scalar as JSON."""
        return f"to_json({x})"

    def is_array(self, x: str) -> str:
        """SQL: the JSON ``x`` (which the engine wrote, compact) is an array."""
        return f"starts_with(CAST({x} AS VARCHAR), '[')"

    def element(self, value: str) -> str:
        """The collection of an element's JSON ``value`` (a list gives its items, NULL and null none).

        ``value`` is always JSON that DuckDB wrote (``json_extract``, ``->``, the items of a
        ``CAST(… AS JSON[])``), which is compact: null is the text ``null`` and an array starts with
        ``[``, so its kind is read from its first character, not by parsing it again."""
        return self.let(value, lambda j: (
            f"CASE WHEN {j} IS NULL OR CAST({j} AS VARCHAR) = 'null' THEN {self.empty} "
            f"WHEN starts_with(CAST({j} AS VARCHAR), '[') THEN CAST({j} AS JSON[]) ELSE [{j}] END"))  # fmt: skip

    def kind_is(self, x: str, kind: str) -> str:
        """SQL: the JSON ``x`` is a ``kind``: 'boolean', 'number', 'integer', 'string' or 'structure'
        (an object or an array)."""
        return {
            "boolean": f"json_type({x}) = 'BOOLEAN'",
            "number": f"json_type({x}) IN ('UBIGINT', 'BIGINT', 'DOUBLE')",
            "integer": f"json_type({x}) IN ('BIGINT', 'UBIGINT')",
            "decimal": f"json_type({x}) IN ('BIGINT', 'UBIGINT', 'DOUBLE')",
            "string": f"json_type({x}) = 'VARCHAR'",
            "structure": f"json_type({x}) IN ('OBJECT', 'ARRAY')",
        }[kind]

    def bigint(self, x: str) -> str:
        """The JSON number ``x`` as an integer wide enough for any JSON integer."""
        return f"CAST({x} AS HUGEINT)"

    # ----- functions

    def error(self, msg: str) -> str:
        return f"error({msg})"

    def int_div(self) -> str:
        return "//"

    def full_match(self, s: str, pattern: str) -> str:
        return f"regexp_full_match({s}, {self.q(pattern)})"

    # ----- the query

    def out(self, value: str, t: str) -> str:
        """A column of the view's result as the runner reads it (JSON as text)."""
        return value

    def query(self, keep: str, out_cols: str, rows: str, source_rows: str, filt: str) -> str:
        return f"SELECT {keep}{out_cols} FROM (SELECT ord, unnest({rows}) AS _row FROM {source_rows} WHERE {filt}) ORDER BY ord"


class DuckDB(Dialect):
    pass


class Spark(Dialect):
    """Spark SQL 4: a resource is a ``VARIANT``, a collection an ``ARRAY<VARIANT>``."""

    name = "spark"

    def q(self, s: str) -> str:
        # Spark reads a backslash in a literal as an escape, and '' as two literals run together
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def ident(self, s: str) -> str:
        return "`" + s.replace("`", "``") + "`"

    def typ(self, t: str) -> str:
        if t.endswith("[]"):
            return f"ARRAY<{self.typ(t[:-2])}>"
        if t.startswith("STRUCT("):
            fields = [f.strip().split(" ", 1) for f in t[len("STRUCT("):-1].split(",")]
            return "STRUCT<" + ", ".join(f"{n}: {self.typ(ft)}" for n, ft in fields) + ">"
        return {"JSON": "VARIANT", "VARCHAR": "STRING"}.get(t, t)

    @property
    def empty(self) -> str:
        return "CAST(array() AS ARRAY<VARIANT>)"

    def null_json(self) -> str:
        return "CAST(NULL AS VARIANT)"

    def arr(self, *items: str) -> str:
        return "array(" + ", ".join(items) + ")"

    def at(self, lst: str, i: int) -> str:
        return f"get({lst}, {i - 1})"

    def last(self, lst: str) -> str:
        return f"try_element_at({lst}, -1)"

    def head(self, lst: str) -> str:
        return f"slice({lst}, 1, 1)"

    def tail_one(self, lst: str) -> str:
        return f"slice({lst}, -1, 1)"

    def size(self, lst: str) -> str:
        return f"size({lst})"

    def transform(self, lst: str, lam: str) -> str:
        return f"transform({lst}, {lam})"

    def filter(self, lst: str, lam: str) -> str:
        return f"filter({lst}, {lam})"

    def concat(self, *lists: str) -> str:
        return f"concat({', '.join(lists)})"

    def distinct(self, lst: str) -> str:
        # a VARIANT cannot be compared: compare the JSON texts
        return f"transform(array_distinct(transform({lst}, _d -> to_json(_d))), _d -> parse_json(_d))"

    def join(self, lst: str, sep: str) -> str:
        return f"array_join({lst}, {sep})"

    def pos0(self, i: str) -> str:
        return i

    def struct(self, fields: Sequence[tuple[str, str]], *, plain: bool = False) -> str:
        return "named_struct(" + ", ".join(f"{self.q(n)}, {v}" for n, v in fields) + ")"

    def _path(self, names: tuple[str, ...]) -> str:
        return self.q("$" + "".join(f".{n}" if _PLAIN.fullmatch(n) else "['" + n.replace("'", "\\'") + "']" for n in names))

    def extract(self, obj: str, paths: list[tuple[str, ...]]) -> str:
        return "array(" + ", ".join(f"variant_get({obj}, {self._path(p)})" for p in paths) + ")"

    def no_extract(self) -> str:
        return "CAST(NULL AS ARRAY<VARIANT>)"

    def get(self, x: str, name: str) -> str:
        return f"variant_get({x}, {self._path((name,))})"

    def text(self, x: str) -> str:
        return f"CAST({x} AS STRING)"

    def text_raw(self, x: str) -> str:
        return self.text(x)

    def text_at(self, x: str, name: str) -> str:
        return f"CAST({self.get(x, name)} AS STRING)"

    def try_cast_json(self, x: str, t: str) -> str:
        return f"TRY_CAST({x} AS {t})"

    def json_text(self, x: str) -> str:
        return f"to_json({x})"

    def to_json(self, x: str) -> str:
        return f"CAST({x} AS VARIANT)"

    def is_array(self, x: str) -> str:
        return f"(try_variant_get({x}, '$', 'ARRAY<VARIANT>') IS NOT NULL)"

    def element(self, value: str) -> str:
        return self.let(value, lambda j: (
            f"CASE WHEN {j} IS NULL OR is_variant_null({j}) THEN {self.empty} "
            f"ELSE coalesce(try_variant_get({j}, '$', 'ARRAY<VARIANT>'), array({j})) END"))  # fmt: skip

    def kind_is(self, x: str, kind: str) -> str:
        s = f"schema_of_variant({x})"
        return {
            "boolean": f"{s} = 'BOOLEAN'",
            "number": f"({s} IN ('BIGINT', 'DOUBLE') OR {s} LIKE 'DECIMAL%')",
            "integer": f"{s} = 'BIGINT'",
            "decimal": f"({s} IN ('BIGINT', 'DOUBLE') OR {s} LIKE 'DECIMAL%')",
            "string": f"{s} = 'STRING'",
            "structure": f"({s} LIKE 'OBJECT%' OR {s} LIKE 'ARRAY%')",
        }[kind]

    def bigint(self, x: str) -> str:
        return f"CAST({x} AS DECIMAL(38, 0))"

    def error(self, msg: str) -> str:
        return f"raise_error({msg})"

    def int_div(self) -> str:
        return "div"

    def full_match(self, s: str, pattern: str) -> str:
        return f"({s} RLIKE {self.q('^(?:' + pattern + ')$')})"

    def out(self, value: str, t: str) -> str:
        if t == "JSON":
            return f"to_json({value})"
        if t == "JSON[]":
            return f"transform({value}, _o -> to_json(_o))"
        return value

    def query(self, keep: str, out_cols: str, rows: str, source_rows: str, filt: str) -> str:
        # posexplode keeps each resource's rows in their order (ORDER BY ord alone need not)
        return (f"SELECT {keep}{out_cols} FROM (SELECT ord, posexplode({rows}) AS (_pos, _row) FROM {source_rows} AS _s "
                f"WHERE {filt}) AS _q ORDER BY ord, _pos")


DUCKDB: Dialect = DuckDB()
SPARK: Dialect = Spark()

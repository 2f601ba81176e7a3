"""SQL-on-FHIR v2 ViewDefinition → one DuckDB SELECT over a table of resources as JSON.

Every FHIRPath collection is a DuckDB ``JSON[]`` list, so a path step, ``where``,
``first()`` and ``forEach`` are list functions (``list_transform``, ``list_filter``,
``flatten``) evaluated by DuckDB over the whole input in one pass; no resource is walked
in Python. A ``select`` becomes a list of row structs for its context (``forEach`` over
the items, ``unionAll`` concatenating its branches, nested selects crossed with the
columns); the query unnests the list of each resource. A boolean, number or text that an
operator produces stays a typed SQL scalar (NULL is the empty collection: SQL's
three-valued ``AND``/``OR`` are FHIRPath's).

DuckDB's ``JSON`` is text: each function on it parses it again. So each resource is parsed
once, by one ``json_extract`` of every element path the view reads from it (``$.code.coding``
included: :class:`_Scope`), and each ``forEach`` item likewise; a path through a list (whose
items JSONPath does not enter) steps into each item. A column both type-checked and extracted
is evaluated once for both.

What the compiler does not support it refuses with :class:`ViewError`, naming the view,
the column (or forEach/where) and the expression.

The same compiler writes Spark SQL (``compile_view(view, engine="spark")``): every piece of SQL
that differs between the engines goes through :mod:`.dialect`, where DuckDB's ``JSON``/``JSON[]``
are Spark's ``VARIANT``/``ARRAY<VARIANT>``; what is said above of DuckDB's lists holds of Spark's
arrays.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from trialdesk.sources.fhir_views.dialect import DUCKDB, SPARK, Dialect
from trialdesk.sources.fhir_views.fhirpath import Node, PathSyntaxError, parse

__all__ = ["CompiledView", "ViewError", "compile_view", "sql_type"]


class ViewError(ValueError):
    """The ViewDefinition is invalid, or uses FHIRPath this runner does not support."""


#: FHIR primitive type → the SQL type of a column declared with it
_SQL_TYPES = {
    "boolean": "BOOLEAN", "integer": "BIGINT", "positiveInt": "BIGINT", "unsignedInt": "BIGINT", "integer64": "BIGINT",
    "decimal": "DOUBLE",
}  # fmt: skip
_STRING_TYPES = frozenset({
    "string", "code", "id", "uri", "url", "canonical", "oid", "uuid", "markdown", "base64Binary", "date", "dateTime",
    "instant", "time", "xhtml",
})  # fmt: skip
_ERRORS_TYPE = "STRUCT(element VARCHAR, problem VARCHAR)[]"


def sql_type(fhir_type: str | None) -> str | None:
    if fhir_type is None:
        return None
    if fhir_type in _SQL_TYPES:
        return _SQL_TYPES[fhir_type]
    if fhir_type in _STRING_TYPES:
        return "VARCHAR"
    return "JSON"


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(eq=False)
class _Scope:
    """One JSON object parsed once: ``var`` is the SQL list of the elements the view reads from it,
    at any depth through objects (``json_extract(object, ['$."a"', '$."a"."b"', …])``, one parse),
    each element found by its index."""

    var: str
    d: Dialect
    names: dict[tuple[str, ...], int] = field(default_factory=dict)

    def get(self, path: tuple[str, ...]) -> str:
        """SQL: the JSON at ``path`` (NULL when absent), as ``object -> a -> b`` gives it."""
        i = self.names.setdefault(path, len(self.names) + 1)
        return self.d.at(self.var, i)

    def extract(self, obj: str) -> str:
        """SQL: the list of every element read, from the JSON ``obj`` in one parse."""
        return self.d.extract(obj, list(self.names))


@dataclass(frozen=True, slots=True)
class _Expr:
    """A compiled FHIRPath expression: ``kind`` 'coll' (a JSON[] list) or a typed scalar
    'bool', 'num', 'str' (NULL = empty). ``one`` is the JSON value when the collection is
    known to hold at most one item (the resource itself, ``$this``, after ``first()``)."""

    sql: str
    kind: str = "coll"
    one: str | None = None
    #: the object this collection's one item was parsed into once (its elements read by index), if any
    scope: _Scope | None = None
    #: (scope, path): this collection is the element at ``path`` of the scope's object
    at: tuple[_Scope, tuple[str, ...]] | None = None


@dataclass(frozen=True, slots=True)
class _Ctx:
    this: _Expr
    resource: str
    row_index: str
    where: str  # "view X, column Y" for messages
    element: str = ""  # the JSON name of the element iterated (forEach), for naming a wrong value


@dataclass
class CompiledView:
    name: str
    resource: str
    #: (name, SQL type, FHIR type or None, collection) of each column, in order
    columns: list[tuple[str, str, str | None, bool]]
    #: the SELECT over a table with columns (rtype, resource) and an ordinal ``ord``
    sql_template: str
    notes: list[str] = field(default_factory=list)
    #: the engine the SQL is written for: 'duckdb' or 'spark'
    engine: str = "duckdb"

    def sql(self, source: str, *, keep_ord: bool = False) -> str:
        """The query over ``source``; with ``keep_ord``, its first column is the resource's ``ord``."""
        return self.sql_template.replace("{source}", source).replace("{keep}", "ord, " if keep_ord else "")


class _Compiler:
    def __init__(self, view: Any, validate: bool = False, dialect: Dialect = DUCKDB) -> None:
        self.validate = validate
        self.d = d = dialect
        if not isinstance(view, dict) or not view:
            raise ViewError("the ViewDefinition is empty")
        self.view = view
        self.name = str(view.get("name") or view.get("title") or view.get("id") or "(unnamed view)")
        resource = view.get("resource")
        if not isinstance(resource, str) or not resource:
            raise ViewError(f"view {self.name}: no 'resource' (the FHIR resource type the view reads)")
        self.resource = resource
        if not isinstance(view.get("select"), list) or not view["select"]:
            raise ViewError(f"view {self.name}: no 'select'")
        self.constants = self._constants(view.get("constant") or [])
        self.fresh = itertools.count()
        self.checks: list[str] = []
        #: the resource's top-level elements the view reads, extracted in one parse of each resource
        self.root = _Scope("_root", d)
        self.bvar = ""

    # ----- constants

    def _constants(self, items: Any) -> dict[str, _Expr]:
        out: dict[str, _Expr] = {}
        if not isinstance(items, list):
            raise ViewError(f"view {self.name}: 'constant' must be a list")
        for c in items:
            name = c.get("name") if isinstance(c, dict) else None
            values = [k for k in (c or {}) if isinstance(k, str) and k.startswith("value")]
            if not isinstance(name, str) or len(values) != 1:
                raise ViewError(f"view {self.name}: constant {name!r} must have a name and exactly one value[x]")
            key = values[0]
            v = c[key]
            if isinstance(v, bool):
                out[name] = _Expr("TRUE" if v else "FALSE", "bool")
            elif isinstance(v, (int, float)):
                out[name] = _Expr(repr(v), "num")
            elif isinstance(v, str):
                out[name] = _Expr(self.d.q(v), "str")
            else:
                raise ViewError(f"view {self.name}: constant {name!r}: {key} must be a primitive value")
        return out

    def var(self) -> str:
        return f"_v{next(self.fresh)}"

    # ----- expressions

    def expr(self, text: Any, ctx: _Ctx) -> _Expr:
        if not isinstance(text, str):
            raise ViewError(f"{ctx.where}: the expression {text!r} is not a FHIRPath string")
        try:
            node = parse(text)
        except PathSyntaxError as e:
            raise ViewError(f"{ctx.where}: cannot read the FHIRPath {text!r}: {e}") from e
        try:
            return self.node(node, ctx)
        except _Unsupported as e:
            raise ViewError(f"{ctx.where}: {text!r}: {e}") from e

    def node(self, n: Node, ctx: _Ctx) -> _Expr:
        k = n.kind
        d = self.d
        if k == "str":
            return _Expr(d.q(str(n.value)), "str")
        if k == "num":
            return _Expr(repr(n.value), "num")
        if k == "bool":
            return _Expr("TRUE" if n.value else "FALSE", "bool")
        if k == "date":
            return _Expr(d.q(str(n.value)), "str")
        if k == "this":
            return ctx.this
        if k == "const":
            name = str(n.value)
            if name == "rowIndex":
                return _Expr(ctx.row_index, "num")
            if name == "resource" or name == "rootResource":
                return _Expr(d.arr(ctx.resource), "coll", ctx.resource)
            if name not in self.constants:
                raise _Unsupported(f"%{name} is not a constant of the view")
            return self.constants[name]
        if k == "member":
            base = ctx.this if n.args[0] is None else self.node(n.args[0], ctx)
            return self.child(base, str(n.value))
        if k == "index":
            base = self.node(n.args[0], ctx)  # type: ignore[arg-type]
            idx = self.node(n.args[1], ctx)  # type: ignore[arg-type]
            i = idx.sql if idx.kind == "num" else d.try_cast_json(self.single(idx), "BIGINT")
            v = self.var()
            return _Expr(d.filter(self.coll(base), f"({v}, _i) -> {d.pos0('_i')} = CAST({i} AS BIGINT)"))
        if k == "neg":
            x = self.num(self.node(n.args[0], ctx))  # type: ignore[arg-type]
            return _Expr(f"(-{x})", "num")
        if k == "op":
            return self.op(str(n.value), n.args[0], n.args[1], ctx)  # type: ignore[arg-type]
        if k == "call":
            return self.call(n, ctx)
        raise _Unsupported(f"{k} is not supported")

    def coll(self, e: _Expr) -> str:
        """The expression as a collection."""
        if e.kind == "coll":
            return e.sql
        return f"(CASE WHEN ({e.sql}) IS NULL THEN {self.d.empty} ELSE {self.d.arr(self.d.to_json(e.sql))} END)"

    def single(self, e: _Expr) -> str:
        """The first item as JSON (NULL when empty)."""
        if e.kind != "coll":
            return self.d.to_json(e.sql)
        return e.one if e.one is not None else self.d.at(f"({e.sql})", 1)

    def child(self, base: _Expr, name: str) -> _Expr:
        d = self.d
        if base.kind != "coll":
            return _Expr(d.empty)
        scope = self.root if base.one == "resource" else base.scope
        if scope is not None and _PLAIN_NAME.fullmatch(name):  # an element of an object parsed once (see _Scope)
            return _Expr(d.element(scope.get((name,))), at=(scope, (name,)))
        if base.at is not None and _PLAIN_NAME.fullmatch(name):
            # a.b read by the same parse as a ($.a.b), unless a (or an element above it) is a list, whose items
            # JSONPath does not enter: then step into each item as below
            scope, path = base.at
            lists = " OR ".join(d.is_array(scope.get(path[:k])) for k in range(1, len(path) + 1))
            v = self.var()
            each = f"flatten({d.transform(base.sql, f'{v} -> {d.element(d.get(v, name))}')})"
            return _Expr(f"(CASE WHEN {lists} THEN {each} ELSE {d.element(scope.get((*path, name)))} END)",
                         at=(scope, (*path, name)))
        if base.one is not None:
            return _Expr(d.element(d.get(base.one, name)))
        v = self.var()
        return _Expr(f"flatten({d.transform(base.sql, f'{v} -> {d.element(d.get(v, name))}')})")

    def num(self, e: _Expr) -> str:
        if e.kind == "num":
            return e.sql
        if e.kind == "coll":
            return self.d.try_cast_json(f"({self.single(e)})", "DOUBLE")
        raise _Unsupported("a number was expected")

    def text(self, e: _Expr) -> str:
        if e.kind == "str":
            return e.sql
        if e.kind == "coll":
            return self.d.text(f"({self.single(e)})")
        return f"CAST({e.sql} AS {self.d.typ('VARCHAR')})"

    def boolean(self, e: _Expr, what: str = "") -> str:
        """FHIRPath singleton evaluation as a boolean; a non-boolean value is an error."""
        if e.kind == "bool":
            return e.sql
        if e.kind == "coll":
            d = self.d
            msg = d.q(f"{what}: the expression does not give a boolean")
            return d.let(e.sql, lambda c: (
                f"CASE WHEN {d.size(c)} = 0 THEN NULL WHEN {d.size(c)} = 1 AND {d.kind_is(d.at(c, 1), 'boolean')} "
                f"THEN CAST({d.at(c, 1)} AS BOOLEAN) ELSE {d.error(msg)} END"))  # fmt: skip
        raise _Unsupported("a boolean was expected")

    def op(self, op: str, left: Node, right: Node, ctx: _Ctx) -> _Expr:
        a, b = self.node(left, ctx), self.node(right, ctx)
        if op in ("and", "or"):
            return _Expr(f"({self.boolean(a, ctx.where)} {op.upper()} {self.boolean(b, ctx.where)})", "bool")
        if op == "xor":
            return _Expr(f"({self.boolean(a, ctx.where)} <> {self.boolean(b, ctx.where)})", "bool")
        if op == "implies":
            return _Expr(f"((NOT {self.boolean(a, ctx.where)}) OR {self.boolean(b, ctx.where)})", "bool")
        if op in ("+", "-", "*", "/", "div", "mod"):
            if op == "+" and "str" in (a.kind, b.kind):
                return _Expr(f"({self.text(a)} || {self.text(b)})", "str")
            sql_op = {"div": self.d.int_div(), "mod": "%"}.get(op, op)
            x, y = self.num(a), self.num(b)
            if op == "/":
                return _Expr(f"(CASE WHEN {y} = 0 THEN NULL ELSE {x} / {y} END)", "num")
            return _Expr(f"({x} {sql_op} {y})", "num")
        if op == "&":
            return _Expr(f"(coalesce({self.text(a)}, '') || coalesce({self.text(b)}, ''))", "str")
        if op == "|":
            return _Expr(self.d.distinct(self.d.concat(self.coll(a), self.coll(b))))
        if op in ("=", "!=", "<", "<=", ">", ">=", "~", "!~"):
            sql_op = {"~": "=", "!~": "<>", "!=": "<>"}.get(op, op)
            ci = op in ("~", "!~")
            return _Expr(self.compare(a, b, sql_op, ci), "bool")
        raise _Unsupported(f"the operator {op!r} is not supported")

    def compare(self, a: _Expr, b: _Expr, op: str, ci: bool) -> str:
        kinds = {a.kind, b.kind}
        if "num" in kinds:
            return f"({self.num(a)} {op} {self.num(b)})"
        if "bool" in kinds:
            x = a.sql if a.kind == "bool" else f"TRY_CAST({self.single(a)} AS BOOLEAN)"
            y = b.sql if b.kind == "bool" else f"TRY_CAST({self.single(b)} AS BOOLEAN)"
            return f"({x} {op} {y})"
        if "str" in kinds:
            x, y = self.text(a), self.text(b)
            if ci:
                x, y = f"lower({x})", f"lower({y})"
            return f"({x} {op} {y})"
        d = self.d
        return d.let(d.arr(self.single(a), self.single(b)), lambda p: (
            f"CASE WHEN {d.kind_is(d.at(p, 1), 'number')} AND {d.kind_is(d.at(p, 2), 'number')} "
            f"THEN CAST({d.at(p, 1)} AS DOUBLE) {op} CAST({d.at(p, 2)} AS DOUBLE) "
            f"WHEN {d.kind_is(d.at(p, 1), 'structure')} OR {d.kind_is(d.at(p, 2), 'structure')} "
            f"THEN {d.json_text(d.at(p, 1))} {op} {d.json_text(d.at(p, 2))} "
            f"ELSE {d.text(d.at(p, 1))} {op} {d.text(d.at(p, 2))} END"))  # fmt: skip

    def call(self, n: Node, ctx: _Ctx) -> _Expr:
        name = str(n.value)
        base_node, args = n.args[0], n.args[1:]
        if name == "ofType":
            return self.of_type(base_node, args, ctx)
        base = ctx.this if base_node is None else self.node(base_node, ctx)
        d = self.d

        def arity(*allowed: int) -> None:
            if len(args) not in allowed:
                raise _Unsupported(f"{name}() takes {' or '.join(map(str, allowed))} argument(s)")

        if name == "first":
            arity(0)
            if base.kind != "coll":
                return base
            return _Expr(d.head(f"({base.sql})"), "coll", self.single(base))
        if name == "last":
            arity(0)
            return _Expr(d.tail_one(f"({self.coll(base)})"), "coll", d.last(f"({self.coll(base)})"))
        if name in ("exists", "empty"):
            arity(0, 1)
            coll = self.coll(base) if not args else self.where(base, args[0], ctx).sql
            test = f"({d.size(coll)} > 0)" if name == "exists" else f"({d.size(coll)} = 0)"
            return _Expr(test, "bool")
        if name == "count":
            arity(0)
            return _Expr(d.size(self.coll(base)), "num")
        if name == "where":
            arity(1)
            return self.where(base, args[0], ctx)
        if name == "not":
            arity(0)
            return _Expr(f"(NOT {self.boolean(base, ctx.where)})", "bool")
        if name == "join":
            arity(0, 1)
            sep = d.q("") if not args else self.text(self.node(args[0], ctx))  # type: ignore[arg-type]
            v = self.var()
            return _Expr(f"coalesce({d.join(d.transform(self.coll(base), f'{v} -> {d.text(v)}'), sep)}, {d.q('')})", "str")
        if name == "extension":
            arity(1)
            url = self.text(self.node(args[0], ctx))  # type: ignore[arg-type]
            v = self.var()
            return _Expr(d.filter(self.child(base, "extension").sql, f"{v} -> ({d.text_at(v, 'url')} = {url})"))
        if name == "getResourceKey":
            arity(0)
            src = base.one if base.one is not None else ctx.resource
            return _Expr(d.text(self.root.get(("id",))) if src == "resource" else d.text_at(src, "id"), "str")
        if name == "getReferenceKey":
            arity(0, 1)
            v = self.var()
            refs = self.child(base, "reference").sql
            test = "TRUE"
            if args:
                t = args[0]
                if t is None or t.kind != "member" or t.args[0] is not None:
                    raise _Unsupported("getReferenceKey() takes a resource type name")
                test = f"regexp_extract({d.text_raw(v)}, {d.q('([A-Za-z]+)/[^/]+(/_history/.*)?$')}, 1) = {d.q(str(t.value))}"
            key = f"regexp_extract({d.text_raw(v)}, {d.q('([^/#]+)(/_history/[^/]+)?$')}, 1)"
            keys = d.transform(d.filter(refs, f"{v} -> ({test})"), f"{v} -> ({d.to_json(key)})")
            return _Expr(keys)
        if name in ("lowBoundary", "highBoundary"):
            raise _Unsupported(f"{name}() is not supported (experimental in SQL-on-FHIR v2)")
        if name in ("toString", "toInteger", "toDecimal"):
            arity(0)
            if name == "toString":
                return _Expr(self.text(base), "str")
            return _Expr(self.num(base), "num")
        raise _Unsupported(f"the function {name}() is not supported")

    def where(self, base: _Expr, cond: Node | None, ctx: _Ctx) -> _Expr:
        v = self.var()
        inner = _Ctx(_Expr(self.d.arr(v), "coll", v), ctx.resource, ctx.row_index, ctx.where)
        test = self.boolean(self.node(cond, inner), ctx.where)  # type: ignore[arg-type]
        return _Expr(self.d.filter(self.coll(base), f"{v} -> coalesce({test}, FALSE)"))

    def of_type(self, base_node: Node | None, args: tuple[Node | None, ...], ctx: _Ctx) -> _Expr:
        if len(args) != 1 or args[0] is None or args[0].kind != "member" or args[0].args[0] is not None:
            raise _Unsupported("ofType() takes one type name")
        type_name = str(args[0].value)
        if base_node is not None and base_node.kind == "member":
            # a choice element: value.ofType(Quantity) is valueQuantity
            choice = str(base_node.value) + type_name[0].upper() + type_name[1:]
            return self.node(Node("member", choice, base_node.args), ctx)
        raise _Unsupported("ofType() is supported on a choice element (such as value.ofType(Quantity)) only")

    # ----- selects

    def column_expr(self, col: Any, ctx: _Ctx, bound: list[str] | None = None) -> tuple[str, str, str, str | None, bool]:
        """(name, SQL value, SQL type, FHIR type, collection) of a column. With ``bound``, a collection
        both checked and extracted is evaluated once: its SQL is appended to ``bound`` and the column
        reads it as field ``k<i>`` of the struct ``self.bvar`` (see :meth:`_rows`)."""
        if not isinstance(col, dict) or not isinstance(col.get("name"), str) or "path" not in col:
            raise ViewError(f"view {self.name}: a column needs a name and a path: {json.dumps(col)[:200]}")
        name, ftype, collection = col["name"], col.get("type"), bool(col.get("collection", False))
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            raise ViewError(f"view {self.name}: column name {name!r} must be letters, digits and _, starting with a letter")
        where = f"view {self.name}, column {name}"
        e = self.expr(col["path"], _Ctx(ctx.this, ctx.resource, ctx.row_index, where))
        d = self.d
        if self.validate and e.kind == "coll":
            v = self.var()
            check = check_sql(v, ftype, d)
            if check is not None:
                if bound is not None:
                    bound.append(self.coll(e))
                    ref = f"{self.bvar}.k{len(bound)}"
                    e = _Expr(ref, "coll", d.at(ref, 1) if e.one is not None else None)
                element = element_name(col["path"], ctx.element)
                bad = d.head(d.filter(d.transform(self.coll(e), f"{v} -> {check}"), f"{v} -> ({v} IS NOT NULL)"))
                pack = d.struct([("element", d.q(element)), ("problem", v)], plain=True)
                self.checks.append(d.at(f"({d.transform(bad, f'{v} -> {pack}')})", 1))
        if collection:
            item = sql_type(ftype)
            if item is None or item == "JSON":
                return name, self.coll(e), "JSON[]", ftype, True
            v = self.var()
            cast = d.text(v) if item == "VARCHAR" else f"CAST({v} AS {d.typ(item)})"
            return name, d.transform(self.coll(e), f"{v} -> {cast}"), f"{item}[]", ftype, True
        target = sql_type(ftype) or {"bool": "BOOLEAN", "num": "DOUBLE", "str": "VARCHAR"}.get(e.kind, "JSON")
        if e.kind == "coll":
            msg = d.q(f'{where}: the path gives more than one value; declare the column "collection": true')
            one = e.one if e.one is not None else d.let(
                e.sql, lambda c: f"CASE WHEN {d.size(c)} > 1 THEN {d.error(msg)} ELSE {d.at(c, 1)} END")
            if target == "JSON":
                value = one
            elif target == "VARCHAR":
                value = d.text(one)
            else:
                value = f"{'TRY_CAST' if self.validate else 'CAST'}({one} AS {d.typ(target)})"
        else:
            value = f"CAST({e.sql} AS {d.typ(target)})"
        return name, value, target, ftype, False

    def select(self, node: Any, ctx: _Ctx) -> tuple[str, list[tuple[str, str, str | None, bool]]]:
        """(SQL list of row structs, columns) of one select node in its context."""
        if not isinstance(node, dict):
            raise ViewError(f"view {self.name}: a select must be an object")
        if "repeat" in node:
            raise ViewError(f"view {self.name}: 'repeat' is not supported by this runner")
        iterate = None
        for key in ("forEach", "forEachOrNull"):
            if key in node:
                if iterate is not None:
                    raise ViewError(f"view {self.name}: a select has both forEach and forEachOrNull")
                iterate = key
        if iterate is not None:
            where = f"view {self.name}, {iterate}"
            items = self.expr(node[iterate], _Ctx(ctx.this, ctx.resource, ctx.row_index, where))
            v = self.var()
            i = self.var()
            prefix = element_name(node[iterate], ctx.element) if isinstance(node[iterate], str) else ctx.element
            d = self.d
            scope = _Scope(self.var(), d)
            inner = _Ctx(_Expr(d.arr(v), "coll", v, scope), ctx.resource, f"({d.pos0(i)})", ctx.where, prefix)
            rows, cols = self._rows(node, inner)
            if scope.names:  # each item parsed once for all the elements its columns read
                rows = d.at(f"({d.transform(d.arr(scope.extract(v)), f'{scope.var} -> {rows}')})", 1)
            sql = f"flatten({d.transform(self.coll(items), f'({v}, {i}) -> {rows}')})"
            if iterate == "forEachOrNull":
                # the row of an empty forEachOrNull: its columns over an empty context (%rowIndex 0), or all NULL
                empty_ctx = _Ctx(_Expr(d.empty, "coll", d.null_json()), ctx.resource, "0", ctx.where)
                empty_rows, _ = self._rows(node, empty_ctx)
                empty_rows = self._cast_rows(empty_rows, _, [c[1] for c in cols])
                null_rows = f"(CASE WHEN {d.size(empty_rows)} > 0 THEN {empty_rows} ELSE {self._null_rows(cols)} END)"
                sql = f"(CASE WHEN {d.size(self.coll(items))} = 0 THEN {null_rows} ELSE {sql} END)"
            return sql, cols
        return self._rows(node, ctx)

    def _null_rows(self, cols: list[tuple[str, str, str | None, bool]]) -> str:
        return self.d.arr(self.d.struct([(c, f"CAST(NULL AS {self.d.typ(t)})") for c, t, _, _ in cols]))

    def _rows(self, node: Any, ctx: _Ctx) -> tuple[str, list[tuple[str, str, str | None, bool]]]:
        parts: list[tuple[str, list[tuple[str, str, str | None, bool]]]] = []
        columns = node.get("column") or []
        if not isinstance(columns, list):
            raise ViewError(f"view {self.name}: 'column' must be a list")
        if columns:
            before = len(self.checks)
            bound: list[str] = []
            self.bvar = bvar = self.var()
            compiled = [self.column_expr(c, ctx, bound) for c in columns]
            mine, self.checks[before:] = self.checks[before:], []
            d = self.d
            if self.validate:
                errors = d.filter(d.arr(*mine), "_e -> (_e IS NOT NULL)") if mine else f"CAST({d.arr()} AS {d.typ(_ERRORS_TYPE)})"
                compiled.append((f"_errors_{next(self.fresh)}", errors, _ERRORS_TYPE, None, True))
            fields = d.struct([(c, v) for c, v, _, _, _ in compiled])
            row = d.arr(fields)
            if bound:  # the checked collections, each evaluated once for its check and its value
                binds = d.struct([(f"k{i}", b) for i, b in enumerate(bound, start=1)], plain=True)
                row = d.transform(d.arr(binds), f"{bvar} -> {fields}")
            parts.append((row, [(c, t, f, coll) for c, _, t, f, coll in compiled]))
        for sub in node.get("select") or []:
            parts.append(self.select(sub, ctx))
        union = node.get("unionAll")
        if union is not None:
            if not isinstance(union, list) or not union:
                raise ViewError(f"view {self.name}: 'unionAll' must be a non-empty list of selects")
            branches = [self.select(b, ctx) for b in union]
            # each branch's own value-check columns take the first branch's names (they line up)
            first = [c[0] for c in branches[0][1]]
            for k, (b_sql, b_cols) in enumerate(branches[1:], start=1):
                if len(b_cols) == len(first) and any(c[0] != n and c[0].startswith("_errors_") for c, n in zip(b_cols, first, strict=True)):
                    v = self.var()
                    renamed = [(n if c[0].startswith("_errors_") and n.startswith("_errors_") else c[0], *c[1:]) for c, n in
                               zip(b_cols, first, strict=True)]  # fmt: skip
                    fields = self.d.struct([(r[0], f"{v}.{self.d.ident(c[0])}") for r, c in zip(renamed, b_cols, strict=True)])
                    branches[k] = (self.d.transform(b_sql, f"{v} -> {fields}"), renamed)
            names = [c[0] for c in branches[0][1]]
            for _, cols in branches[1:]:
                if [c[0] for c in cols] != names:
                    raise ViewError(f"view {self.name}: every branch of a unionAll must have the same columns in the "
                                    f"same order ({', '.join(names)} vs {', '.join(c[0] for c in cols)})")  # fmt: skip
            types = [c[1] for c in branches[0][1]]
            for _, cols in branches[1:]:
                types = [t if t == c[1] else "JSON" for t, c in zip(types, cols, strict=True)]
            casted = [self._cast_rows(sql, cols, types) for sql, cols in branches]
            merged = [(c[0], t, c[2], c[3]) for c, t in zip(branches[0][1], types, strict=True)]
            parts.append((self.d.concat(*casted), merged))
        if not parts:
            raise ViewError(f"view {self.name}: a select has no column, select or unionAll")
        sql, cols = parts[0]
        for other_sql, other_cols in parts[1:]:
            clash = {c[0] for c in cols} & {c[0] for c in other_cols}
            if clash:
                raise ViewError(f"view {self.name}: column name(s) {', '.join(sorted(clash))} used twice")
            a, b = self.var(), self.var()
            d = self.d
            fields = d.struct([(c[0], f"{a}.{d.ident(c[0])}") for c in cols] + [(c[0], f"{b}.{d.ident(c[0])}") for c in other_cols])
            sql = f"flatten({d.transform(sql, f'{a} -> ' + d.transform(other_sql, f'{b} -> {fields}'))})"
            cols = cols + other_cols
        return sql, cols

    def _cast_rows(self, sql: str, cols: list[tuple[str, str, str | None, bool]], types: list[str]) -> str:
        if all(c[1] == t for c, t in zip(cols, types, strict=True)):
            return sql
        v = self.var()
        d = self.d
        fields = d.struct([(c[0], f"CAST({v}.{d.ident(c[0])} AS {d.typ(t)})") for c, t in zip(cols, types, strict=True)])
        return d.transform(sql, f"{v} -> {fields}")

    def compile(self) -> CompiledView:
        d = self.d
        root = _Ctx(_Expr(d.arr("resource"), "coll", "resource"), "resource", "0", f"view {self.name}")
        rows, cols = self._rows({"select": self.view["select"]}, root)
        wheres = []
        for w in self.view.get("where") or []:
            where = f"view {self.name}, where"
            path = w.get("path") if isinstance(w, dict) else None
            e = self.expr(path, _Ctx(root.this, "resource", "0", where))
            wheres.append(f"coalesce({self.boolean(e, where)}, FALSE)")
        filt = " AND ".join(["TRUE", *wheres])
        errs = [c[0] for c in cols if c[0].startswith("_errors_")]
        cols = [c for c in cols if not c[0].startswith("_errors_")]
        out_cols = ", ".join(f"{d.out(f'_row.{d.ident(c[0])}', c[1])} AS {d.ident(c[0])}" for c in cols)
        if errs:
            out_cols += ", " + (f"_row.{d.ident(errs[0])}" if len(errs) == 1 else d.concat(*(f"_row.{d.ident(e)}" for e in errs)))
            out_cols += " AS _errors"
        # each resource is parsed once for every element the view reads (see _Scope), not once for every path step
        extract = self.root.extract("resource") if self.root.names else d.no_extract()
        source_rows = f"(SELECT ord, resource, {extract} AS _root FROM {{source}} WHERE rtype = {d.q(self.resource)})"
        sql = d.query("{keep}", out_cols, rows, source_rows, filt)
        return CompiledView(self.name, self.resource, cols, sql, engine=d.name)


class _Unsupported(Exception):
    pass


#: JSON Schema patterns of FHIR R4 primitive types (fhir.schema.json), for the value checks
_PATTERNS = {
    "date": r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$",
    "dateTime": r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
                r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$",
    "instant": r"^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])"
               r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$",
    "time": r"^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?$",
    "code": r"^[^\s]+(\s[^\s]+)*$",
    "id": r"^[A-Za-z0-9\-\.]{1,64}$",
    "uri": r"^\S*$", "url": r"^\S*$", "canonical": r"^\S*$", "oid": r"^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$",
    "uuid": r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
}  # fmt: skip


def check_sql(v: str, fhir_type: str | None, d: Dialect = DUCKDB) -> str | None:
    """SQL: NULL when the JSON value ``v`` (a SQL NULL: absent) is a valid FHIR ``fhir_type``,
    else what is wrong with it; None when the type is not checked (a complex type)."""
    if fhir_type is None:
        return None
    shown = f"left({d.json_text(v)}, 40)"
    wrong = f"{shown} || {d.q(f' is not a valid FHIR {fhir_type}')}"
    if fhir_type == "boolean":
        ok = d.kind_is(v, "boolean")
    elif fhir_type in ("integer", "unsignedInt", "positiveInt", "integer64"):
        low = {"unsignedInt": 0, "positiveInt": 1}.get(fhir_type)
        ok = d.kind_is(v, "integer") + (f" AND {d.bigint(v)} >= {low}" if low is not None else "")
    elif fhir_type == "decimal":
        ok = d.kind_is(v, "decimal")
    elif fhir_type in _STRING_TYPES or fhir_type in _PATTERNS:
        ok = d.kind_is(v, "string")
        if fhir_type in _PATTERNS:
            ok += f" AND {d.full_match(d.text_raw(v), _PATTERNS[fhir_type].strip('^$'))}"
        if fhir_type in ("date", "dateTime", "instant"):
            # the pattern allows 2021-02-30; a date must be a real day
            ok += f" AND (length({d.text_raw(v)}) < 10 OR TRY_CAST(substr({d.text_raw(v)}, 1, 10) AS DATE) IS NOT NULL)"
    else:
        return None
    return f"(CASE WHEN {v} IS NULL OR ({ok}) THEN NULL ELSE {wrong} END)"


def element_name(path: str, prefix: str = "") -> str:
    """The JSON name of the element a FHIRPath reads (value.ofType(Quantity).value is
    valueQuantity.value), for naming a value that fails its type."""
    try:
        node: Node | None = parse(path)
    except PathSyntaxError:
        return path
    names: list[str] = []
    while node is not None:
        if node.kind == "member":
            names.append(str(node.value))
            node = node.args[0]
        elif node.kind == "call" and node.value == "ofType" and len(node.args) == 2 and node.args[1] is not None:
            inner = node.args[0]
            t = str(node.args[1].value)
            if inner is not None and inner.kind == "member":
                names.append(str(inner.value) + t[0].upper() + t[1:])
                node = inner.args[0]
            else:
                node = inner
        elif node.kind in ("call", "index"):
            if node.kind == "call" and node.value == "getResourceKey":
                names.append("id")
            node = node.args[0]
        else:
            break
    name = ".".join(reversed(names)) or path
    return f"{prefix}.{name}" if prefix else name


def compile_view(view: Any, *, validate: bool = False, engine: str = "duckdb") -> CompiledView:
    """Compile a ViewDefinition (its parsed JSON) to SQL for ``engine`` ('duckdb' or 'spark');
    :class:`ViewError` when it cannot be.

    With ``validate``, every value a typed column extracts is checked against its FHIR type
    in the same query: a last column ``_errors`` lists (element, problem) for the row."""
    dialects = {"duckdb": DUCKDB, "spark": SPARK}
    if engine not in dialects:
        raise ValueError(f"engine {engine!r}: give duckdb or spark")
    return _Compiler(view, validate, dialects[engine]).compile()

"""A parser for the FHIRPath subset of SQL-on-FHIR v2 shareable views.

Hand-written (a few hundred lines) because the Python FHIRPath engines evaluate one
resource at a time in Python, which is what the views replace; this parser only builds a
tree that :mod:`trialdesk.sources.fhir_views.compiler` turns into DuckDB SQL.

Grammar (FHIRPath precedence, lowest first): ``implies``; ``or``/``xor``; ``and``;
``=``/``!=``; ``<``/``<=``/``>``/``>=``; ``|``; ``+``/``-``/``&``; ``*``/``/``/``div``/``mod``;
unary ``-``; then terms followed by ``.member``, ``.function(args)`` and ``[index]``.
Terms are literals (``'text'``, numbers, ``true``/``false``, ``@date``), ``%constant``,
``$this``, names, function calls and parenthesised expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Node", "PathSyntaxError", "parse"]


class PathSyntaxError(ValueError):
    """The expression is not FHIRPath this parser reads."""


@dataclass(frozen=True, slots=True)
class Node:
    #: 'member' (name, [base]), 'call' (name, [base, *args]), 'index' ([base, index]),
    #: 'op' (operator, [left, right]), 'neg' ([x]), 'str', 'num', 'bool', 'date', 'const', 'this'
    kind: str
    value: str | float | bool | None = None
    args: tuple[Node | None, ...] = ()


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^'\\]|\\.)*')
    | (?P<date>@[0-9T:.+\-Z]+)
    | (?P<num>\d+(?:\.\d+)?)
    | (?P<const>%(?:`[^`]*`|[A-Za-z_][A-Za-z0-9_]*))
    | (?P<this>\$this|\$index|\$total)
    | (?P<name>`[^`]*`|[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op><=|>=|!=|!~|[=~<>|+\-*/&.,()\[\]])
    )""",
    re.VERBOSE,
)

_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise PathSyntaxError(f"cannot read {text[pos:]!r} (at character {pos + 1})")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _unquote(s: str) -> str:
    body = s[1:-1]
    return re.sub(
        r"\\(u[0-9a-fA-F]{4}|.)",
        lambda m: (
            chr(int(m.group(1)[1:], 16)) if m.group(1).startswith("u") and len(m.group(1)) == 5 else _ESCAPES.get(m.group(1), m.group(1))
        ),
        body,
    )


_BINARY: list[tuple[str, ...]] = [
    ("implies",), ("or", "xor"), ("and",), ("=", "!=", "~", "!~"), ("<", "<=", ">", ">="), ("|",),
    ("+", "-", "&"), ("*", "/", "div", "mod"),
]  # fmt: skip


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            found = "the end" if tok is None else repr(tok[1])
            raise PathSyntaxError(f"expected {value or 'more'} but found {found}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.binary(0)
        if self.peek() is not None:
            raise PathSyntaxError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def binary(self, level: int) -> Node:
        if level == len(_BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while (tok := self.peek()) is not None and tok[1] in _BINARY[level] and tok[0] in ("op", "name"):
            self.take()
            right = self.binary(level + 1)
            left = Node("op", tok[1], (left, right))
        return left

    def unary(self) -> Node:
        tok = self.peek()
        if tok is not None and tok == ("op", "-"):
            self.take()
            return Node("neg", None, (self.unary(),))
        if tok is not None and tok == ("op", "+"):
            self.take()
            return self.unary()
        return self.postfix(self.term())

    def term(self) -> Node:
        kind, text = self.take()
        if kind == "str":
            return Node("str", _unquote(text))
        if kind == "num":
            return Node("num", float(text) if "." in text else int(text))
        if kind == "date":
            return Node("date", text[1:])
        if kind == "const":
            name = text[1:]
            return Node("const", name[1:-1] if name.startswith("`") else name)
        if kind == "this":
            if text != "$this":
                raise PathSyntaxError(f"{text} is not supported in views")
            return Node("this")
        if kind == "name":
            if text in ("true", "false"):
                return Node("bool", text == "true")
            name = text[1:-1] if text.startswith("`") else text
            if self.peek() == ("op", "("):
                return self.call(name, None)
            return Node("member", name, (None,))
        if text == "(":
            inner = self.binary(0)
            self.take(")")
            return inner
        raise PathSyntaxError(f"unexpected {text!r}")

    def call(self, name: str, base: Node | None) -> Node:
        self.take("(")
        args: list[Node] = []
        if self.peek() != ("op", ")"):
            args.append(self.binary(0))
            while self.peek() == ("op", ","):
                self.take()
                args.append(self.binary(0))
        self.take(")")
        return Node("call", name, (base, *args))

    def postfix(self, node: Node) -> Node:
        while (tok := self.peek()) is not None:
            if tok == ("op", "."):
                self.take()
                kind, text = self.take()
                if kind != "name":
                    raise PathSyntaxError(f"expected a name after '.', found {text!r}")
                name = text[1:-1] if text.startswith("`") else text
                node = self.call(name, node) if self.peek() == ("op", "(") else Node("member", name, (node,))
            elif tok == ("op", "["):
                self.take()
                index = self.binary(0)
                self.take("]")
                node = Node("index", None, (node, index))
            else:
                break
        return node


def parse(text: str) -> Node:
    """The tree of a FHIRPath expression; :class:`PathSyntaxError` when it cannot be read."""
    if not isinstance(text, str) or not text.strip():
        raise PathSyntaxError("the expression is empty")
    return _Parser(text).parse()

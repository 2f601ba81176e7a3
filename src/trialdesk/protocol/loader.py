"""Reading protocol files: YAML in, a validated Protocol out, or one clear error per
problem that names the file, the line and the field, and says what to do.

ruamel.yaml keeps the line of every key and list item, so a pydantic error location
(``eligibility.criteria[5].id``) can be traced back to the line a person must edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from trialdesk.criteria.language import value_sets_used
from trialdesk.protocol.model import Protocol
from trialdesk.terminology import units
from trialdesk.terminology.products import with_products
from trialdesk.terminology.value_set import ValueSet, library_dir


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ProtocolError(Exception):
    """One or more problems in a protocol file; ``str()`` gives one line per problem."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


_SUBPATH = re.compile(r"^((?:[a-z_]+)(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): (.*)$", re.S)
_PART = re.compile(r"([a-z_]+)(?:\[(\d+)\])?")


def _read_yaml(path: Path) -> Any:
    yaml = YAML(typ="rt")
    try:
        return yaml.load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ProtocolError([Problem(path.name, line, "", f"not valid YAML ({exc.problem}); fix the syntax at this line")]) from None
    except UnicodeDecodeError:
        raise ProtocolError([Problem(path.name, None, "", "not a UTF-8 text file; save it as UTF-8")]) from None


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _line_of(tree: Any, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest node of ``loc`` found in the YAML tree."""
    node, line = tree, None
    for part in loc:
        if isinstance(node, CommentedMap):
            if part not in node:
                continue  # a union tag such as 'condition' in pydantic's location
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
    return line


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _split_subpath(loc: tuple[Any, ...], msg: str) -> tuple[tuple[Any, ...], str]:
    """Validators that know a finer place say so as 'criteria[5].id: message'."""
    m = _SUBPATH.match(msg)
    if not m:
        return loc, msg
    extra: list[Any] = []
    for name, index in _PART.findall(m.group(1)):
        extra.append(name)
        if index:
            extra.append(int(index))
    return loc + tuple(extra), m.group(2)


def _problems(path: Path, tree: Any, exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field; check its spelling or remove it"
        elif err["type"] == "missing":
            msg = "required field is missing; add it"
        elif err["type"] == "literal_error":
            msg = f"{msg}; got {err.get('input')!r}"
        loc, msg = _split_subpath(loc, msg)
        # drop union tags from the printed path: they are not keys in the file
        shown = tuple(p for i, p in enumerate(loc) if not _is_tag(tree, loc[:i], p))
        out.append(Problem(path.name, _line_of(tree, loc), _field(shown), msg))
    return out


def _is_tag(tree: Any, prefix: tuple[Any, ...], part: Any) -> bool:
    node = tree
    for p in prefix:
        if (isinstance(node, dict) and p in node) or (isinstance(node, list) and isinstance(p, int) and 0 <= p < len(node)):
            node = node[p]
    return isinstance(part, str) and isinstance(node, dict) and part not in node and node.get("kind") == part


def load_value_sets(directory: Path | None = None) -> dict[str, ValueSet]:
    """Every value set in ``directory`` (the built-in library by default), by id.

    Parsed once per state of the folder: the files' names, sizes and modification times
    are the key, so an edited file is read again. (Parsing the YAML took about a quarter of
    a second, paid on every screen of one patient's chart.)"""
    directory = directory or library_dir()
    files = sorted(directory.glob("*.yaml"))
    key = (str(directory.resolve()), tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    if key not in _VALUE_SETS:
        if len(_VALUE_SETS) >= 8:
            _VALUE_SETS.pop(next(iter(_VALUE_SETS)))
        _VALUE_SETS[key] = _parse_value_sets(files)
    return dict(_VALUE_SETS[key])


_VALUE_SETS: dict[tuple[object, ...], dict[str, ValueSet]] = {}


def _parse_value_sets(files: list[Path]) -> dict[str, ValueSet]:
    out: dict[str, ValueSet] = {}
    for file in files:
        tree = _read_yaml(file)
        if not isinstance(tree, list):
            raise ProtocolError([Problem(file.name, 1, "", "a value set file must be a list of value sets")])
        problems: list[Problem] = []
        for i, item in enumerate(tree):
            try:
                vs = ValueSet.model_validate(_plain(item))
            except ValidationError as exc:
                problems.extend(
                    Problem(p.file, p.line, f"[{i}].{p.field}" if p.field else f"[{i}]", p.message)
                    for p in _problems(file, tree, _prefixed(exc, i))
                )
                continue
            if vs.id in out:
                problems.append(Problem(file.name, _line_of(tree, (i,)), f"[{i}].id", f"duplicate value set id {vs.id!r}"))
            # an RxNorm ingredient stands for its clinical drugs, branded drugs and brand names too
            out[vs.id] = with_products(vs)
        if problems:
            raise ProtocolError(problems)
    return out


def _prefixed(exc: ValidationError, index: int) -> ValidationError:
    errors = [dict(e, loc=(index, *e["loc"])) for e in exc.errors(include_url=False)]
    return ValidationError.from_exception_data(exc.title, errors)  # type: ignore[arg-type]


def builtin_protocol_dir() -> Path:
    return Path(str(resources.files("trialdesk") / "protocols"))


def resolve(ref: str | Path) -> Path:
    """A protocol id (``nct03929120``) or a path to a protocol file."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ProtocolError([Problem(str(path), None, "", "no such file; check the path")])
        return path
    candidate = builtin_protocol_dir() / f"{str(ref).lower()}.yaml"
    if candidate.exists():
        return candidate
    known = ", ".join(sorted(p.stem for p in builtin_protocol_dir().glob("*.yaml")))
    raise ProtocolError([Problem(str(ref), None, "", f"unknown protocol id; known ids: {known}, or give a path to a .yaml file")])


def load(ref: str | Path, value_sets: dict[str, ValueSet] | None = None) -> Protocol:
    """Load and validate a protocol file, including that every value set it names exists."""
    path = resolve(ref)
    tree = _read_yaml(path)
    if not isinstance(tree, dict):
        raise ProtocolError([Problem(path.name, 1, "", "a protocol file must be a YAML mapping (key: value) at the top")])
    try:
        protocol = Protocol.model_validate(_plain(tree))
    except ValidationError as exc:
        raise ProtocolError(_problems(path, tree, exc)) from None
    library = value_sets if value_sets is not None else load_value_sets()
    missing = []
    for i, c in enumerate(protocol.eligibility.criteria):
        if c.computable is None:
            continue
        for vs in sorted(value_sets_used(c.computable) - set(library)):
            loc = ("eligibility", "criteria", i, "computable")
            missing.append(
                Problem(path.name, _line_of(tree, loc), _field(loc),
                        f"value set {vs!r} is not defined; add it to {library_dir().name}/ or fix the name")
            )
    if missing:
        raise ProtocolError(missing)
    problems = _unit_problems(path, tree)
    if problems:
        raise ProtocolError(problems)
    return protocol


def _unit_problems(path: Path, tree: Any) -> list[Problem]:
    """Every numeric comparison of the eligibility criteria names a unit UCUM knows; one that
    it does not would leave the criterion unknown for every person (no value converts to it)."""
    out: list[Problem] = []

    def visit(node: Any, loc: tuple[Any, ...]) -> None:
        if isinstance(node, dict):
            compare = node.get("compare")
            if isinstance(compare, dict) and isinstance(compare.get("unit"), str):
                unit = compare["unit"]
                if not units.is_ucum(unit):
                    spelled = units.normalise(unit)
                    fix = (f"write it as UCUM spells it: {spelled!r}" if spelled else
                           "use a UCUM unit code (e.g. '%', 'mg/dL', '[IU]/L', '10*3/uL', 'umol/L')")
                    where = (*loc, "compare", "unit")
                    out.append(Problem(path.name, _line_of(tree, where), _field(where),
                                       f"{unit!r} is not a unit UCUM knows, so no measurement could be compared with it; {fix}"))
            for key, value in node.items():
                visit(value, (*loc, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                visit(value, (*loc, i))

    eligibility = tree.get("eligibility") if isinstance(tree, dict) else None
    if isinstance(eligibility, dict):
        visit(eligibility.get("criteria"), ("eligibility", "criteria"))
    return out

"""Reading protocol files: YAML in, a validated Protocol out, or one clear error per
problem that names the file, the line and the field, and says what to do.

ruamel.yaml keeps the line of every key and list item, so a pydantic error location
(``eligibility.criteria[5].id``) can be traced back to the line a person must edit.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from trialdesk.criteria.language import value_sets_used
from trialdesk.protocol.forms import FormCatalogue, FormsError, load_forms
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


#: the file that makes a folder a protocol folder
PROTOCOL_FILE = "protocol.yaml"
#: the file beside the installed protocols that may declare the default one
INSTALLATION_FILE = "installation.yaml"
#: the environment variable that names the protocol when none is given (the desk reads it too)
PROTOCOL_ENV = "TRIALDESK_PROTOCOL"
#: the --protocol option's help, the same on every command
PROTOCOL_HELP = (f"protocol id, file (.yaml) or folder holding {PROTOCOL_FILE} (default: ${PROTOCOL_ENV}, or the only protocol"
                 " installed, or the installation's default, which the command names on stderr)")


@dataclass(frozen=True)
class ProtocolFiles:
    """Where one protocol's files are: its ``protocol.yaml`` (or single YAML file), and, for a
    protocol folder, its own ``value_sets/`` and ``forms.yaml`` when it has them."""

    protocol: Path
    value_sets: Path | None = None
    forms: Path | None = None

    @property
    def folder(self) -> Path | None:
        return self.protocol.parent if self.protocol.name == PROTOCOL_FILE else None


def _files_of(path: Path) -> ProtocolFiles:
    if path.is_dir():
        main = path / PROTOCOL_FILE
        if not main.is_file():
            raise ProtocolError([Problem(str(path), None, "", f"a protocol folder holds a {PROTOCOL_FILE}; this one has none")])
        path = main
    folder = path.parent if path.name == PROTOCOL_FILE else None
    if folder is None:
        return ProtocolFiles(path)
    vs, forms = folder / "value_sets", folder / "forms.yaml"
    return ProtocolFiles(path, vs if vs.is_dir() else None, forms if forms.is_file() else None)


def installed(directory: Path | None = None) -> dict[str, Path]:
    """The protocols installed with trialdesk, by id: ``<id>.yaml`` files and ``<id>/protocol.yaml``
    folders alike (a folder wins if both exist, as it is the newer layout)."""
    directory = directory or builtin_protocol_dir()
    out = {p.stem: p for p in sorted(directory.glob("*.yaml")) if p.name != INSTALLATION_FILE}
    out.update({p.parent.name: p.parent for p in sorted(directory.glob(f"*/{PROTOCOL_FILE}"))})
    return dict(sorted(out.items()))


def choose(ref: str | Path | None, directory: Path | None = None) -> str | Path:
    """The protocol a command works on: the one given, else ``$TRIALDESK_PROTOCOL``, else the only
    one installed, else the installation's declared default (``installation.yaml`` beside the installed
    protocols), said on stderr so a forgotten ``--protocol`` is never silent. With more than one installed,
    none named and no default declared, refuse and list them rather than guess."""
    if ref:
        return ref
    env = os.environ.get(PROTOCOL_ENV)
    if env:
        return env
    known = installed(directory)
    if len(known) == 1:
        return next(iter(known))
    default = installation_default(directory)
    if default is not None:
        others = ", ".join(k for k in known if k != default)
        print(f"note: no protocol named; using {default}, this installation's default (installed too: {others};"
              f" choose with --protocol ID|PATH or {PROTOCOL_ENV})", file=sys.stderr)
        return default
    names = ", ".join(known) or "none"
    raise ProtocolError([Problem("--protocol", None, "", f"{len(known)} protocols are installed ({names}); say which one with"
                                 f" --protocol ID|PATH or set {PROTOCOL_ENV}")])


def installation_default(directory: Path | None = None) -> str | None:
    """The default protocol ``installation.yaml`` declares beside the installed protocols, if any; a
    default that is not installed is an error naming the file, never a silent fallback."""
    directory = directory or builtin_protocol_dir()
    file = directory / INSTALLATION_FILE
    if not file.is_file():
        return None
    try:
        data = YAML(typ="safe", pure=True).load(file.read_text(encoding="utf-8")) or {}
    except MarkedYAMLError as exc:
        raise ProtocolError([Problem(str(file), None, "", f"not readable YAML: {exc}")]) from None
    default = data.get("default") if isinstance(data, dict) else None
    if default is None:
        return None
    known = installed(directory)
    if str(default).lower() not in known:
        raise ProtocolError([Problem(str(file), None, "default", f"names {default!r}, which is not installed"
                                     f" (installed: {', '.join(known) or 'none'}); name one of them or remove the line")])
    return str(default).lower()


def resolve(ref: str | Path) -> Path:
    """A protocol id (e.g. ``nct03929120``), a protocol file, or a protocol folder: the YAML file to read."""
    return locate(ref).protocol


def locate(ref: str | Path) -> ProtocolFiles:
    """A protocol id (e.g. ``nct03929120``), a path to a protocol file, or a folder holding ``protocol.yaml``."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ProtocolError([Problem(str(path), None, "", "no such file; check the path")])
        return _files_of(path)
    known = installed()
    hit = known.get(str(ref).lower())
    if hit is not None:
        return _files_of(hit)
    raise ProtocolError([Problem(str(ref), None, "", f"unknown protocol id; known ids: {', '.join(known)},"
                                 f" or give a path to a .yaml file or to a folder holding {PROTOCOL_FILE}")])


def _value_set_origins(directory: Path) -> dict[str, Path]:
    """Which file of ``directory`` defines each value set id."""
    out: dict[str, Path] = {}
    for file in sorted(directory.glob("*.yaml")):
        for vs_id in _parse_value_sets([file]):
            out[vs_id] = file
    return out


def libraries_named(files: ProtocolFiles) -> list[str]:
    """The shared value-set libraries the protocol file names (``value_set_libraries``), each checked to exist."""
    tree = _read_yaml(files.protocol)
    names = tree.get("value_set_libraries") if isinstance(tree, dict) else None
    if names is None:
        return []
    known = sorted(p.stem for p in library_dir().glob("*.yaml"))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ProtocolError([Problem(files.protocol.name, _line_of(tree, ("value_set_libraries",)), "value_set_libraries",
                                     f"give a list of library names; known: {', '.join(known)}")])
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ProtocolError([Problem(files.protocol.name, _line_of(tree, ("value_set_libraries",)), "value_set_libraries",
                                     f"no value-set library {n!r} in {library_dir().name}/; known: {', '.join(known)}")
                             for n in unknown])
    return list(names)


def library_value_sets(names: list[str]) -> dict[str, ValueSet]:
    """The value sets of the named shared library files (``<name>.yaml`` in the package's library)."""
    out: dict[str, ValueSet] = {}
    for name in names:
        file = library_dir() / f"{name}.yaml"
        stat = file.stat()
        key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _LIBRARY_FILES:  # parsed once per state of the file, as the folders are
            if len(_LIBRARY_FILES) >= 32:
                _LIBRARY_FILES.pop(next(iter(_LIBRARY_FILES)))
            _LIBRARY_FILES[key] = _parse_value_sets([file])
        out.update(_LIBRARY_FILES[key])
    return out


_LIBRARY_FILES: dict[tuple[str, int, int], dict[str, ValueSet]] = {}


def protocol_value_sets(ref: str | Path) -> dict[str, ValueSet]:
    """The value sets a protocol may use: those of the shared libraries it names (``value_set_libraries``), with
    the protocol folder's own ``value_sets/`` merged over them; no other. The same id in both is an error naming
    both files, since which codes a criterion means must never depend on the order files were read."""
    files = locate(ref)
    library = library_value_sets(libraries_named(files))
    if files.value_sets is None:
        return library
    own = load_value_sets(files.value_sets)
    clashes = sorted(set(own) & set(library))
    if clashes:
        mine, theirs = _value_set_origins(files.value_sets), _value_set_origins(library_dir())
        raise ProtocolError([
            Problem(str(mine[i]), None, "id", f"value set {i!r} is also defined in the library ({theirs[i]});"
                    " rename the protocol's copy (and the criteria that use it) or remove it")
            for i in clashes
        ])
    return library | own


def protocol_forms(ref: str | Path) -> FormCatalogue:
    """The case report forms of a protocol: its folder's ``forms.yaml``, else the forms shipped with trialdesk."""
    files = locate(ref)
    source = files.forms or Path(str(resources.files("trialdesk.protocol") / "forms.yaml"))
    stat = source.stat()
    key = (str(source.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _FORMS:  # parsed once per state of the file, as the value sets are (about 0.1 s a parse)
        return _FORMS[key]
    try:
        forms = load_forms(files.forms)
    except FormsError as exc:
        raise ProtocolError([Problem(str(files.forms or "trialdesk/protocol/forms.yaml"), None, "", str(exc))]) from None
    if len(_FORMS) >= 8:
        _FORMS.pop(next(iter(_FORMS)))
    _FORMS[key] = forms
    return forms


_FORMS: dict[tuple[str, int, int], FormCatalogue] = {}


def _check_forms(path: Path, tree: Any, protocol: Protocol, forms: FormCatalogue, forms_file: str) -> list[Problem]:
    known = set(forms.ids)
    problems = []
    for v_i, visit in enumerate(protocol.schedule.visits):
        for f_i, name in enumerate(visit.forms):
            if name not in known:
                loc = ("schedule", "visits", v_i, "forms", f_i)
                problems.append(Problem(path.name, _line_of(tree, loc), _field(loc),
                                        f"visit {visit.code} names form {name!r}, which {forms_file} does not define;"
                                        f" fix the name (known: {', '.join(sorted(known))}) or add the form there"))
    return problems


def load(ref: str | Path, value_sets: dict[str, ValueSet] | None = None) -> Protocol:
    """Load and validate a protocol (id, file or folder), including that every value set it names
    exists and every form a visit names is one of its case report forms."""
    files = locate(ref)
    path = files.protocol
    tree = _read_yaml(path)
    if not isinstance(tree, dict):
        raise ProtocolError([Problem(path.name, 1, "", "a protocol file must be a YAML mapping (key: value) at the top")])
    try:
        protocol = Protocol.model_validate(_plain(tree))
    except ValidationError as exc:
        raise ProtocolError(_problems(path, tree, exc)) from None
    library = value_sets if value_sets is not None else protocol_value_sets(path)
    named = ", ".join(protocol.value_set_libraries)
    where = ((f"the libraries it names ({named})" if named else "a library named in value_set_libraries")
             + (f", or {files.value_sets}/" if files.value_sets else ", or the protocol folder's value_sets/"))
    missing = []
    for i, c in enumerate(protocol.eligibility.criteria):
        if c.computable is None:
            continue
        for vs in sorted(value_sets_used(c.computable) - set(library)):
            loc = ("eligibility", "criteria", i, "computable")
            missing.append(
                Problem(path.name, _line_of(tree, loc), _field(loc),
                        f"value set {vs!r} is not defined; add it to {where} or fix the name")
            )
    forms_file = str(files.forms) if files.forms else "trialdesk/protocol/forms.yaml"
    missing.extend(_check_forms(path, tree, protocol, protocol_forms(path), forms_file))
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

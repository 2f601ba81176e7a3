"""ICD-10-CM from a real release: does a code exist, and which codes lie under it.

The code tables are those of the CMS/NCHS ICD-10-CM release shipped inside the PyPI
package ``simple-icd-10-cm`` (tabular list and code list of April 2026, offline). A value
set that lists ``I25.11`` with ``include_descendants`` stands for the codes the
classification puts under it (I25.110 ... I25.119), read from the tabular hierarchy, and
for no other string that happens to start the same way. A block (``C43-C44``) or a
chapter (``15``) may be listed too: it stands for every code in it.

Why a library rather than the tables parsed here: the package is the maintained reader of
the release's XML (blocks, categories, subcategories, 7th-character extensions with their
placeholder ``X``), and its version pins the release. It reads both tables when first
imported (about 2 s of CPU, and 1 s more for trialdesk's index of it), so the expansions of
the built-in library's codes are shipped, computed from the package, in
``data/icd10cm_index.json`` (a test checks the file against the package; regenerate it with
``python -m trialdesk.terminology.icd10cm``): a screen reads that file and imports the package
only for a code the file does not hold (a site's own value set).
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import warnings
from importlib import resources
from pathlib import Path
from types import ModuleType

#: the release whose tables the package ships (its data file names say so)
RELEASE = "ICD-10-CM April 1, 2026 (CMS/NCHS tabular list and code list), read with simple-icd-10-cm 1.5"

_LOCK = threading.Lock()


@functools.cache
def _lib() -> ModuleType:
    with _LOCK, warnings.catch_warnings():
        # the package reads its data with importlib.resources.read_text (deprecated, still correct)
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm

        module: ModuleType = simple_icd_10_cm
        return module


def normalise(code: str) -> str:
    """The form source values are compared in: no dot, upper case, no surrounding space."""
    return code.strip().replace(".", "").upper()


def exists(code: str) -> bool:
    """Whether ``code`` (with or without its dot) is a code, block or chapter of the release."""
    return normalise(code) in _tree()[3]


def description(code: str) -> str:
    return str(_lib().get_description(_item(code)))


def is_billable(code: str) -> bool:
    """A code with nothing under it: the only kind a claim or a problem list may carry."""
    try:
        return _item(code) in _tree()[2]
    except KeyError:
        return False


@functools.cache
def _tree() -> tuple[dict[str, tuple[str, ...]], frozenset[str], frozenset[str], dict[str, str]]:
    """(children of each item, the items that are codes, the billable codes, item by its
    normalised form), built once from the release's parent links: the package's own
    descendant walk and dot handling search a list on every call (seconds per chapter)."""
    lib = _lib()
    items = lib.get_all_codes(True)
    children: dict[str, list[str]] = {}
    for item in dict.fromkeys(items):
        parent = lib.get_parent(item, prioritize_blocks=True)
        if parent and parent != item:  # a block and its only category share a name (C50, D49): no self-loop
            children.setdefault(parent, []).append(item)
    codes = frozenset(i for i in items if lib.is_category_or_subcategory(i))
    leaves = frozenset(i for i in codes if i not in children)
    by_form = {normalise(i): i for i in items}
    return {k: tuple(v) for k, v in children.items()}, codes, leaves, by_form


def _item(code: str) -> str:
    item = _tree()[3].get(normalise(code))
    if item is None:
        raise KeyError(f"{code!r} is not an ICD-10-CM code, block or chapter of the {RELEASE} release")
    return item


def index_file() -> Path:
    return Path(str(resources.files("trialdesk.terminology") / "data" / "icd10cm_index.json"))


@functools.cache
def _shipped() -> dict[str, frozenset[str]]:
    """The shipped expansions (with descendants) of the built-in library's codes, by normalised code."""
    path = index_file()
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("release") != RELEASE:
        return {}  # made from another release: recompute from the package
    return {k: frozenset(v) for k, v in data["codes"].items()}


@functools.cache
def expand(code: str, include_descendants: bool = True) -> frozenset[str]:
    """The normalised codes ``code`` stands for: itself (when it is a code rather than a
    block or chapter) and, with ``include_descendants``, every code under it.

    Raises ``KeyError`` for a string that is not in the release."""
    if include_descendants and (shipped := _shipped().get(normalise(code))) is not None:
        return shipped
    return expand_from_release(code, include_descendants)


@functools.cache
def expand_from_release(code: str, include_descendants: bool = True) -> frozenset[str]:
    """``expand`` computed from the release's tables (the package), never from the shipped file."""
    children, codes, _, _ = _tree()
    root = _item(code)
    out: set[str] = set()
    stack, seen = [root], {root}
    while stack:
        item = stack.pop()
        if item in codes:
            out.add(normalise(item))
        if include_descendants:
            new = [c for c in children.get(item, ()) if c not in seen]
            seen.update(new)
            stack.extend(new)
    return frozenset(out)


@functools.cache
def billable_under(code: str) -> frozenset[str]:
    """The billable (leaf) codes under ``code`` (itself included when it is one), normalised."""
    children, _, leaves, _ = _tree()
    root = _item(code)
    out: set[str] = set()
    stack, seen = [root], {root}
    while stack:
        item = stack.pop()
        if item in leaves:
            out.add(normalise(item))
        new = [c for c in children.get(item, ()) if c not in seen]
        seen.update(new)
        stack.extend(new)
    return frozenset(out)


def build_index(codes: list[str]) -> str:
    """The JSON of ``data/icd10cm_index.json`` for ``codes`` (the built-in library's)."""
    out = {normalise(c): sorted(expand_from_release(c)) for c in sorted(set(codes), key=normalise)}
    return json.dumps({"release": RELEASE, "codes": out}, indent=0, sort_keys=True) + "\n"


def library_codes() -> list[str]:
    """Every ICD-10-CM code, block or chapter listed (or excluded) with descendants in the built-in library."""
    from trialdesk.terminology.value_set_docs import library_as_written

    return [c.code for _, vs in library_as_written() for c in [*vs.codes, *vs.excluded]
            if c.system == "ICD10CM" and c.include_descendants]


if __name__ == "__main__":
    index_file().write_text(build_index(library_codes()), encoding="utf-8")
    sys.stdout.write(f"wrote {index_file()}\n")

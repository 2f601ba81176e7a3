"""RxNorm products of an ingredient: the clinical drugs, branded drugs, packs and brand names
that real charts and OMOP source values carry instead of the ingredient.

``data/rxnorm_products.csv`` holds one row per (ingredient RXCUI, product RXCUI) with the
product's RxNorm term type and name, and the public file (repository, commit, path) the row
was read from. A value set that lists an ingredient is widened, when the library is loaded,
with that ingredient's product codes (exact codes: a product has nothing under it) and with
the ingredient's and its brands' names, which the engine finds in a record's source text and
marks as a match by name only. Without a vocabulary in the database this is what lets E2
see "Truxima 10 MG/ML Injection" as rituximab.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from trialdesk.terminology.value_set import Code, ValueSet

#: term types written in the file (RxNorm's TTY)
TERM_TYPES = frozenset({"IN", "PIN", "MIN", "BN", "SCD", "SBD", "SCDC", "SBDC", "SCDF", "SBDF", "SCDG", "SBDG", "GPCK", "BPCK"})


@dataclass(frozen=True)
class Product:
    ingredient_rxcui: str
    ingredient: str
    rxcui: str
    tty: str
    name: str
    source: str


def products_file() -> Path:
    return Path(str(resources.files("trialdesk.terminology") / "data" / "rxnorm_products.csv"))


@functools.cache
def products() -> tuple[Product, ...]:
    """Every row of the products file; a malformed row is refused with its line number."""
    path = products_file()
    out = []
    with path.open(encoding="utf-8", newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            p = Product(**{k: (row.get(k) or "").strip() for k in Product.__dataclass_fields__})
            if not (p.ingredient_rxcui.isdigit() and p.rxcui.isdigit()) or p.tty not in TERM_TYPES or not p.name or not p.source:
                raise ValueError(f"{path.name}:{line}: each row needs numeric ingredient_rxcui and rxcui, a TTY of "
                                 f"{sorted(TERM_TYPES)}, a name and a source; fix the row")
            out.append(p)
    return tuple(out)


@functools.cache
def by_ingredient() -> dict[str, tuple[Product, ...]]:
    grouped: dict[str, list[Product]] = {}
    for p in products():
        grouped.setdefault(p.ingredient_rxcui, []).append(p)
    return {k: tuple(v) for k, v in grouped.items()}


def with_products(vs: ValueSet) -> ValueSet:
    """``vs`` with the product codes and names of each RxNorm ingredient it lists (unchanged
    when it lists none). Codes already in the set, or excluded from it, are not added."""
    table = by_ingredient()
    ingredients = [c.code for c in vs.codes if c.system == "RxNorm" and c.code in table]
    if not ingredients:
        return vs
    have = {(c.system, c.code) for c in vs.codes} | {(c.system, c.code) for c in vs.excluded}
    extra: list[Code] = []
    names = list(vs.names)
    seen_names = {n.casefold() for n in names}
    for ing in ingredients:
        for p in table[ing]:
            if ("RxNorm", p.rxcui) not in have:
                have.add(("RxNorm", p.rxcui))
                extra.append(Code(system="RxNorm", code=p.rxcui, display=f"{p.name} [{p.tty}]", include_descendants=False))
            if p.tty in ("IN", "BN") and p.name.casefold() not in seen_names:
                seen_names.add(p.name.casefold())
                names.append(p.name)
    return vs.model_copy(update={"codes": [*vs.codes, *extra], "names": names})

"""docs/value-sets.md, written from the value-set library so it cannot drift from it.

Every value set with its title, source, review, the clinical choices of its provenance note,
its codes (system, code, name, whether the codes under it count), its excluded codes, answer
texts and names; then the RxNorm products each ingredient is widened with, by term type.
A test compares the file with ``render()``; regenerate it with
``python -m trialdesk.terminology.value_set_docs > docs/value-sets.md``.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from ruamel.yaml import YAML

from trialdesk.terminology.products import by_ingredient
from trialdesk.terminology.value_set import Code, ValueSet, library_dir


def library_as_written(directory: Path | None = None) -> list[tuple[str, ValueSet]]:
    """(file name, value set) in file order, before products are folded in."""
    yaml = YAML(typ="safe")
    out = []
    for file in sorted((directory or library_dir()).glob("*.yaml")):
        for item in yaml.load(file.read_text(encoding="utf-8")) or []:
            out.append((file.name, ValueSet.model_validate(item)))
    return out


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ").strip()


def _codes_table(codes: list[Code]) -> list[str]:
    lines = ["| system | code | name | codes under it |", "|---|---|---|---|"]
    for c in codes:
        under = "yes" if c.include_descendants and c.system in ("OMOP", "SNOMED", "ICD10CM") else "no"
        lines.append(f"| {c.system} | `{c.code}` | {_cell(c.display)} | {under} |")
    return lines


def render(directory: Path | None = None) -> str:
    sets = library_as_written(directory)
    products = by_ingredient()
    lines = [
        "# Value sets",
        "",
        "The codes that stand for each clinical idea the eligibility criteria use, for a clinician to review.",
        "Written from `src/trialdesk/terminology/value_sets/*.yaml` by `trialdesk.terminology.value_set_docs`",
        "(a test fails when this file and the library differ; regenerate with",
        "`python -m trialdesk.terminology.value_set_docs > docs/value-sets.md`).",
        "",
        "How codes are read:",
        "",
        "- **ICD-10-CM** codes exist in the April 2026 release (a test refuses any other); 'codes under it' means every",
        "  code below it in the release's hierarchy, and a block (`C43-C44`) or chapter (`15`) means every code in it.",
        "  A source value matches only a code of the set, with or without its dot, in any case.",
        "- **OMOP** concept ids and **SNOMED**/**LOINC**/**RxNorm** codes resolved through the database's `concept`",
        "  table take the concepts under them through `concept_ancestor` when 'codes under it' is yes.",
        "- **Excluded** codes are taken out of the set with everything under them.",
        "- **Answer texts** are whole written answers (compared after trimming and case-folding); **names** are found",
        "  as words in a record's text, and a match by name only is marked so in the evidence.",
        "- An **RxNorm ingredient** also stands for its products (clinical and branded drugs, packs, brand names)",
        "  listed at the end, from `src/trialdesk/terminology/data/rxnorm_products.csv`.",
        "",
        "## Contents",
        "",
    ]
    lines += [f"- [`{vs.id}`](#{vs.id}) — {vs.title} ({file})" for file, vs in sets]
    for file, vs in sets:
        p = vs.provenance
        lines += ["", f"## {vs.id}", "", f"**{_cell(vs.title)}** — `{file}`", ""]
        lines.append(f"- Source: {_cell(p.source)}")
        lines.append(f"- Date: {p.date.isoformat()}; reviewed by: {_cell(p.reviewed_by) or 'not yet reviewed'}")
        if vs.units:
            lines.append(f"- Units expected: {', '.join(f'`{u}`' for u in vs.units)}")
        if p.note:
            lines.append(f"- Clinical reading and choices: {_cell(p.note)}")
        lines += ["", *_codes_table(vs.codes)]
        if vs.excluded:
            lines += ["", "Excluded (with what lies under them):", "", *_codes_table(vs.excluded)]
        if vs.texts:
            lines += ["", "Answer texts: " + ", ".join(f"`{t}`" for t in vs.texts)]
        if vs.names:
            lines += ["", "Names found in text: " + ", ".join(f"`{n}`" for n in vs.names)]
        ingredients = [c.code for c in vs.codes if c.system == "RxNorm" and c.code in products]
        if ingredients:
            n = sum(len(products[i]) for i in ingredients)
            lines += ["", f"Widened with {n} RxNorm products of its ingredients (see [RxNorm products](#rxnorm-products))."]
    lines += ["", "## RxNorm products", "",
              "From `src/trialdesk/terminology/data/rxnorm_products.csv` (each row names the public file and commit it",
              "was read from; see `src/trialdesk/terminology/data/README.md`). Topical, ophthalmic, inhaled and rectal",
              "products are left out: they are not systemic therapy.", "",
              "| ingredient | RXCUI | brand names (BN) | products by term type |", "|---|---|---|---|"]
    for ing, rows in sorted(products.items(), key=lambda kv: kv[1][0].ingredient):
        brands = ", ".join(sorted(f"{r.name} ({r.rxcui})" for r in rows if r.tty == "BN")) or "-"
        counts = ", ".join(f"{tty} {n}" for tty, n in sorted(Counter(r.tty for r in rows).items()))
        lines.append(f"| {rows[0].ingredient} | `{ing}` | {_cell(brands)} | {counts} |")
    sources = sorted({r.source.split(":", 1)[0] for rows in products.values() for r in rows})
    lines += ["", "Sources: " + "; ".join(f"`{s}`" for s in sources), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())

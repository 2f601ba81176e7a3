"""The layering docs/design.md declares: the clinical core never imports Django or the trial
desk, and no package imports one above it. A package's ``commands.py`` is its command-line
face, a layer above every package (like ``cli.py``), and is not held to its package's layer."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "trialdesk"

#: each package and the packages it may import (besides itself); lower layers first
LAYERS: dict[str, set[str]] = {
    "criteria": set(),
    "terminology": set(),
    "protocol": {"criteria", "terminology"},
    "sources": {"criteria", "terminology", "protocol"},
    "eligibility": {"criteria", "terminology", "protocol", "sources"},
    "trial": {"criteria", "terminology", "protocol"},
    "safety": {"criteria", "terminology", "protocol", "trial"},
    "analysis": {"criteria", "terminology", "protocol", "trial", "safety"},
    "public": {"criteria", "terminology", "protocol"},
}
CORE = set(LAYERS)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def _violations() -> list[str]:
    found = []
    for package, allowed in LAYERS.items():
        for path in sorted((SRC / package).rglob("*.py")):
            if path.name == "commands.py":
                continue
            for module in _imports(path):
                top = module.split(".")[0]
                if top in ("django", "ninja"):
                    found.append(f"{path.relative_to(SRC)} imports {module} (the clinical core has no Django)")
                parts = module.split(".")
                if parts[0] == "trialdesk" and len(parts) > 1:
                    target = parts[1]
                    if target == "edc":
                        found.append(f"{path.relative_to(SRC)} imports {module} (the trial desk sits above the core)")
                    elif target in CORE and target != package and target not in allowed:
                        found.append(f"{path.relative_to(SRC)} imports {module} ({package} may import {sorted(allowed)})")
    return found


def test_the_clinical_core_imports_neither_django_nor_a_package_above_it() -> None:
    assert _violations() == []


def test_the_layering_check_sees_a_violation(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    global SRC
    fake = tmp_path / "trialdesk"
    (fake / "criteria").mkdir(parents=True)
    (fake / "criteria" / "bad.py").write_text("from trialdesk.eligibility.screen import screen\nimport django\n")
    for p in LAYERS:
        (fake / p).mkdir(exist_ok=True)
    monkeypatch.setattr(__import__(__name__), "SRC", fake, raising=False)
    old, SRC = SRC, fake
    try:
        assert len(_violations()) == 2
    finally:
        SRC = old

"""The official SQL-on-FHIR v2 conformance tests, run through trialdesk's view runner.

The test files are a copy (tests/fixtures/sql-on-fhir-v2, MIT licence, source commit in its
README). Each test's resources are written as a Bulk NDJSON file and read by the same
DuckDB reader as a patient's export; the rows must equal ``expect`` (order aside), and a
test with ``expectError`` must be refused. The tests of features this runner leaves out
are listed in :data:`LEFT_OUT` with the reason (docs/design.md says the same)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from trialdesk.sources.fhir_views import ViewError, run_view

SUITE = Path(__file__).resolve().parents[1] / "fixtures" / "sql-on-fhir-v2"

#: (file, test title) → why this runner does not pass it
LEFT_OUT: dict[tuple[str, str], str] = {}
_REPEAT = "'repeat' (recursive descent) is not supported: the OMOP views do not need it"
_BOUNDARY = "lowBoundary()/highBoundary() (experimental) are not supported: the OMOP views do not need them"
for _f, _titles, _why in [
    ("repeat.json", None, _REPEAT),
    ("row_index.json", ["%rowIndex with repeat"], _REPEAT),
    ("fn_boundary.json", None, _BOUNDARY),
]:
    for _t in json.loads((SUITE / _f).read_text())["tests"]:
        if _titles is None or _t["title"] in _titles:
            LEFT_OUT[(_f, _t["title"])] = _why


def _cases() -> list[Any]:
    out = []
    for f in sorted(SUITE.glob("*.json")):
        suite = json.loads(f.read_text())
        for t in suite["tests"]:
            if (f.name, t["title"]) in LEFT_OUT:
                continue
            out.append(pytest.param(suite["resources"], t, id=f"{f.stem}: {t['title']}"))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (a == b and type(a) is type(b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def test_the_suite_is_the_official_copy() -> None:
    readme = (SUITE / "README.md").read_text()
    assert "49fc1adffa8490e7cd5c1e8917d8eb24cbea9dee" in readme
    assert "MIT" in (SUITE / "LICENSE.md").read_text() or "Permission is hereby granted" in (SUITE / "LICENSE.md").read_text()
    assert len(list(SUITE.glob("*.json"))) == 22


@pytest.mark.parametrize(("resources", "case"), _cases())
def test_conformance(resources: list[dict[str, Any]], case: dict[str, Any], tmp_path: Path) -> None:
    export = tmp_path / "export.ndjson"
    export.write_text("".join(json.dumps(r) + "\n" for r in resources))
    if case.get("expectError"):
        with pytest.raises(ViewError):
            run_view(case["view"], [export])
        return
    rows = run_view(case["view"], [export])
    if "expectCount" in case:
        assert len(rows) == case["expectCount"]
        return
    got = rows
    expected = case["expect"]
    assert len(got) == len(expected), (got, expected)
    remaining = list(got)
    for want in expected:
        match = next((g for g in remaining if _same(g, want)), None)
        assert match is not None, f"expected row {want} not among {remaining}"
        remaining.remove(match)

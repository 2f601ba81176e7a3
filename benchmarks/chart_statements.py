"""Where a warm chart check's time goes, statement by statement.

    PYTHONPATH=src:benchmarks python benchmarks/chart_statements.py [--protocol nct03929120] [--checks 5] [--top 30]
        [--size 2000 | --source PATH] [--plan]

Checks a chart (by default the 2,000-resource SSc-ILD chart of benchmarks/fhir_map.py) twice unmeasured, then
``--checks`` times as the trial desk's upload does (``check_fhir``), every DuckDB statement timed (wall and CPU of
the process; ``duckdb.connect`` is wrapped for the run). Prints the CPU and wall of a check, the statements' CPU by
phase (which module ran them: reading, views, mapping, screen, evidence, assembly), and the top statements.
``--plan``: also DuckDB's detailed profile of each statement of one more check, summed (binding, each optimiser,
the operators), which is what says how much of a statement is planning.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import duckdb

_connect = duckdb.connect
STATS: dict[str, list[Any]] = collections.defaultdict(lambda: [0, 0.0, 0.0, 0])
PHASES: dict[str, list[Any]] = collections.defaultdict(lambda: [0, 0.0])
STATE = {"on": False, "plan": None}
#: the phase of a statement: the first of these modules found on its stack
WHERE = (
    ("fhir_views/load.py", "reading"),
    ("evidence.py", "worksheets: evidence tables and union"),
    ("compiler.py", "screen"),
    ("value_sets.py", "screen"),
    ("fhir_views/omop.py", "mapping"),
    ("screen.py", "worksheets: assembly"),
    ("worksheet.py", "worksheets: the rest"),
)


class _Timed:
    """A DuckDB connection whose statements are timed."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        object.__setattr__(self, "_con", con)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def _run(self, method: str, sql: str, *args: Any) -> Any:
        plan = STATE["plan"]
        if plan is not None and not sql.lstrip().upper().startswith(("SET", "RESET", "PRAGMA")):
            self._con.execute("SET enable_profiling = 'json'")
            self._con.execute("SET profiling_mode = 'detailed'")
            self._con.execute(f"SET profiling_output = '{plan}/{len(os.listdir(plan))}.json'")
        wall, cpu = time.perf_counter(), time.process_time()
        result = getattr(self._con, method)(sql, *args)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if STATE["on"]:
            stack = [f.filename for f in traceback.extract_stack()]
            phase = next((p for mod, p in WHERE if any(mod in f for f in stack)), "other")
            if phase == "mapping" and sql.lstrip().startswith("CREATE OR REPLACE TEMP TABLE _v_"):
                phase = "views"
            PHASES[phase][0] += 1
            PHASES[phase][1] += cpu
            s = STATS[" ".join(sql.split())[:100]]
            s[0] += 1
            s[1] += wall
            s[2] += cpu
            s[3] = len(sql)
        return self if result is self._con else result

    def execute(self, sql: str, *args: Any) -> Any:
        return self._run("execute", sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        return self._run("executemany", sql, *args)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocol", default="nct03929120")
    ap.add_argument("--checks", type=int, default=5)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--source", type=Path)
    ap.add_argument("--plan", action="store_true")
    args = ap.parse_args()
    duckdb.connect = lambda *a, **k: _Timed(_connect(*a, **k))  # type: ignore[assignment]
    from trialdesk.eligibility.worksheet import check_fhir
    from trialdesk.protocol.loader import load, load_value_sets

    as_of = dt.date(2025, 3, 1)
    protocol, value_sets = load(args.protocol), load_value_sets()
    source = args.source
    if source is None:
        from fhir_map import big_bundle

        source = Path(tempfile.mkdtemp(prefix="chart-statements-")) / "chart.json"
        source.write_text(json.dumps(big_bundle(args.size)))
    for _ in range(2):
        check_fhir(source, protocol, as_of, value_sets=value_sets)
    STATE["on"] = True
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.checks):
        check_fhir(source, protocol, as_of, value_sets=value_sets)
    n = args.checks
    wall, cpu = (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n
    STATE["on"] = False
    print(
        f"{args.protocol}, {source}: a check {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU (mean of {n}); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"statements: {sum(s[0] for s in STATS.values()) / n:.0f} a check, {sum(s[2] for s in STATS.values()) / n * 1000:.0f} ms CPU")
    for phase, (k, c) in sorted(PHASES.items(), key=lambda kv: -kv[1][1]):
        print(f"  {phase}: {k / n:.0f} statements, {c / n * 1000:.0f} ms CPU")
    print("top statements (ms CPU, ms wall a check, times a check, bytes of SQL):")
    for text, (k, w, c, size) in sorted(STATS.items(), key=lambda kv: -kv[1][2])[: args.top]:
        print(f"{c / n * 1000:7.1f} {w / n * 1000:7.1f} x{k / n:.0f} {size:7} B  {text}")
    if args.plan:
        folder = tempfile.mkdtemp(prefix="chart-statements-plan-")
        STATE["plan"] = folder
        check_fhir(source, protocol, as_of, value_sets=value_sets)
        STATE["plan"] = None
        total: collections.Counter[str] = collections.Counter()
        for f in Path(folder).glob("*.json"):
            try:
                p = json.loads(f.read_text())
            except ValueError:
                continue
            for key, value in p.items():
                if isinstance(value, float) and (
                    key.startswith(("optimizer_", "planner", "physical", "all_opt")) or key in ("latency", "cpu_time")
                ):
                    total[key] += value * 1000
        print("DuckDB's detailed profile of one check, summed over its statements (ms; profiling adds its own cost):")
        print("  " + ", ".join(f"{k} {v:.0f}" for k, v in total.most_common(14)))


if __name__ == "__main__":
    main()

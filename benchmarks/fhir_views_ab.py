"""Each OMOP view's time under two compilers, on the same input in one process (A/B alternated).

    git show REV:src/trialdesk/sources/fhir_views/compiler.py > /tmp/compiler_a.py
    python benchmarks/fhir_views_ab.py /tmp/compiler_a.py [--size 2000] [--patients 1000] [--rounds 3]

A is the compiler file given, B the one imported from ``trialdesk``. Inputs: the one chart of
``--size`` resources (benchmarks/fhir_map.py) and a Bulk NDJSON export of ``--patients``
(benchmarks/patient_check.py), each read by ``load_fhir``. For each view (with its value checks, as
the mapping runs it): the median CPU seconds of this process (a view's statement runs on one
thread, so CPU time is its work even when the shared machine's load stretches the wall time) and
the wall time, and whether A's rows equal B's (both ways, and in the same order).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import duckdb
from fhir_map import big_bundle  # benchmarks/ is on sys.path when run as a script
from patient_check import write_export

from trialdesk.sources.fhir_views import compiler as compiler_b
from trialdesk.sources.fhir_views.load import load_fhir
from trialdesk.sources.fhir_views.omop import VIEWS

FOLDER = Path(compiler_b.__file__).resolve().parent / "omop"


def _module(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("compiler_a", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules["compiler_a"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def compare(con: duckdb.DuckDBPyConnection, a: ModuleType, rounds: int) -> None:
    total = {"A": [0.0, 0.0], "B": [0.0, 0.0]}
    for name, file in VIEWS.items():
        view = json.loads((FOLDER / file).read_text())
        sql = {t: m.compile_view(view, validate=True).sql('"fhir_resources"', keep_ord=True) for t, m in (("A", a), ("B", compiler_b))}
        cpu: dict[str, list[float]] = {"A": [], "B": []}
        wall: dict[str, list[float]] = {"A": [], "B": []}
        for r in range(rounds):
            for t in ("A", "B") if r % 2 == 0 else ("B", "A"):
                c, w = time.process_time(), time.perf_counter()
                con.execute(f"CREATE OR REPLACE TEMP TABLE _{t} AS {sql[t]}")
                cpu[t].append(time.process_time() - c)
                wall[t].append(time.perf_counter() - w)
        differ = con.execute("SELECT count(*) FROM ((SELECT * FROM _A EXCEPT ALL SELECT * FROM _B) "
                             "UNION ALL (SELECT * FROM _B EXCEPT ALL SELECT * FROM _A))").fetchone()[0]  # type: ignore[index]  # fmt: skip
        order = con.execute("SELECT count(*) FROM (SELECT ord, row_number() OVER () AS i FROM _A) a JOIN "
                            "(SELECT ord, row_number() OVER () AS i FROM _B) b USING (i) WHERE a.ord <> b.ord").fetchone()[0]  # type: ignore[index]  # fmt: skip
        rows = con.execute("SELECT count(*) FROM _A").fetchone()[0]  # type: ignore[index]
        line = []
        for t in ("A", "B"):
            c, w = statistics.median(cpu[t]), statistics.median(wall[t])
            total[t][0] += c
            total[t][1] += w
            line.append(f"{t} {c * 1000:6.0f} ms CPU {w * 1000:6.0f} ms wall")
        same = "same rows" if differ == 0 and order == 0 else f"{differ} rows differ, {order} out of order"
        ratio = statistics.median(cpu["B"]) / statistics.median(cpu["A"])
        print(f"  {name:18s} {rows:6d} rows  {' | '.join(line)}  B/A CPU {ratio:.2f}  {same}")
    a_cpu, b_cpu = total["A"][0], total["B"][0]
    print(f"  {'every view':18s}              A {a_cpu * 1000:6.0f} ms CPU {total['A'][1] * 1000:6.0f} ms wall | "
          f"B {b_cpu * 1000:6.0f} ms CPU {total['B'][1] * 1000:6.0f} ms wall  B/A CPU {b_cpu / a_cpu:.2f}; "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("compiler_a", help="the compiler.py to compare with (A)")
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    a = _module(args.compiler_a)
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / "big.json"
        chart.write_text(json.dumps(big_bundle(args.size)))
        export = Path(tmp) / "export"
        export.mkdir()
        write_export(export, args.patients)
        for label, path in ((f"one chart of {args.size} resources", chart), (f"an export of {args.patients} patients", export)):
            con = duckdb.connect()
            load_fhir(con, [path])
            n = con.execute("SELECT count(*) FROM fhir_resources").fetchone()[0]  # type: ignore[index]
            print(f"{label} ({n} resources), load average {os.getloadavg()[0]:.1f}")
            compare(con, a, args.rounds)
            con.close()


if __name__ == "__main__":
    main()

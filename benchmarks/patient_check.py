"""How fast ``trialdesk patient check`` turns FHIR R4 charts into eligibility worksheets.

    python benchmarks/patient_check.py [--runs 10] [--size 2000] [--patients 2000] [--workers 2]

1. latency: one warm check of a 2,000-resource bundle (the SSc-ILD referral padded with
   observations, as in benchmarks/fhir_map.py), the steps of ``check_fhir`` timed apart:
   read + validate (``read_fhir``), map (OMOP tables in a fresh in-memory DuckDB, observed
   time to the as-of date), screen (the 15 criteria and the worksheets with their evidence);
   p50 and p95 of the warm runs. Goal: p50 <= 250 ms.
2. throughput: a folder of N one-patient bundles (the test charts in turn, ids renamed so
   that each is another patient) checked in one batch, as ``trialdesk patient check <folder>``
   does: patients per second. Goal: >= 200 patients/s for 10,000 on this 2-core machine.

Both are measured serially (one process, what a caller inside the trial desk gets) and with
validation in ``--workers`` processes (what ``trialdesk patient check`` does), in one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import ibis
from fhir_map import FIXTURES, big_bundle  # benchmarks/ is on sys.path when run as a script

from trialdesk.eligibility.screen import screen
from trialdesk.eligibility.worksheet import Worksheet, _observe_until, worksheets
from trialdesk.protocol.loader import load
from trialdesk.protocol.model import Protocol
from trialdesk.sources.fhir import map_to_omop, read_fhir
from trialdesk.sources.omop import open_omop

AS_OF = dt.date(2025, 3, 1)
STEPS = ("read+validate", "map", "screen", "total")


def timed_check(path: Path, protocol: Protocol, workers: int = 1) -> tuple[dict[str, float], list[Worksheet]]:
    """``check_fhir`` step by step (the same calls in the same order), with the time of each."""
    t0 = time.perf_counter()
    reading = read_fhir(path, workers=workers)
    t1 = time.perf_counter()
    con = duckdb.connect()
    report = map_to_omop(reading, con)
    _observe_until(con, AS_OF)
    t2 = time.perf_counter()
    result = screen(open_omop(ibis.duckdb.from_connection(con)), protocol, AS_OF, check_bounds=False)
    sheets = worksheets(result, report, con)
    t3 = time.perf_counter()
    con.close()
    return {"read+validate": t1 - t0, "map": t2 - t1, "screen": t3 - t2, "total": t3 - t0}, sheets


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20, method="inclusive")[-1] if len(xs) > 1 else xs[0]


def write_batch(folder: Path, patients: int) -> int:
    """N bundles, the test charts in turn, each chart's id prefix renamed per patient."""
    charts = []
    for f in sorted(FIXTURES.glob("*.json")):
        text = f.read_text()
        doc = json.loads(text)
        (pid,) = [e["resource"]["id"] for e in doc["entry"] if e["resource"]["resourceType"] == "Patient"]
        charts.append((text, pid.removesuffix("patient"), len(doc["entry"])))
    resources = 0
    for i in range(patients):
        text, prefix, n = charts[i % len(charts)]
        (folder / f"referral_{i:05d}.json").write_text(text.replace(prefix, f"p{i:05d}-"))
        resources += n
    return resources


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--size", type=int, default=2000, help="resources in the one-patient bundle")
    ap.add_argument("--patients", type=int, default=2000, help="patients in the batch (the goal is stated for 10000)")
    ap.add_argument("--workers", type=int, default=2, help="validating processes in the parallel runs")
    args = ap.parse_args()
    protocol = load("nct03929120")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.json"
        doc = big_bundle(args.size)
        path.write_text(json.dumps(doc))
        timed_check(path, protocol)  # warm: imports, UCUM tables, fhir.resources classes, DuckDB and ibis compilation paths
        for workers in (1, args.workers):
            runs = [timed_check(path, protocol, workers)[0] for _ in range(args.runs)]
            print(f"one bundle of {len(doc['entry'])} resources, {args.runs} warm checks, {workers} validating "
                  f"process{'es' if workers > 1 else ''} (p50 / p95 / max, ms):")
            for step in STEPS:
                xs = [r[step] for r in runs]
                print(f"  {step:<14} {statistics.median(xs) * 1000:6.0f} {p95(xs) * 1000:6.0f} {max(xs) * 1000:6.0f}")

        folder = Path(tmp) / "batch"
        folder.mkdir()
        resources = write_batch(folder, args.patients)
        for workers in (1, args.workers):
            times, sheets = timed_check(folder, protocol, workers)
            n = len(sheets)
            assert n == args.patients, f"{n} worksheets for {args.patients} patients"
            overall: dict[str, int] = {}
            for s in sheets:
                overall[s.overall] = overall.get(s.overall, 0) + 1
            print(f"batch of {n} patients ({resources} resources) in one check, {workers} validating process(es): "
                  f"{times['total']:.1f} s, {n / times['total']:.0f} patients/s")  # fmt: skip
            print("  " + ", ".join(f"{step} {times[step]:.1f} s" for step in STEPS[:-1]) + f"; overall {dict(sorted(overall.items()))}")


if __name__ == "__main__":
    main()

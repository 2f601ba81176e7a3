"""How fast ``trialdesk patient check`` turns FHIR R4 charts into eligibility worksheets.

    python benchmarks/patient_check.py [--runs 10] [--size 2000] [--patients 2000] [--workers 2] [--no-cli]

1. latency: one warm check of a 2,000-resource bundle (the SSc-ILD referral padded with
   observations, as in benchmarks/fhir_map.py), the steps of ``check_fhir`` timed apart:
   read + validate (``read_fhir``), map (OMOP tables in a fresh in-memory DuckDB, observed
   time to the as-of date), screen (the 15 criteria and the worksheets with their evidence);
   p50 and p95 of the warm runs. Goal: p50 <= 250 ms.
2. throughput: a folder of N one-patient bundles (the test charts in turn, ids renamed so
   that each is another patient) checked in one batch: patients per second, wall and CPU
   seconds (this process and its children). Goal: >= 200 patients/s for 10,000 on this
   2-core machine. In one run, alternated: serially (one process, steps timed apart), with
   only validation in ``--workers`` processes (``read_fhir(workers=N)``, the earlier way),
   and in parts (``check_fhir(workers=N)``: each process reads, validates, maps and screens
   its part); the worksheets of the three are checked to be the same. Then, unless
   ``--no-cli``, the command itself in a fresh interpreter (``trialdesk patient check
   <folder> --format json --out ...``), start-up, imports and writing the JSON included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import ibis
from fhir_map import FIXTURES, big_bundle  # benchmarks/ is on sys.path when run as a script

from trialdesk.eligibility.screen import screen
from trialdesk.eligibility.worksheet import Worksheet, _observe_until, check_fhir, worksheets
from trialdesk.protocol.loader import load, load_value_sets
from trialdesk.protocol.model import Protocol
from trialdesk.sources.fhir import Validation, _validate_chunk, _validation_errors, map_to_omop, read_fhir, read_many
from trialdesk.sources.omop import open_omop

AS_OF = dt.date(2025, 3, 1)
STEPS = ("read+validate", "map", "screen", "total")


def timed_check(
    path: Path, protocol: Protocol, workers: int = 1, validate: Validation = "read"
) -> tuple[dict[str, float], list[Worksheet]]:
    """``check_fhir`` step by step (the same calls in the same order), with the time of each."""
    t0 = time.perf_counter()
    reading = read_fhir(path, workers=workers, validate=validate)
    t1 = time.perf_counter()
    con = duckdb.connect()
    report = map_to_omop(reading, con)
    _observe_until(con, AS_OF)
    t2 = time.perf_counter()
    result = screen(open_omop(ibis.duckdb.from_connection(con)), protocol, AS_OF, value_sets=load_value_sets(),
                    check_bounds=False)
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


def ehr_like(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as EHR exports usually carry it: meta, a narrative, an identifier, and on
    an Observation its performer, encounter, interpretation and a note (none read by trialdesk)."""
    rid = resource.get("id", "x")
    out = dict(resource)
    out["meta"] = {"versionId": "3", "lastUpdated": "2025-02-27T10:15:00Z", "source": "#epic-prod"}
    out["text"] = {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{rid}</div>'}
    out["identifier"] = [{"use": "official", "system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.768282", "value": rid}]
    if resource["resourceType"] == "Observation":
        out["performer"] = [{"reference": "Practitioner/p-1", "display": "Lab"}]
        out["encounter"] = {"reference": "Encounter/e-1"}
        out["interpretation"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                              "code": "N", "display": "Normal"}]}]
        out["note"] = [{"text": "specimen received 09:30"}]
    return out


def validation_ab(folder: Path, patients: int) -> None:
    """fhir.resources validation alone, alternated twice: every element (``--validate full``),
    the elements read, each resource on its own (the projection), and the elements read with
    complex values already validated in the reading skipped (``--validate read``); on the first
    patients' resources as they are and as an EHR would export them (:func:`ehr_like`)."""
    files = sorted(folder.glob("*.json"))[:patients]
    items = [(r.resource_type, r.data) for r in read_many(files).records]
    padded = [(t, ehr_like(d)) for t, d in items]
    ways: dict[str, Callable[[list[tuple[str, dict[str, Any]]]], list[Any]]] = {
        "full": lambda b: _validate_chunk(b, "full"),
        "projection": lambda b: [_validation_errors(t, d, "read") for t, d in b],
        "read": lambda b: _validate_chunk(b, "read"),
    }
    for name, batch in (("as in the test charts", items), ("as an EHR exports them", padded)):
        took: dict[str, list[float]] = {w: [] for w in ways}
        for _ in range(2):
            for way, run in ways.items():
                c = time.process_time()
                errors = run(batch)
                took[way].append(time.process_time() - c)
                assert not any(errors), "the benchmark's resources are valid"
        us = {w: statistics.mean(t) / len(batch) * 1e6 for w, t in took.items()}
        print(f"validation alone, {len(batch)} resources {name} (CPU us a resource, alternated twice): "
              + ", ".join(f"{w} {us[w]:.0f}" for w in ways) + f"; full / read {us['full'] / us['read']:.2f}")


def cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--size", type=int, default=2000, help="resources in the one-patient bundle")
    ap.add_argument("--patients", type=int, default=2000, help="patients in the batch (the goal is stated for 10000)")
    ap.add_argument("--workers", type=int, default=2, help="processes in the parallel runs")
    ap.add_argument("--no-cli", action="store_true", help="skip the run of the command in a fresh interpreter")
    args = ap.parse_args()
    protocol = load("nct03929120")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.json"
        doc = big_bundle(args.size)
        path.write_text(json.dumps(doc))
        timed_check(path, protocol)  # warm: imports, UCUM tables, fhir.resources classes, DuckDB and ibis compilation paths
        modes: tuple[Validation, ...] = ("full", "read")
        runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        for _ in range(args.runs):  # alternated, so that both see the same machine
            for m in modes:
                runs[m].append(timed_check(path, protocol, 1, m)[0])
        for m in modes:
            print(f"one bundle of {len(doc['entry'])} resources, {args.runs} warm checks, one process, --validate {m} "
                  f"(p50 / p95 / max, ms):")
            for step in STEPS:
                xs = [r[step] for r in runs[m]]
                print(f"  {step:<14} {statistics.median(xs) * 1000:6.0f} {p95(xs) * 1000:6.0f} {max(xs) * 1000:6.0f}")

        folder = Path(tmp) / "batch"
        folder.mkdir()
        resources = write_batch(folder, args.patients)
        validation_ab(folder, min(args.patients, 300))
        print(f"batch of {args.patients} patients ({resources} resources) in one check:")
        results: dict[str, list[dict[str, object]]] = {}
        for how in ("serial", "validation pool", "parts"):
            c0, t0 = cpu(), time.perf_counter()
            if how == "parts":
                sheets = check_fhir(folder, protocol, AS_OF, workers=args.workers)
                steps = ""
            else:
                times, sheets = timed_check(folder, protocol, 1 if how == "serial" else args.workers)
                steps = " (" + ", ".join(f"{step} {times[step]:.1f} s" for step in STEPS[:-1]) + ")"
            wall, used = time.perf_counter() - t0, cpu() - c0
            n = len(sheets)
            assert n == args.patients, f"{n} worksheets for {args.patients} patients"
            results[how] = [s.to_json() for s in sheets]
            overall: dict[str, int] = {}
            for s in sheets:
                overall[s.overall] = overall.get(s.overall, 0) + 1
            procs = 1 if how == "serial" else args.workers
            print(f"  {how:<16} {procs} process{'es' if procs > 1 else '  '}: {wall:6.1f} s wall, {used:6.1f} s CPU, "
                  f"{n / wall:4.0f} patients/s{steps}; overall {dict(sorted(overall.items()))}")
        same = results["parts"] == results["serial"] == results["validation pool"]
        print(f"  the worksheets of the three runs are {'the same' if same else 'NOT the same'}")

        if not args.no_cli:
            out = Path(tmp) / "worksheets.json"
            command = [sys.executable, "-c", "from trialdesk.cli import main; main()", "patient", "check", str(folder),
                       "--as-of", AS_OF.isoformat(), "--format", "json", "--out", str(out), "--workers", str(args.workers)]
            c0, t0 = cpu(), time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            wall, used = time.perf_counter() - t0, cpu() - c0
            n = len(json.loads(out.read_text()))
            print(f"  trialdesk patient check --workers {args.workers} --format json (fresh interpreter): {wall:.1f} s wall, "
                  f"{used:.1f} s CPU, {n / wall:.0f} patients/s")


if __name__ == "__main__":
    main()

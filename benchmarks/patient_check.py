"""How fast ``trialdesk patient check`` turns FHIR R4 charts into worksheets, through the
SQL-on-FHIR views run by DuckDB.

    python benchmarks/patient_check.py [--runs 10] [--size 2000] [--patients 1000 10000] [--no-cli]

1. start-up: ``trialdesk --help`` and ``python -c "import trialdesk.cli"`` as fresh processes
   (goal: --help <= 0.5 s).
2. one chart of ``--size`` resources (the SSc-ILD referral padded with observations, as in
   benchmarks/fhir_map.py): the command as a fresh process (goal <= 2 s), first with nothing
   kept (an empty cache folder), then with the protocol and the screen's SQL the first run kept;
   and warm in this process as the trial desk's upload calls it (``check_fhir(path, protocol,
   as_of)``): p50 and p95 (goal p50 <= 150 ms), with its steps timed apart (read into DuckDB +
   structure checks, views + SQL mapping + value checks, screen + worksheets).
3. for each ``--patients`` N, a Bulk NDJSON export of N patients (the test charts in turn, ids
   renamed, about 75 resources a patient): DuckDB merely reading every line of it
   (``read_ndjson_objects``, the floor), then ``trialdesk patient check`` on it as a fresh process
   (protocol and SQL kept): patients per second (goal >= 1,000), the ratio to the floor, and the
   process's peak memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import ibis
from fhir_map import FIXTURES, big_bundle  # benchmarks/ is on sys.path when run as a script

from trialdesk.eligibility.screen import screen
from trialdesk.eligibility.worksheet import _observe_until, check_fhir, worksheets
from trialdesk.protocol.loader import load, load_value_sets
from trialdesk.sources.fhir_views.load import load_fhir
from trialdesk.sources.fhir_views.omop import map_resources
from trialdesk.sources.omop import open_omop

AS_OF = dt.date(2025, 3, 1)
TRIALDESK = [sys.executable, "-c", "from trialdesk.cli import app; app()"]


CPU: list[float] = []  # CPU seconds (user + system) of the last fresh process: the guest is shared, wall time is not all ours


def fresh(args: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of a fresh process (its CPU seconds in ``CPU[0]``)."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[1:], capture_output=True); u = resource.getrusage(resource.RUSAGE_CHILDREN); "
            "print(time.perf_counter() - t, u.ru_maxrss, r.returncode, u.ru_utime + u.ru_stime)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True).stdout.split()
    if out[2] != "0":
        raise SystemExit(f"{' '.join(args)} failed")
    CPU[:] = [float(out[3])]
    return float(out[0]), int(out[1]) // 1024


def steps(path: Path) -> dict[str, float]:
    protocol, value_sets = load("nct03929120"), load_value_sets()
    t0 = time.perf_counter()
    con = duckdb.connect()
    reading = load_fhir(con, [path])
    t1 = time.perf_counter()
    report = map_resources(con, problems=reading.problems, skipped_types=reading.skipped_types)
    _observe_until(con, AS_OF)
    t2 = time.perf_counter()
    result = screen(open_omop(ibis.duckdb.from_connection(con)), protocol, AS_OF, value_sets=value_sets, check_bounds=False)
    worksheets(result, report, con)
    t3 = time.perf_counter()
    return {"read": t1 - t0, "map": t2 - t1, "screen": t3 - t2}


def write_export(folder: Path, patients: int) -> int:
    """A Bulk export (one NDJSON file per resource type) of N patients: the test charts in turn, ids renamed,
    references to an entry's fullUrl written as Type/id. Written as it goes (a 100,000-patient export is ~7.5 M lines)."""
    templates = []  # per chart: (resource type, line with each id as __P__-id)
    for chart in sorted(FIXTURES.glob("*.json")):
        doc = json.loads(chart.read_text())
        text = json.dumps(doc)
        for e in doc["entry"]:
            old = e["resource"]["id"]
            text = text.replace(f'"{old}"', f'"__P__-{old}"').replace(f'/{old}"', f'/__P__-{old}"')
        # an export has no fullUrl: a reference to an entry's urn:uuid becomes Type/id (as a Bulk export writes it)
        for e in json.loads(text)["entry"]:
            if str(e.get("fullUrl", "")).startswith("urn:"):
                text = text.replace(f'"{e["fullUrl"]}"', f'"{e["resource"]["resourceType"]}/{e["resource"]["id"]}"')
        templates.append([(e["resource"]["resourceType"], json.dumps(e["resource"])) for e in json.loads(text)["entry"]])
    files: dict[str, Any] = {}
    resources = 0
    try:
        for i in range(patients):
            for rtype, line in templates[i % len(templates)]:
                if rtype not in files:
                    files[rtype] = (folder / f"{rtype}.ndjson").open("w", encoding="utf-8")
                files[rtype].write(line.replace("__P__", f"p{i}") + "\n")
                resources += 1
    finally:
        for f in files.values():
            f.close()
    return resources


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--patients", type=int, nargs="+", default=[1000, 10_000])
    ap.add_argument("--no-cli", action="store_true")
    ap.add_argument("--no-chart", action="store_true", help="skip the start-up and one-chart measures (batches only)")
    ap.add_argument("--chunk", type=int, default=None, help="patient check --chunk N for the batches (default: the command's)")
    args = ap.parse_args()
    print(f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
          f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["TRIALDESK_CACHE_DIR"] = str(root / "cache")  # the fresh processes keep what they keep here
        if not args.no_cli and not args.no_chart:
            help_s = sorted(fresh([*TRIALDESK, "--help"])[0] for _ in range(3))[1]
            import_s = sorted(fresh([sys.executable, "-c", "import trialdesk.cli"])[0] for _ in range(3))[1]
            print(f"start-up (medians of 3): trialdesk --help {help_s:.2f} s, import trialdesk.cli {import_s:.2f} s "
                  "(goal --help <= 0.5 s)")
        chart = root / "big.json"
        chart.write_text(json.dumps(big_bundle(args.size)))
        protocol = load("nct03929120")
        if not args.no_cli and not args.no_chart:
            command = [*TRIALDESK, "patient", "check", str(chart), "--as-of", AS_OF.isoformat(), "--protocol", "nct03929120",
                       "--format", "json", "--out", str(root / "sheet.json")]  # fmt: skip
            cold, rss = fresh(command)
            cold_cpu = CPU[0]
            kept = sorted((fresh(command)[0], CPU[0]) for _ in range(3))
            print(f"one {args.size}-resource chart, fresh process: {cold:.2f} s ({cold_cpu:.2f} s CPU) with nothing kept, "
                  f"{kept[1][0]:.2f} s ({kept[1][1]:.2f} s CPU; median of 3) with the protocol and the screen's SQL kept; "
                  f"peak {rss} MiB (goal <= 2 s)")
        times = []
        for _ in range(0 if args.no_chart else args.runs + 1):
            t = time.perf_counter()
            check_fhir(chart, protocol, AS_OF)
            times.append(time.perf_counter() - t)
        if not args.no_chart:
            times = times[1:]  # the first one warms
            split = [steps(chart) for _ in range(3)]
            parts = ", ".join(f"{k} {statistics.median(s[k] for s in split) * 1000:.0f} ms" for k in split[0])
            print(
                f"one {args.size}-resource chart, warm: p50 {statistics.median(times) * 1000:.0f} ms, "
                f"p95 {sorted(times)[int(0.95 * (len(times) - 1))] * 1000:.0f} ms ({parts}) (goal p50 <= 150 ms)"
            )
        for patients in args.patients:
            export = root / f"export{patients}"
            export.mkdir()
            t = time.perf_counter()
            n = write_export(export, patients)
            made = time.perf_counter() - t
            files = sorted(str(f) for f in export.glob("*.ndjson"))
            t = time.perf_counter()
            duckdb.connect().execute(f"SELECT count(*) FROM read_ndjson_objects({files})").fetchone()
            floor = time.perf_counter() - t
            if args.no_cli:
                t = time.perf_counter()
                sheets = check_fhir(export, protocol, AS_OF, chunk=args.chunk)
                wall, rss = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
                assert len(sheets) == patients, len(sheets)
                how = "check_fhir in this process"
            else:
                wall, rss = fresh([*TRIALDESK, "patient", "check", str(export), "--as-of", AS_OF.isoformat(), "--protocol", "nct03929120",
                                   "--format", "json", "--out", str(root / "sheets.json"),
                                   *([] if args.chunk is None else ["--chunk", str(args.chunk)])])  # fmt: skip
                with (root / "sheets.json").open(encoding="utf-8") as f:
                    written = sum(1 for line in f if line.startswith('      "overall": '))  # each worksheet's first key
                assert written == patients, written
                how = f"the command as a fresh process, --chunk {args.chunk if args.chunk is not None else 'default'} ({CPU[0]:.1f} s CPU)"
            print(f"Bulk NDJSON export, {patients:,} patients ({n:,} resources), {how}: {wall:.1f} s, "
                  f"{patients / wall:,.0f} patients/s (goal >= 1,000), peak {rss:,} MiB; DuckDB reading the same NDJSON "
                  f"{floor:.2f} s: ratio {wall / floor:.0f}x; the export written in {made:.1f} s, "
                  f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
            (root / "sheets.json").unlink(missing_ok=True)
            for f in export.iterdir():
                f.unlink()
    print(f"this process: peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")


if __name__ == "__main__":
    main()

"""``trialdesk patient check --engine spark`` against the DuckDB engine on one Bulk NDJSON export, in one run.

    python benchmarks/patient_check_spark.py [--patients 10000] [--pairs 1]

The export is benchmarks/patient_check.py's (the test charts in turn, ids renamed, about 75
resources a patient, one NDJSON file per resource type). A check of a small export first keeps
the protocol and the screen's SQL (as a site's second run has them); then each pair runs the
command as a fresh process with ``--engine duckdb`` and with ``--engine spark`` (alternated,
DuckDB first), ``--format json --out``, and compares the two worksheet files byte for byte.

Wall seconds, and CPU seconds of the whole process tree (Spark's Java process is a child of the
command that the command does not wait for: its CPU is read from /proc every 0.2 s while it
runs, as the guest is shared and wall time is not all ours), the load average before and after each run, and the peak RSS of the
command's Python process (not the JVM's).
"""

from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from patient_check import write_export  # benchmarks/ is on sys.path when run as a script

TRIALDESK = [sys.executable, "-c", "from trialdesk.cli import app; app()"]
TICK = os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> dict[int, float]:
    """CPU seconds (user + system) of ``root`` and each of its descendants now (by pid)."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d)] = int(fields[1])
        cpu[int(d)] = (int(fields[11]) + int(fields[12])) / TICK
    found = {root}
    grew = True
    while grew:
        grew = False
        for pid, pp in parent.items():
            if pp in found and pid not in found:
                found.add(pid)
                grew = True
    return {pid: cpu[pid] for pid in found if pid in cpu}


def run(args: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of the process tree and peak RSS (MiB) of the command's process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: dict[int, float] = {}
    while proc.poll() is None:
        for pid, c in _tree(proc.pid).items():
            if pid != proc.pid:
                seen[pid] = max(seen.get(pid, 0.0), c)
        time.sleep(0.2)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {err.strip().splitlines()[-1:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime  # the command (and what it waited for)
    # PySpark does not wait for its Java process (it ends when its stdin closes, after the command): its CPU is
    # not in RUSAGE_CHILDREN, so each descendant's last reading is added (the last 0.2 s of each are missed)
    return wall, own + sum(seen.values()), after.ru_maxrss // 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--pairs", type=int, default=1)
    args = ap.parse_args()
    import pyspark

    print(f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
          f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, PySpark {pyspark.__version__} (local[2]), "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["TRIALDESK_CACHE_DIR"] = str(root / "cache")
        small, export = root / "small", root / "export"
        small.mkdir()
        export.mkdir()
        write_export(small, 20)
        t = time.perf_counter()
        n = write_export(export, args.patients)
        size = sum(f.stat().st_size for f in export.iterdir()) / 2**20
        print(f"export: {args.patients:,} patients, {n:,} resources, {size:.0f} MiB NDJSON (written in {time.perf_counter() - t:.0f} s)",
              flush=True)  # fmt: skip
        base = [*TRIALDESK, "patient", "check", "--as-of", "2025-03-01", "--protocol", "nct03929120", "--format", "json"]
        run([*base, str(small), "--out", str(root / "small.json")])  # keeps the protocol and the screen's SQL
        for pair in range(args.pairs):
            outs = {}
            for engine in ("duckdb", "spark"):
                outs[engine] = root / f"{engine}.json"
                load = os.getloadavg()[0]
                wall, cpu, rss = run([*base, str(export), "--engine", engine, "--out", str(outs[engine])])
                print(
                    f"pair {pair + 1}, --engine {engine}: {wall:.1f} s wall, {cpu:.1f} s CPU, {args.patients / wall:.0f} patients/s, "
                    f"peak RSS (Python) {rss} MiB, load average {load:.1f} before, {os.getloadavg()[0]:.1f} after",
                    flush=True,
                )
            same = filecmp.cmp(outs["duckdb"], outs["spark"], shallow=False)
            print(
                f"pair {pair + 1}: worksheets {'identical' if same else 'DIFFER'} "
                f"({outs['duckdb'].stat().st_size / 2**20:.1f} MiB of JSON)",
                flush=True,
            )


if __name__ == "__main__":
    main()

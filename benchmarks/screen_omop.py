"""Screen a synthetic OMOP population for NCT03929120 and compare with the floor.

The floor is one DuckDB scan of exactly the columns the criteria read (every column
hashed, so DuckDB must decode them all); the screen is ``screen()`` plus
``write_outputs()``, the whole of ``trialdesk screen``. Each measurement runs in its
own subprocess, so its peak RSS is its own (VmHWM of that process; for Spark also the
JVM's, a child of it; PostgreSQL's server processes are not counted).

    python benchmarks/screen_omop.py [--persons 1000000] [--reuse /tmp/omop.duckdb]
    python benchmarks/screen_omop.py --persons 1000000 --growth 100000 --evidence both   # how cost grows, one run
    python benchmarks/screen_omop.py --backends postgres,spark --small 100000 [--repeat 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
AS_OF = "2024-06-01"

#: exactly the columns the NCT03929120 criteria read, per table
FLOOR_COLUMNS: dict[str, tuple[str, ...]] = {
    "person": ("person_id", "year_of_birth", "month_of_birth", "day_of_birth", "gender_concept_id"),
    "observation_period": ("person_id", "observation_period_start_date", "observation_period_end_date"),
    "condition_occurrence": ("person_id", "condition_occurrence_id", "condition_concept_id", "condition_start_date",
                             "condition_end_date", "condition_source_value", "condition_status_source_value"),
    "drug_exposure": ("person_id", "drug_exposure_id", "drug_concept_id", "drug_exposure_start_date",
                      "drug_exposure_end_date", "drug_source_value"),
    "procedure_occurrence": ("person_id", "procedure_occurrence_id", "procedure_concept_id", "procedure_date",
                             "procedure_source_value"),
    "observation": ("person_id", "observation_id", "observation_concept_id", "observation_date", "observation_datetime",
                    "observation_source_value", "value_as_number", "value_as_string", "value_as_concept_id", "value_source_value",
                    "unit_concept_id", "unit_source_value"),
    "measurement": ("person_id", "measurement_id", "measurement_concept_id", "measurement_date", "measurement_datetime",
                    "value_as_number", "value_as_concept_id", "value_source_value", "unit_concept_id", "unit_source_value",
                    "range_low", "range_high", "measurement_source_value"),
}

console = Console(stderr=True)


# -- what runs in a child process ------------------------------------------------------

def _hwm(pid: int | str = "self") -> int:
    """Peak resident memory of one process in bytes (VmHWM: reset at exec, unlike ru_maxrss,
    which a child inherits from the parent that forked it)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _descendants() -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], list(children.get(os.getpid(), ()))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _say(kind: str, payload: Any) -> None:
    print(f"{kind}\t{json.dumps(payload)}", flush=True)


def _child_floor(spec: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"ATTACH '{spec['path']}' AS cdm (READ_ONLY)")
    per_table: dict[str, float] = {}
    rows: dict[str, int] = {}
    for table, cols in FLOOR_COLUMNS.items():
        _say("progress", f"floor: scanning {table}")
        t0 = time.perf_counter()
        n, _h = con.execute(f"SELECT count(*), sum(hash({', '.join(cols)})) FROM cdm.{table}").fetchone()  # type: ignore[misc]
        per_table[table] = time.perf_counter() - t0
        rows[table] = n
    return {"seconds": sum(per_table.values()), "per_table": per_table, "rows": rows}


def _child_spark_floor(spec: dict[str, Any]) -> dict[str, Any]:
    """Spark's own floor: the same columns scanned and hashed by the screen's local Spark session
    from the Parquet folder (the JVM's start and the views are not counted)."""
    from trialdesk.sources.omop import spark_session

    session = spark_session()
    folder = Path(spec["folder"])
    per_table: dict[str, float] = {}
    rows: dict[str, int] = {}
    for table in FLOOR_COLUMNS:
        session.read.parquet(str(folder / f"{table}.parquet")).createOrReplaceTempView(f"floor_{table}")
    for table, cols in FLOOR_COLUMNS.items():
        _say("progress", f"Spark floor: scanning {table}")
        t0 = time.perf_counter()
        n, _h = session.sql(f"SELECT count(*), sum(hash({', '.join(cols)})) FROM floor_{table}").collect()[0]
        per_table[table] = time.perf_counter() - t0
        rows[table] = n
    return {"seconds": sum(per_table.values()), "per_table": per_table, "rows": rows}


def _digest(table: Any) -> str:
    """A fingerprint of an output table's rows in a fixed order (to see that backends agree)."""
    import hashlib

    text = repr(sorted(map(repr, table.to_pylist())))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _child_screen(spec: dict[str, Any]) -> dict[str, Any]:
    from trialdesk.eligibility.screen import screen, write_outputs
    from trialdesk.protocol.loader import load
    from trialdesk.sources.omop import open_omop

    steps: list[tuple[str, float]] = []
    t0 = time.perf_counter()

    def step(msg: str) -> None:
        steps.append((msg, time.perf_counter() - t0))
        _say("progress", f"screen: {msg}")

    step("opening the OMOP CDM")
    db = open_omop(spec["source"])
    protocol = load("nct03929120")
    opened = time.perf_counter()
    result = screen(db, protocol, dt.date.fromisoformat(spec["as_of"]), progress=step)
    screened = time.perf_counter()
    rss_screened = _hwm()
    step("writing outputs")
    write_outputs(result, Path(spec["out"]), spec.get("evidence", "candidates"))
    written = time.perf_counter()
    coverage = spec.get("evidence", "candidates")
    digests = {"statuses": _digest(result.statuses_table()), "evidence": _digest(result.evidence(coverage))}
    return {"digests": digests, "open": opened - t0, "screen": screened - opened, "write": written - screened,
            "maxrss_screen": rss_screened, "persons": result.statuses.num_rows,
            "evidence_rows": result.evidence(spec.get("evidence", "candidates")).num_rows,
            "steps": [(m, round(s, 2)) for m, s in steps]}


def child_main(kind: str, spec_json: str) -> None:
    spec = json.loads(spec_json)
    out = {"floor": _child_floor, "spark_floor": _child_spark_floor, "screen": _child_screen}[kind](spec)
    out["maxrss"] = _hwm()
    out["children_peak"] = sum(_hwm(pid) for pid in _descendants())  # Spark's JVM
    _say("result", out)


# -- the parent: data, children, figures ------------------------------------------------

def run_child(progress: Progress, label: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    task = progress.add_task(label, total=None)
    cmd = [sys.executable, __file__, "_child", kind, json.dumps(spec)]
    started = time.perf_counter()
    result: dict[str, Any] | None = None
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        stderr_lines: list[str] = []
        drain = threading.Thread(target=lambda: stderr_lines.extend(proc.stderr), daemon=True)  # type: ignore[union-attr]
        drain.start()
        for line in proc.stdout:
            tag, _, payload = line.rstrip("\n").partition("\t")
            if tag == "progress":
                progress.update(task, description=f"{label}: {json.loads(payload)}")
            elif tag == "result":
                result = json.loads(payload)
        proc.wait()
        drain.join()
    progress.update(task, description=f"{label}: done", total=1, completed=1)
    if proc.returncode != 0 or result is None:
        console.print("".join(stderr_lines[-40:]))
        raise SystemExit(f"{label} failed (exit {proc.returncode})")
    result["wall"] = time.perf_counter() - started
    return result


def generate(progress: Progress, path: Path, persons: int, seed: int) -> float:
    from trialdesk.sources.synthetic import generate_omop

    task = progress.add_task(f"generating {persons:,} persons", total=persons)
    summary = generate_omop(path, persons=persons, seed=seed, progress=lambda done, _total: progress.update(task, completed=done))
    return summary.seconds


def measure(progress: Progress, label: str, source: str, floor_path: Path, work: Path, as_of: str,
            repeat: int, floor: dict[str, Any] | None = None, evidence: str = "candidates") -> dict[str, Any]:
    """Best of ``repeat`` runs for the floor (unless given) and for the screen."""
    if floor is None:
        floors = [run_child(progress, f"{label} floor #{i + 1}", "floor", {"path": str(floor_path)}) for i in range(repeat)]
        floor = min(floors, key=lambda f: f["seconds"])
    screens = []
    for i in range(repeat):
        out = work / f"out-{label}-{i}"
        screens.append(run_child(progress, f"{label} screen #{i + 1}", "screen",
                                 {"source": source, "as_of": as_of, "out": str(out), "evidence": evidence}))
        shutil.rmtree(out, ignore_errors=True)
    best = min(screens, key=lambda s: s["screen"] + s["write"])
    return {"label": label, "floor": floor, "screen": best, "all_screens": [s["screen"] + s["write"] for s in screens]}


def gib(n: float) -> str:
    return f"{n / 1024 ** 3:.2f}"


def figures_table(rows: list[dict[str, Any]], copies: dict[str, float]) -> Table:
    t = Table(title="NCT03929120 screen vs. floor (best of the runs; peak RSS of the measuring subprocess)", title_justify="left")
    for col in ("backend", "persons", "copy s", "floor s", "open s", "screen s", "write s", "screen+write s", "persons/s",
                "ratio", "peak RSS GiB", "JVM peak GiB", "floor RSS GiB"):
        t.add_column(col, justify="left" if col == "backend" else "right")
    for r in rows:
        s, f = r["screen"], r["floor"]
        total = s["screen"] + s["write"]
        t.add_row(r["label"], f"{s['persons']:,}", f"{copies[r['label']]:.1f}" if r["label"] in copies else "-",
                  f"{f['seconds']:.2f}", f"{s['open']:.2f}", f"{s['screen']:.2f}", f"{s['write']:.2f}", f"{total:.2f}",
                  f"{s['persons'] / total:,.0f}", f"{total / f['seconds']:.2f}", gib(s["maxrss"]),
                  gib(s["children_peak"]) if s["children_peak"] else "-",
                  gib(f["maxrss"]))
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000, help="population screened on DuckDB (0: skip)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", type=Path, help="an existing synthetic OMOP DuckDB file of --persons persons (kept)")
    parser.add_argument("--as-of", default=AS_OF)
    parser.add_argument("--backends", default="", help="comma-separated: postgres, spark (screened on --small persons)")
    parser.add_argument("--small", type=int, default=100_000, help="population for the PostgreSQL and Spark runs")
    parser.add_argument("--reuse-small", type=Path, help="an existing synthetic OMOP DuckDB file of --small persons (kept)")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the best is reported")
    parser.add_argument("--growth", type=int, default=0,
                        help="also screen this many persons on DuckDB in the same run (e.g. 100000), for how cost grows")
    parser.add_argument("--reuse-growth", type=Path, help="an existing synthetic OMOP DuckDB file of --growth persons (kept)")
    parser.add_argument("--evidence", default="candidates", choices=["candidates", "all", "both"],
                        help="whose evidence the screen writes (trialdesk screen --evidence)")
    parser.add_argument("--work", type=Path, default=None, help="folder for generated data (default: a new folder under /tmp)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the generated data (default: removed at the end)")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip() and b.strip() != "duckdb"]
    unknown = set(backends) - {"postgres", "spark"}
    if unknown:
        parser.error(f"--backends: unknown {', '.join(sorted(unknown))}; choose from duckdb, postgres, spark")

    for given in (args.reuse, args.reuse_small):
        if given is not None and not given.is_file():
            parser.error(f"--reuse: {given} is not a file")
    work = args.work or Path(tempfile.mkdtemp(prefix="trialdesk-screen-bench-", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    copies: dict[str, float] = {}
    generated: dict[str, float] = {}
    schema = f"bench_{os.getpid()}"
    pg_made = False
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            coverages = ["candidates", "all"] if args.evidence == "both" else [args.evidence]
            sizes: list[tuple[int, Path | None]] = []
            if args.growth:
                sizes.append((args.growth, args.reuse_growth))
            if args.persons:
                sizes.append((args.persons, args.reuse))
            for persons, path in sizes:
                if path is None:
                    path = work / f"omop_{persons}.duckdb"
                    generated[f"duckdb {persons:,}"] = generate(progress, path, persons, args.seed)
                floor = None
                for coverage in coverages:
                    label = f"duckdb {persons:,}" + (" ev=all" if coverage == "all" else "")
                    rows.append(measure(progress, label, str(path), path, work, args.as_of, args.repeat, floor=floor,
                                        evidence=coverage))
                    floor = rows[-1]["floor"]
            if backends:
                from trialdesk.sources.omop import open_omop
                from trialdesk.sources.transfer import copy_to_parquet, copy_to_postgres

                small = args.reuse_small
                if small is None:
                    small = work / f"omop_{args.small}.duckdb"
                    generated["small"] = generate(progress, small, args.small, args.seed)
                base = measure(progress, "duckdb-small", str(small), small, work, args.as_of, args.repeat)
                rows.append(base)
                if "postgres" in backends:
                    task = progress.add_task(f"copying to PostgreSQL schema {schema}", total=None)
                    t0 = time.perf_counter()
                    pg_made = True
                    copy_to_postgres(open_omop(small), args.pg_url, schema,
                                     progress=lambda name, _n: progress.update(task, description=f"copying {name} to PostgreSQL"))
                    copies["postgres"] = time.perf_counter() - t0
                    progress.update(task, description="copied to PostgreSQL", total=1, completed=1)
                    rows.append(measure(progress, "postgres", f"{args.pg_url}?schema={schema}", small, work, args.as_of,
                                        args.repeat, floor=base["floor"]))
                if "spark" in backends:
                    task = progress.add_task("copying to Parquet", total=None)
                    t0 = time.perf_counter()
                    folder = work / "parquet_small"
                    copy_to_parquet(open_omop(small), folder)
                    copies["spark"] = time.perf_counter() - t0
                    progress.update(task, description="copied to Parquet", total=1, completed=1)
                    rows.append(measure(progress, "spark", f"spark:{folder}", small, work, args.as_of, args.repeat,
                                        floor=base["floor"]))
                    floors = [run_child(progress, f"spark floor #{i + 1}", "spark_floor", {"folder": str(folder)})
                              for i in range(args.repeat)]
                    rows[-1]["own_floor"] = min(floors, key=lambda f: f["seconds"])
    finally:
        if pg_made:
            from trialdesk.sources.transfer import drop_postgres_schema

            drop_postgres_schema(args.pg_url, schema)

    out = Console(width=200)
    out.print(figures_table(rows, copies))
    for name, seconds in generated.items():
        out.print(f"generation ({name}): {seconds:.1f} s")
    for r in rows:
        f, s = r["floor"], r["screen"]
        out.print(f"[bold]{r['label']}[/]")
        if r["label"].startswith("duckdb"):
            out.print("  floor per table: " + ", ".join(f"{t} {sec:.2f} s ({f['rows'][t]:,} rows)" for t, sec in f["per_table"].items()))
        if "own_floor" in r:
            own = r["own_floor"]
            out.print(f"  Spark's own floor (the same columns scanned by its session): {own['seconds']:.2f} s, "
                      f"ratio {(s['screen'] + s['write']) / own['seconds']:.2f}; per table: "
                      + ", ".join(f"{t} {sec:.2f} s" for t, sec in own["per_table"].items()))
        out.print(f"  screen steps (s from start): {', '.join(f'{m} {t}' for m, t in s['steps'])}")
        out.print(f"  peak RSS when screen() returned {gib(s['maxrss_screen'])} GiB, after write_outputs {gib(s['maxrss'])} GiB;"
                  f" {s['evidence_rows']:,} evidence rows")
        if len(r["all_screens"]) > 1:
            out.print(f"  screen+write of every run: {', '.join(f'{x:.2f}' for x in r['all_screens'])}")
    for coverage in ("candidates", "all"):  # the same files from every backend
        same = {r["label"]: r["screen"]["digests"] for r in rows if r["label"].endswith("ev=all") == (coverage == "all")
                and not r["label"].startswith("duckdb ")} if backends else {}
        if len(same) > 1:
            agree = len({json.dumps(d, sort_keys=True) for d in same.values()}) == 1
            whose = "everyone's" if coverage == "all" else "the candidates'"
            out.print(f"statuses and {whose} evidence identical on {', '.join(same)}: {'yes' if agree else 'NO'}"
                      + ("" if agree else f" {same}"))
    by_label = {r["label"]: r["screen"]["screen"] + r["screen"]["write"] for r in rows}
    if args.growth and args.persons:
        for suffix in ("", " ev=all"):
            small_t, big_t = by_label.get(f"duckdb {args.growth:,}{suffix}"), by_label.get(f"duckdb {args.persons:,}{suffix}")
            if small_t and big_t:
                out.print(f"growth{suffix}: {args.persons:,} persons take {big_t / small_t:.2f}x the time of {args.growth:,}")
    out.print("ratio = (screen + write) / floor; the floor is DuckDB's scan of the same data for every backend. "
              "open = connecting (and, for Spark, starting the JVM) — not in the ratio.")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "copies": copies, "generated": generated}, indent=2))
    if args.keep:
        console.print(f"generated data kept in {work}")
    else:
        for name in (f"omop_{args.persons}.duckdb", f"omop_{args.growth}.duckdb", f"omop_{args.small}.duckdb", "parquet_small"):
            target = work / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists() and target not in (args.reuse, args.reuse_small, args.reuse_growth):
                target.unlink()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child_main(sys.argv[2], sys.argv[3])
    else:
        main()

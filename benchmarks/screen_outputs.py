"""What the output contract of ``trialdesk screen`` costs, against the floor, in one run.

    python benchmarks/screen_outputs.py --reuse /tmp/omop_1m.duckdb [--rounds 2]

DESIGN.md fixes ``person_criteria.parquet`` as one row per person and criterion with the
evidence in the row. This script measures, in one process and on one screened result:

- floor: the DuckDB scan of exactly the columns the criteria read (as screen_omop.py);
- screen: ``screen()``;
- A, the contract as it is: ``write_outputs()`` (funnel, candidates, person_criteria.parquet
  with a list of evidence structs in each of the persons x criteria rows);
- B, an alternative for the steering decision: the same files, but person_criteria.parquet
  without the evidence column and the cited records in a separate long file
  ``evidence.parquet`` (person_id, criterion_id, then the evidence fields, one row a record).

A and B are alternated ``--rounds`` times; the best of each is reported with
ratio = (screen + write) / floor. Nothing here changes what ``trialdesk screen`` writes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table
from screen_omop import FLOOR_COLUMNS  # benchmarks/ is on sys.path when run as a script

from trialdesk.eligibility.screen import EVIDENCE_FIELDS, ScreenResult, screen, write_outputs
from trialdesk.protocol.loader import load
from trialdesk.sources.omop import open_omop

console = Console(stderr=True)


def floor_seconds(path: Path) -> float:
    con = duckdb.connect()
    con.execute(f"ATTACH '{path}' AS cdm (READ_ONLY)")
    t0 = time.perf_counter()
    for table, cols in FLOOR_COLUMNS.items():
        con.execute(f"SELECT count(*), sum(hash({', '.join(cols)})) FROM cdm.{table}").fetchone()
    return time.perf_counter() - t0


def write_separate(result: ScreenResult, out: Path) -> None:
    """Alternative B: the long table without evidence, and the cited records apart."""
    import pyarrow.csv as pacsv

    out.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(pa.Table.from_pylist(result.funnel()), out / "funnel.csv")
    pacsv.write_csv(result.candidates(), out / "candidates.csv")
    s = result.statuses
    m = len(result.criterion_ids)
    ids = s["person_id"].to_numpy(zero_copy_only=False)
    con = result._con()
    con.register("pos", pa.table({"person_id": s["person_id"], "pos": result._person_rank()}))
    flat = con.execute(result._evidence_sql()).fetch_arrow_table().combine_chunks()
    row = flat["row"].to_numpy()
    evidence = pa.table({"person_id": pa.array(np.sort(ids)[row // m], pa.int64()),
                         "criterion_id": pa.DictionaryArray.from_arrays(pa.array((row % m).astype(np.int8)),
                                                                        pa.array(result.criterion_ids)),
                         **{f: flat[f] for f in EVIDENCE_FIELDS}})
    pq.write_table(evidence, out / "evidence.parquet", compression="zstd")
    pq.write_table(result.long_statuses(), out / "person_criteria.parquet", compression="zstd")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reuse", type=Path, required=True, help="a synthetic OMOP DuckDB file (trialdesk synth omop)")
    ap.add_argument("--as-of", default="2024-06-01")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    with console.status("floor: scanning the columns the criteria read"):
        floor = min(floor_seconds(args.reuse) for _ in range(2))
    with console.status("screening"):
        t0 = time.perf_counter()
        result = screen(open_omop(args.reuse), load("nct03929120"), dt.date.fromisoformat(args.as_of))
        screened = time.perf_counter() - t0
    work = Path(tempfile.mkdtemp(prefix="screen-outputs-"))
    times: dict[str, list[float]] = {"A": [], "B": []}
    try:
        for i in range(args.rounds):
            for label, write in (("A", lambda o: write_outputs(result, o)), ("B", lambda o: write_separate(result, o))):
                with console.status(f"round {i + 1}: writing {label}"):
                    out = work / f"{label}{i}"
                    t0 = time.perf_counter()
                    write(out)
                    times[label].append(time.perf_counter() - t0)
                    size = sum(f.stat().st_size for f in out.iterdir())
                    shutil.rmtree(out)
                console.print(f"round {i + 1} {label}: {times[label][-1]:.2f} s, {size / 1e6:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    table = Table(title=f"{result.statuses.num_rows:,} persons: floor {floor:.2f} s, screen() {screened:.2f} s (best of "
                        f"{args.rounds} writes)", title_justify="left")
    for col in ("output", "write s", "screen + write s", "ratio to floor"):
        table.add_column(col, justify="left" if col == "output" else "right")
    names = {"A": "A: person_criteria.parquet with evidence in each row (the contract)",
             "B": "B: person_criteria.parquet without evidence + evidence.parquet"}
    for label, name in names.items():
        best = min(times[label])
        table.add_row(name, f"{best:.2f}", f"{screened + best:.2f}", f"{(screened + best) / floor:.1f}")
    table.add_row("screen() alone", "-", f"{screened:.2f}", f"{screened / floor:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()

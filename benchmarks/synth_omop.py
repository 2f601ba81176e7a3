"""Time `generate_omop` at scale: wall seconds, rows per table, peak RSS, file size.

    python benchmarks/synth_omop.py --persons 1000000 [--seed 1] [--out /tmp/synth.duckdb] [--keep]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

from trialdesk.sources.synthetic import generate_omop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="DuckDB file to write (default: a temporary file, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the file written")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="trialdesk-bench-")) / "synth.duckdb"
    t0 = time.perf_counter()
    summary = generate_omop(out, persons=args.persons, seed=args.seed)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    size = out.stat().st_size
    print(f"persons            {args.persons:>14,} (+{summary.planted} planted)")
    print(f"wall seconds       {wall:>14.1f}")
    print(f"persons per second {args.persons / wall:>14,.0f}")
    print(f"peak RSS           {peak_kib / 1024 / 1024:>14.2f} GiB")
    print(f"file size          {size / 1024 ** 3:>14.2f} GiB")
    for table, rows in summary.rows.items():
        print(f"  {table:<22}{rows:>14,}")
    if not args.keep and args.out is None:
        out.unlink()
    sys.stdout.flush()


if __name__ == "__main__":
    main()

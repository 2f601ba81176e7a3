"""How fast a FHIR R4 chart is read, validated and mapped into OMOP-shaped tables.

    python benchmarks/fhir_map.py [--runs 20] [--patients 10000]

1. one 2,000-resource bundle (the SSc-ILD referral, its observations repeated with new ids
   and dates): p50 of warm runs of read_fhir + map_to_omop into a fresh in-memory DuckDB,
   and, apart, the read (DuckDB, with the validation) and the mapping (views + SQL);
2. a folder of N one-patient bundles (the IPAF referral, 45 resources each) read and
   mapped in one batch: patients per second.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from trialdesk.sources.fhir import map_to_omop, read_fhir

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "fhir" / "bundles"


def big_bundle(size: int) -> dict[str, object]:
    doc = json.loads((FIXTURES / "ssc_ild_new.json").read_text())
    entries = doc["entry"]
    observations = [e for e in entries if e["resource"]["resourceType"] == "Observation"]
    i = 0
    while len(entries) < size:
        e = copy.deepcopy(observations[i % len(observations)])
        r = e["resource"]
        r["id"] = f"synthetic-{i}"
        r["effectiveDateTime"] = f"20{10 + i % 15:02d}-{1 + i % 12:02d}-{1 + i % 28:02d}T08:00:00-05:00"
        e["fullUrl"] = f"https://ehr.example.org/fhir/Observation/{r['id']}"
        entries.append(e)
        i += 1
    return doc


def one_check(path: Path) -> float:
    t = time.perf_counter()
    con = duckdb.connect()
    map_to_omop(read_fhir(path), con)
    con.close()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--patients", type=int, default=10_000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.json"
        path.write_text(json.dumps(big_bundle(args.size)))
        one_check(path)  # warm: imports, pint/UCUM tables, compiled views
        times = [one_check(path) for _ in range(args.runs)]

        t = time.perf_counter()
        reading = read_fhir(path)
        read = time.perf_counter() - t
        t = time.perf_counter()
        map_to_omop(reading, duckdb.connect())
        mapping = time.perf_counter() - t
        n = len(reading.records)
        print(f"one bundle of {n} resources, {args.runs} warm runs: p50 {statistics.median(times) * 1000:.0f} ms "
              f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})")  # fmt: skip
        print(f"  of one run: read (DuckDB, structure and value checks, records built) {read * 1000:.0f} ms; "
              f"map + write {mapping * 1000:.0f} ms")  # fmt: skip

        folder = Path(tmp) / "batch"
        folder.mkdir()
        text = (FIXTURES / "ipaf.json").read_text()
        per_patient = len(json.loads(text)["entry"])
        for i in range(args.patients):
            (folder / f"referral_{i:05d}.json").write_text(text.replace("ipaf-", f"p{i:05d}-"))
        t = time.perf_counter()
        reading = read_fhir(folder)
        read = time.perf_counter() - t
        con = duckdb.connect()
        report = map_to_omop(reading, con)
        total = time.perf_counter() - t
        persons = len(report.persons)
        print(f"batch of {persons} patients ({per_patient} resources each): {total:.1f} s, {persons / total:.0f} patients/s "
              f"(read+validate {read:.1f} s, map+write {total - read:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()

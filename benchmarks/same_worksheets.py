"""Do two versions of trialdesk write the same worksheets? For changes that must not change any output.

    PYTHONPATH=<version's src>:benchmarks python benchmarks/same_worksheets.py write OUT [--full]
    python benchmarks/same_worksheets.py diff OUT_A OUT_B

``write`` runs ``trialdesk patient check`` in this process (``typer``'s test runner; the command's own code, its
kept protocol and screen SQL in a fresh cache folder) on every test chart (``tests/fixtures/fhir``: the Bundles,
the bad inputs, the three exports, the folder of Bundles), a 2,000-resource chart and a 40-patient export checked
whole and in chunks of 7 patients, for both protocols, and writes each output (json/html file, the table's
terminal text, the exit code) to OUT. Two passes: the first compiles the screen's SQL, the second re-runs it
(prepared in process). json everywhere; html and the table for a few inputs (they are rendered from the same
worksheets), or everywhere with ``--full``. ``diff`` lists the outputs that differ or are missing.
"""

from __future__ import annotations

import filecmp
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FHIR = ROOT / "tests" / "fixtures" / "fhir"
#: inputs checked in every format in the first pass (without --full)
EVERY_FORMAT = ("big.json", "bundles", "export40", "ssc_ild_new.json", "export_bad_lines", "not_json.json")


def write(out: Path, full: bool) -> int:
    import json

    out.mkdir(parents=True, exist_ok=True)
    os.environ["TRIALDESK_CACHE_DIR"] = tempfile.mkdtemp(prefix="same-worksheets-cache-")
    from fhir_map import big_bundle  # benchmarks/ is on sys.path
    from patient_check import write_export
    from typer.testing import CliRunner

    from trialdesk.cli import app

    work = Path(tempfile.mkdtemp(prefix="same-worksheets-"))
    big = work / "big.json"
    big.write_text(json.dumps(big_bundle(2000)))
    export = work / "export40"
    export.mkdir()
    write_export(export, 40)
    inputs = [
        *sorted(FHIR.glob("bundles/*.json")),
        *sorted(FHIR.glob("bad/*.json")),
        FHIR / "export_ssc_ild_new",
        FHIR / "export_ra_ild_no_manifest",
        FHIR / "export_bad_lines",
        FHIR / "bundles",
        big,
        export,
    ]
    runner = CliRunner()
    n = 0
    for pass_ in (1, 2):
        for protocol in ("nct03929120", "nct02013700"):
            for src in inputs:
                for chunk in [None, "7"] if src.is_dir() else [None]:
                    every = full or (pass_ == 1 and src.name in EVERY_FORMAT)
                    for fmt in ("json", "html", "table") if every else ("json",):
                        name = f"p{pass_}_{protocol}_{src.name}_{chunk}_{fmt}"
                        f = out / f"{name}.out"
                        args = [
                            "patient",
                            "check",
                            str(src),
                            "--as-of",
                            "2025-03-01",
                            "--protocol",
                            protocol,
                            "--format",
                            fmt,
                            "--workers",
                            "1",
                            *(["--chunk", chunk] if chunk else []),
                            *(["--out", str(f)] if fmt != "table" else []),
                        ]
                        r = runner.invoke(app, args, terminal_width=200)
                        text = r.output.replace(str(f), "OUT").replace(str(work), "WORK")
                        error = "" if r.exception is None or isinstance(r.exception, SystemExit) else repr(r.exception)
                        (out / f"{name}.log").write_text(f"exit {r.exit_code}\n{text}\n{error}")
                        if f.exists():  # the files name the inputs' paths: the temporary folder's name is not compared
                            f.write_text(f.read_text(encoding="utf-8").replace(str(work), "WORK"), encoding="utf-8")
                        n += 1
    print(f"{n} checks written to {out}")
    return 0


def diff(a: Path, b: Path) -> int:
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    bad = [n for n in names if not (a / n).exists() or not (b / n).exists() or not filecmp.cmp(a / n, b / n, shallow=False)]
    for n in bad:
        print("differs or missing:", n)
    print(f"{len(names) - len(bad)} of {len(names)} outputs the same")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "write":
        raise SystemExit(write(Path(sys.argv[2]), "--full" in sys.argv))
    if len(sys.argv) == 4 and sys.argv[1] == "diff":
        raise SystemExit(diff(Path(sys.argv[2]), Path(sys.argv[3])))
    raise SystemExit(__doc__)

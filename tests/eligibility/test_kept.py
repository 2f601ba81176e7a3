"""``trialdesk patient check`` keeps the protocol it read and the screen's SQL for the next
process; what a later process gives with them is what it gives without them, and an edited
protocol, or a damaged kept file, is read afresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROTOCOL_FILE

SRC = str(Path(__file__).resolve().parents[2] / "src")
CHART = Path(__file__).resolve().parents[1] / "fixtures" / "fhir" / "bundles" / "excl_alt_3x_uln.json"


def _check(cache: Path, out: Path, *extra: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "TRIALDESK_CACHE_DIR": str(cache)}
    code = "import sys; sys.argv[0] = 'trialdesk'; from trialdesk.cli import app; app()"
    done = subprocess.run([sys.executable, "-c", code, "patient", "check", str(CHART), "--as-of", "2025-03-01",
                           "--format", "json", "--out", str(out), *extra], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def test_a_later_process_with_what_was_kept_gives_the_same_worksheet(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _check(cache, tmp_path / "first.json")
    assert len(list((cache / "protocol").iterdir())) == 1 and len(list((cache / "screen-sql").iterdir())) == 1
    again = _check(cache, tmp_path / "again.json")
    assert again == first
    assert {c["id"]: c["status"] for c in first["criteria"]}["E8"] == "met"  # ALT 135 U/L > 3 x ULN 45
    for kept in (*(cache / "protocol").iterdir(), *(cache / "screen-sql").iterdir()):
        kept.write_bytes(b"damaged")
    assert _check(cache, tmp_path / "damaged.json") == first


def test_an_edited_protocol_is_read_afresh(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text(PROTOCOL_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    before = _check(cache, tmp_path / "before.json", "--protocol", str(protocol))
    text = protocol.read_text(encoding="utf-8")
    assert "text: Adults over 18 years of age and less than 80 years of age" in text
    protocol.write_text(text.replace("text: Adults over 18 years of age and less than 80 years of age",
                                     "text: Adults aged 18 to 79 on the screening date"), encoding="utf-8")
    after = _check(cache, tmp_path / "after.json", "--protocol", str(protocol))
    texts = {c["id"]: c["text"] for c in after["criteria"]}
    assert texts["I1"] == "Adults aged 18 to 79 on the screening date"
    assert {c["id"]: c["text"] for c in before["criteria"]}["I1"] != texts["I1"]
    assert len(list((cache / "protocol").iterdir())) == 2


def _check_reporting_ucum(cache: Path, out: Path) -> tuple[dict[str, object], bool]:
    """The worksheet of a fresh process, and whether that process built the UCUM registry (imported ucumvert)."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "TRIALDESK_CACHE_DIR": str(cache)}
    code = ("import atexit, sys; atexit.register(lambda: print('ucumvert' in sys.modules, file=sys.stderr)); "
            "sys.argv[0] = 'trialdesk'; from trialdesk.cli import app; app()")
    done = subprocess.run([sys.executable, "-c", code, "patient", "check", str(CHART), "--as-of", "2025-03-01",
                           "--format", "json", "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text()), done.stderr.strip().splitlines()[-1] == "True"


def test_a_later_process_with_the_unit_answers_kept_builds_no_unit_registry_and_gives_the_same_worksheet(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, built = _check_reporting_ucum(cache, tmp_path / "first.json")
    assert built  # nothing kept yet: the units are read with the UCUM registry
    assert len(list((cache / "units").iterdir())) == 1
    again, built_again = _check_reporting_ucum(cache, tmp_path / "again.json")
    assert not built_again  # every unit spelling and conversion this chart needs was kept
    assert again == first
    assert {c["id"]: c["status"] for c in again["criteria"]}["E8"] == "met"  # ALT 135 U/L > 3 x ULN 45, as before
    for kept in (cache / "units").iterdir():
        kept.write_bytes(b"damaged")
    damaged, built_damaged = _check_reporting_ucum(cache, tmp_path / "damaged.json")
    assert built_damaged and damaged == first  # a file that cannot be read is ignored, and written again
    assert json.loads(next((cache / "units").iterdir()).read_text())

"""The SSc-ILD referral chart (``tests/fixtures/fhir/bundles/ssc_ild_new.json``, checked as of 2025-03-01), varied
for one test: its Patient's elements replaced, resources added."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BUNDLE = Path(__file__).resolve().parents[1] / "fixtures" / "fhir" / "bundles" / "ssc_ild_new.json"
PATIENT = {"reference": "Patient/ssc-new-patient"}


def referral(tmp_path: Path, *resources: dict[str, Any], **patient: Any) -> Path:
    """The chart written to ``tmp_path/chart.json``, with ``patient``'s elements on its Patient and ``resources``
    added (each the chart patient's, ``probe-<n>`` unless it has an id)."""
    doc = json.loads(BUNDLE.read_text())
    doc["entry"][0]["resource"].update(patient)
    for i, r in enumerate(resources):
        r = {"id": f"probe-{i}", "subject": PATIENT, **r}
        doc["entry"].append({"fullUrl": f"https://ehr.example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r})
    path = tmp_path / "chart.json"
    path.write_text(json.dumps(doc))
    return path

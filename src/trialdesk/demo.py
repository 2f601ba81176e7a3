"""``trialdesk demo``: the newcomer's path through what trialdesk does today, on embedded
defaults — the protocol as data, a synthetic hospital pre-screened for it, one referred
patient's worksheet, and the safety rules' operating characteristics.

Each step is the same command a user would type, so the demo shows real usage.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer
from rich.rule import Rule

from trialdesk.console import fail, out

AS_OF = "2024-06-01"


def _run(args: list[str]) -> None:
    from trialdesk.cli import app

    out.print(Rule(f"[bold]trialdesk {' '.join(args)}"))
    try:
        app(args, standalone_mode=False)
    except SystemExit as exc:  # a user error inside a step ends the demo with that step's message
        if exc.code:
            fail(f"demo step 'trialdesk {' '.join(args)}' failed")


def _referral(folder: Path) -> Path:
    """A referred patient's chart as a FHIR R4 Bundle: new SSc-ILD, rituximab 30 days ago."""
    as_of = dt.date.fromisoformat(AS_OF)

    def day(n: int) -> str:
        return (as_of - dt.timedelta(days=n)).isoformat()

    def obs(i: int, loinc: str, name: str, value: float, unit: str, when: int, low: float | None = None,
            high: float | None = None) -> dict[str, object]:
        o: dict[str, object] = {
            "resourceType": "Observation", "id": f"demo-obs-{i}", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": name}]},
            "subject": {"reference": "Patient/demo"}, "effectiveDateTime": day(when),
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}
        if low is not None and high is not None:
            o["referenceRange"] = [{"low": {"value": low, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
                                    "high": {"value": high, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}]
        return o

    def condition(i: int, icd: str, name: str, when: int) -> dict[str, object]:
        return {"resourceType": "Condition", "id": f"demo-cond-{i}", "subject": {"reference": "Patient/demo"},
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd, "display": name}]},
                "onsetDateTime": day(when)}

    resources: list[dict[str, object]] = [
        {"resourceType": "Patient", "id": "demo", "gender": "female", "birthDate": "1968-04-12"},
        condition(1, "M34.0", "Progressive systemic sclerosis", 400),
        condition(2, "M34.81", "Systemic sclerosis with lung involvement", 60),
        {"resourceType": "MedicationRequest", "id": "demo-rx-1", "status": "completed", "intent": "order",
         "subject": {"reference": "Patient/demo"}, "authoredOn": day(30),
         "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "121191",
                                                   "display": "rituximab"}]}},
        obs(1, "59408-5", "Oxygen saturation by pulse oximetry", 93, "%", 5),
        obs(2, "718-7", "Hemoglobin", 13.1, "g/dL", 6, 12.0, 15.5),
        obs(3, "6690-2", "Leukocytes", 6.8, "10*3/uL", 6, 3.4, 9.6),
        obs(4, "751-8", "Neutrophils", 4.1, "10*3/uL", 6, 1.6, 6.1),
        obs(5, "777-3", "Platelets", 240, "10*3/uL", 6, 150, 400),
        obs(6, "2160-0", "Creatinine", 0.8, "mg/dL", 6, 0.6, 1.1),
        obs(7, "1920-8", "AST", 24, "U/L", 6, 8, 43),
        obs(8, "1742-6", "ALT", 21, "U/L", 6, 7, 45),
        obs(9, "21198-7", "hCG", 2, "[IU]/L", 6),
    ]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    path = folder / "referral.json"
    path.write_text(json.dumps(bundle, indent=2), encoding="utf-8")
    return path


def demo(
    persons: int = typer.Option(20_000, "--persons", help="people in the synthetic hospital"),
    folder: Path = typer.Option(Path("trialdesk-demo"), "--out", help="where the demo writes its files"),
    seed: int = typer.Option(20191105, "--seed"),
) -> None:
    """Run the demo: protocol, pre-screen of a synthetic hospital, a patient worksheet, safety rules."""
    folder.mkdir(parents=True, exist_ok=True)
    _run(["protocol", "show", "nct03929120"])
    hospital = folder / "hospital.duckdb"
    _run(["synth", "omop", "--persons", str(persons), "--seed", str(seed), "--as-of", AS_OF, "--out", str(hospital), "--force"])
    _run(["screen", "--omop", str(hospital), "--as-of", AS_OF, "--out", str(folder / "screen"), "--active-within", "24m"])
    referral = _referral(folder)
    _run(["patient", "check", str(referral), "--as-of", AS_OF])
    _run(["patient", "check", str(referral), "--as-of", AS_OF, "--format", "html", "--out", str(folder / "worksheet.html")])
    _run(["safety", "simulate", "--plot", str(folder / "stopping_rules.png")])
    out.print(Rule("[bold]where to look"))
    out.print(f"  pre-screen funnel and candidates: {folder / 'screen'}/funnel.csv, candidates.csv, person_criteria.parquet")
    out.print(f"  printable eligibility worksheet:  {folder / 'worksheet.html'}")
    out.print(f"  stopping rules' operating characteristics: {folder / 'stopping_rules.png'}")
    out.print("  the trial desk (EDC): trialdesk serve  (create accounts with: trialdesk users create NAME --role coordinator)")

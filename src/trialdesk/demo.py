"""``trialdesk demo``: the newcomer's path through the whole trial, on embedded defaults — the
protocol as data, a synthetic hospital pre-screened for it, one referred patient's worksheet, the
safety rules' operating characteristics, then the trial itself conducted in the trial desk
(:mod:`trialdesk.edc.demo_trial`), its safety rules and reports, and the trial desk served on
localhost with one account per role.

Each step outside the trial desk is the same command a user would type, so the demo shows real
usage; inside it, every act goes through the trial desk's own services.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import typer
from rich.rule import Rule
from rich.table import Table

from trialdesk.console import fail, out
from trialdesk.edc.demo_trial import Conducted

AS_OF = "2024-06-01"
#: the demo runs the first trial; every command names it, as two protocols are installed and none is guessed
DEMO_PROTOCOL = "nct03929120"


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


def _desk(folder: Path) -> Path:
    """Point the trial desk at a fresh SQLite database under the demo folder and migrate it."""
    import os

    data_dir = (folder / "trialdesk-data").resolve()
    if os.environ.pop("DATABASE_URL", None):
        out.print("[yellow]DATABASE_URL is ignored by the demo: it writes only to its own SQLite database[/]")
    os.environ["TRIALDESK_DATA_DIR"] = str(data_dir)
    os.environ["TRIALDESK_PROTOCOL"] = DEMO_PROTOCOL  # the desk serves the demo's trial, whatever else is installed
    os.environ["TRIALDESK_DEBUG"] = "1"  # 'trialdesk serve' without --production: Django's development server on localhost
    os.environ.setdefault("TRIALDESK_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")  # SAE notices stay in memory
    from django.conf import settings

    if settings.configured and Path(settings.DATA_DIR).resolve() != data_dir:
        fail(f"the trial desk is already configured for {settings.DATA_DIR}; run the demo in a fresh process")
    database = data_dir / "trialdesk.sqlite3"
    for stale in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
        stale.unlink(missing_ok=True)
    from trialdesk.edc.commands import _django, _migrate

    _django(debug=True, offline=False)
    _migrate()
    return database


def _conduct(folder: Path, seed: int) -> Conducted:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from trialdesk.edc.demo_trial import conduct_trial, read_candidates
    from trialdesk.edc.web import protocol

    candidates = read_candidates(folder / "screen" / "candidates.csv", folder / "hospital.duckdb")
    target = protocol().enrolment.target
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=out) as progress:
        task = progress.add_task(f"participants through {protocol().outcomes.primary[0].time_frame}", total=target)
        return conduct_trial(candidates, as_of=dt.date.fromisoformat(AS_OF), seed=seed, referral=folder / "referral.json",
                             say=lambda line: progress.console.print(f"  {line}"), advance=lambda: progress.advance(task))


def _safety(cutoff: dt.date) -> None:
    from django.utils.timezone import localtime

    from trialdesk.edc.adverse_events.service import cut, open_suggestions, reports_due, safety_status

    data = cut(cutoff)
    status = safety_status(data)
    table = Table(title=f"Stopping rules on the data cut of {cutoff}", title_justify="left")
    table.add_column("rule")
    for rule in status.rules:
        table.add_row(rule.sentence())
    out.print(table)
    if status.bayes is not None:
        out.print(f"Bayesian monitor: {status.bayes.sentence()}", highlight=False)
    for r in reports_due(data):
        out.print(f"SAE clock: {r.ae_id} {r.rule_id} to {r.recipient}: due {r.due_at:%Y-%m-%d %H:%M %Z}, {r.status}"
                  + (f" at {localtime(r.submitted_at):%Y-%m-%d %H:%M %Z}" if r.submitted_at else ""))
    out.print(f"open suggestions from labs and vital signs: {len(open_suggestions(data))}")


def _reports(folder: Path, cutoff: dt.date, sae_id: str = "") -> Path:
    """The data cut as the EDC exports it, then the report and export commands on it, and the DSMB report."""
    from trialdesk.edc.adverse_events.service import cut, medwatch, recorded_decisions, safety_status
    from trialdesk.edc.web import protocol
    from trialdesk.safety.dsmb_pdf import render_pdf
    from trialdesk.safety.dsmb_report import build_report, render_html

    reports = folder / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    data = cut(cutoff)
    data_file = reports / "data_cut.json"
    data_file.write_text(data.model_dump_json(indent=2), encoding="utf-8")
    _run(["report", "primary-outcome", "--data", str(data_file), "--out", str(reports / "primary_outcome")])
    _run(["report", "participant-flow", "--data", str(data_file), "--out", str(reports / "participant_flow")])
    _run(["export", "ctgov-results", "--data", str(data_file), "--out", str(reports / "ctgov_results.json")])
    _run(["export", "sdtm", "--data", str(data_file), "--out", str(reports / "sdtm")])
    _run(["export", "odm", "--data", str(data_file), "--out", str(reports / "odm.xml")])
    out.print(Rule("[bold]DSMB safety report"))
    report = build_report(data, protocol(), safety_status(data), recorded_decisions())
    (reports / "dsmb_report.html").write_text(render_html(report), encoding="utf-8")
    (reports / "dsmb_report.pdf").write_bytes(render_pdf(report))
    out.print(f"wrote {reports / 'dsmb_report.html'}\nwrote {reports / 'dsmb_report.pdf'}")
    if sae_id:  # the SAE as the PI would print it for the sponsor and the FDA (the print is audited)
        from trialdesk.edc.accounts.models import User
        from trialdesk.edc.adverse_events.models import AdverseEvent
        from trialdesk.safety.medwatch import render_html as medwatch_html
        from trialdesk.safety.medwatch_pdf import render_pdf as medwatch_pdf

        pi, ae = User.objects.get(username="pi"), AdverseEvent.objects.get(pk=int(sae_id.removeprefix("AE-")))
        (reports / f"medwatch_{sae_id}.html").write_text(medwatch_html(medwatch(pi, ae, fmt="html")), encoding="utf-8")
        (reports / f"medwatch_{sae_id}.pdf").write_bytes(medwatch_pdf(medwatch(pi, ae, fmt="pdf")))
        out.print(f"wrote {reports / f'medwatch_{sae_id}.html'} and .pdf (MedWatch 3500A-style summary of the SAE)")
    return reports


def _where_to_look(folder: Path, reports: Path, done: Conducted, address: str) -> None:
    from trialdesk.edc.demo_trial import ACCOUNTS, PASSWORD
    from trialdesk.edc.permissions import ROLES

    out.print(Rule("[bold]the trial, as conducted"))
    screened = done.screened - done.pending  # as the DSMB report counts: entries with a screening decision
    out.print(f"  screened {screened} (screen failed {done.screen_failed}); enrolled {len(done.enrolled)}: {', '.join(done.enrolled)}")
    out.print(f"  the next eligible person was refused: {done.refused_enrolment}")
    out.print(f"  {done.pending} more pre-screen candidates wait in the screening log for the PI's review and signature")
    out.print(f"  adverse events: {done.adverse_events}; SAE {done.sae}; {'; '.join(done.sae_reports)}")
    out.print(f"  confirmed from a lab suggestion: {done.confirmed_suggestion}")
    out.print(f"  DSMB interim decision: {done.dsmb_decision}")
    from trialdesk.edc.web import protocol

    out.print(f"  data cut {done.cutoff}; every participant completed {protocol().outcomes.primary[0].time_frame} of follow-up")
    accounts = Table(title=f"Demo accounts (password for every account: {PASSWORD})", title_justify="left")
    for col in ("user", "role", "name", "look at"):
        accounts.add_column(col)
    look = {"pi": "Screening (worksheets waiting for your signature), Safety, DSMB report",
            "sub_investigator": "Participants, Adverse events",
            "coordinator": "Screening, Participants (infusions, visits, forms), Adverse events, Queries to answer",
            "data_manager": "Queries, Results and exports (refused while a query is open), Audit trail",
            "monitor": "Queries (one answered, waiting to be closed), source data verification on a participant, Audit trail",
            "dsmb": "Safety dashboard and DSMB report — subject ids only, no names", "sponsor": "Safety, DSMB report, exports",
            "admin": "Users"}
    for username, role, first, last in ACCOUNTS:
        accounts.add_row(username, ROLES[role], f"{first} {last}", look[role])
    out.print(accounts)
    out.print(Rule("[bold]where to look"))
    out.print(f"  the trial desk: {address}")
    out.print(f"  pre-screen: {folder / 'screen'}/funnel.csv, candidates.csv, statuses.parquet, evidence.parquet, quality.csv")
    out.print(f"  printable eligibility worksheet of the FHIR referral: {folder / 'worksheet.html'}")
    out.print(f"  stopping rules' operating characteristics: {folder / 'stopping_rules.png'}")
    out.print(f"  primary outcome (counts and plot): {reports / 'primary_outcome'}")
    out.print(f"  DSMB report: {reports / 'dsmb_report.html'} and .pdf; the SAE's MedWatch summary: {reports}/medwatch_*.html")
    out.print(f"  ClinicalTrials.gov results: {reports / 'ctgov_results.json'};  SDTM: {reports / 'sdtm'};  ODM: {reports / 'odm.xml'}")
    out.print(f"  the trial desk's database: {folder / 'trialdesk-data' / 'trialdesk.sqlite3'}")


def demo(
    persons: int = typer.Option(20_000, "--persons", help="people in the synthetic hospital"),
    folder: Path = typer.Option(Path("trialdesk-demo"), "--out", help="where the demo writes its files"),
    seed: int = typer.Option(20191105, "--seed"),
    no_serve: bool = typer.Option(False, "--no-serve", help="build everything, then exit instead of serving the trial desk"),
    host: str = typer.Option("127.0.0.1", help="address the trial desk listens on"),
    port: int = typer.Option(8000, help="port the trial desk listens on"),
) -> None:
    """Run the whole trial as a demo: pre-screen a synthetic hospital, conduct the trial in the trial desk, report, serve."""
    started = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    _run(["protocol", "show", DEMO_PROTOCOL])
    hospital = folder / "hospital.duckdb"
    _run(["synth", "omop", "--persons", str(persons), "--seed", str(seed), "--as-of", AS_OF, "--out", str(hospital), "--force"])
    _run(["screen", "--omop", str(hospital), "--as-of", AS_OF, "--out", str(folder / "screen"), "--active-within", "24m",
          "--protocol", DEMO_PROTOCOL])
    referral = _referral(folder)
    _run(["patient", "check", str(referral), "--as-of", AS_OF, "--protocol", DEMO_PROTOCOL])
    _run(["patient", "check", str(referral), "--as-of", AS_OF, "--format", "html", "--out", str(folder / "worksheet.html"),
          "--protocol", DEMO_PROTOCOL])
    _run(["safety", "simulate", "--plot", str(folder / "stopping_rules.png"), "--protocol", DEMO_PROTOCOL])
    marks = [("pre-screen and safety simulation", time.monotonic())]
    out.print(Rule("[bold]the trial, conducted in the trial desk"))
    database = _desk(folder)
    out.print(f"trial desk database: {database}")
    done = _conduct(folder, seed)
    marks.append(("trial conducted in the trial desk", time.monotonic()))
    assert done.cutoff is not None
    out.print(Rule("[bold]safety rules"))
    _safety(done.cutoff)
    reports = _reports(folder, done.cutoff, done.sae_id)
    _run(["audit", "verify"])
    marks.append(("safety rules, reports and audit check", time.monotonic()))
    address = f"http://{host}:{port}/"
    _where_to_look(folder, reports, done, address if not no_serve else f"{address} (after: TRIALDESK_DEBUG=1"
                   f" TRIALDESK_PROTOCOL={DEMO_PROTOCOL} TRIALDESK_DATA_DIR={database.parent} trialdesk serve)")
    steps, last = [], started
    for name, at in marks:
        steps.append(f"{name} {at - last:.0f} s")
        last = at
    out.print(f"[bold]demo built in {time.monotonic() - started:.0f} s[/] ({'; '.join(steps)})")
    if no_serve:
        return
    from trialdesk.edc.commands import serve

    serve(host=host, port=port, production=False, threads=8)

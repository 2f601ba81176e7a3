"""`trialdesk demo --no-serve` on a small hospital, checked as a clinician would check the trial it ran:
ten enrolled and no eleventh, two infusions each inside the protocol's dose range, the SAE reported
on its clock, the primary outcome counting the adverse events the database holds, an intact audit trail.

The demo runs in its own process (it configures Django for its own SQLite database); the checks read
that database directly and run `trialdesk audit verify` on it."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

CLI = "import sys; from trialdesk.cli import app; sys.argv[0] = 'trialdesk'; app()"


def _env(data_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIALDESK_", "DJANGO_")) and k != "DATABASE_URL"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"), env.get("PYTHONPATH", "")])
    env["COLUMNS"] = "160"
    if data_dir is not None:
        env["TRIALDESK_DATA_DIR"] = str(data_dir)
    return env


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("demo")
    run = subprocess.run([sys.executable, "-c", CLI, "demo", "--no-serve", "--persons", "3000", "--out", str(folder)],
                         env=_env(), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return folder, run.stdout


def _db(folder: Path) -> sqlite3.Connection:
    con = sqlite3.connect(folder / "trialdesk-data" / "trialdesk.sqlite3")
    con.row_factory = sqlite3.Row
    return con


@pytest.mark.slow
def test_ten_are_enrolled_and_the_eleventh_eligible_person_is_refused(demo: tuple[Path, str]) -> None:
    folder, output = demo
    con = _db(folder)
    assert con.execute("select count(*) from participants_participant").fetchone()[0] == 10
    waiting = con.execute("select s.number from screening_screeningentry s join participants_consent c on c.screening_id = s.id"
                          " where s.outcome = 'eligible' and s.id not in (select screening_id from participants_participant)").fetchall()
    assert waiting, "an eligible, consented person should be left over once the target was reached"
    assert "enrolment target of 10 participants is reached" in " ".join(output.split())
    firsts = sorted(dt.date.fromisoformat(r[0]) for r in con.execute("select date from dosing_infusion where number = 1"))
    assert all((b - a).days >= 14 for a, b in itertools.pairwise(firsts)), f"stagger rule broken: {firsts}"


@pytest.mark.slow
def test_every_participant_has_two_infusions_within_the_dose_range(demo: tuple[Path, str]) -> None:
    con = _db(demo[0])
    rows = con.execute("select p.subject_id, i.number, i.weight_kg, i.total_cells, i.dose_per_kg from dosing_infusion i"
                       " join participants_participant p on p.id = i.participant_id").fetchall()
    by_subject: dict[str, list[int]] = {}
    for r in rows:
        by_subject.setdefault(r["subject_id"], []).append(r["number"])
        assert 0.5e6 <= r["total_cells"] / r["weight_kg"] <= 1.0e6, dict(r)
        assert r["dose_per_kg"] == pytest.approx(r["total_cells"] / r["weight_kg"])
    assert len(by_subject) == 10 and all(sorted(n) == [1, 2] for n in by_subject.values()), by_subject


@pytest.mark.slow
def test_six_months_of_visits_and_mostly_mild_adverse_events(demo: tuple[Path, str]) -> None:
    con = _db(demo[0])
    assert con.execute("select count(*) from visits_visit where done_on is null").fetchone()[0] == 0
    assert con.execute("select count(distinct participant_id) from visits_visit where code = 'M6'").fetchone()[0] == 10
    grades = [r[0] for r in con.execute("select grade from adverse_events_adverseevent")]
    assert len(grades) >= 10 and sum(g <= 2 for g in grades) / len(grades) >= 0.8, grades
    reactions = con.execute("select a.onset, a.participant_id from adverse_events_adverseevent a where a.term = 'Infusion related reaction'"
                            " and not exists (select 1 from dosing_infusion i where i.participant_id = a.participant_id"
                            " and i.date = a.onset)").fetchall()
    assert reactions == [], "an infusion reaction should start on an infusion day"
    suggested = con.execute("select term from adverse_events_adverseevent where suggested_from != ''").fetchall()
    assert [r[0] for r in suggested] == ["Alanine aminotransferase increased"]
    assert con.execute("select count(*) from participants_participant where status = 'completed'").fetchone()[0] == 10


@pytest.mark.slow
def test_the_sae_was_reported_within_its_24_hour_clock(demo: tuple[Path, str]) -> None:
    con = _db(demo[0])
    (sae,) = con.execute("select id, learned_at, seriousness from adverse_events_adverseevent where serious = 1").fetchall()
    assert json.loads(sae["seriousness"]) == ["hospitalisation"]
    reports = {r["rule_id"]: r["submitted_at"] for r in con.execute("select rule_id, submitted_at from adverse_events_saereport"
                                                                   " where adverse_event_id = ?", (sae["id"],))}
    learned = dt.datetime.fromisoformat(sae["learned_at"])
    assert dt.datetime.fromisoformat(reports["R1"]) - learned <= dt.timedelta(hours=24)
    assert "R4" in reports and con.execute("select count(*) from adverse_events_followup").fetchone()[0] == 1


@pytest.mark.slow
def test_the_sponsor_investigator_assessed_the_saes_expectedness_as_not_listed(demo: tuple[Path, str]) -> None:
    con = _db(demo[0])
    (sae_id,) = con.execute("select id from adverse_events_adverseevent where serious = 1").fetchone()
    rows = con.execute("select a.expected, u.role, a.suggestion from safety_expectednessassessment a join accounts_user u"
                       " on u.id = a.assessed_by_id where a.adverse_event_id = ?", (sae_id,)).fetchall()
    assert [(r["expected"], r["role"]) for r in rows] == [(0, "pi")] and "not listed" in rows[0]["suggestion"]


def test_the_demo_says_the_bayesian_monitors_verdict_in_words(demo: tuple[Path, str]) -> None:
    said = " ".join(demo[1].split())
    assert "Bayesian monitor: 0 of 10 observed with a qualifying event" in said and "not above 80%" in said
    assert "Posterior(" not in said


@pytest.mark.slow
def test_reports_exist_and_the_primary_outcome_counts_the_adverse_events_in_the_database(demo: tuple[Path, str]) -> None:
    folder = demo[0]
    reports = folder / "reports"
    for name in ("primary_outcome/primary_outcome.png", "dsmb_report.html", "dsmb_report.pdf", "ctgov_results.json", "sdtm/ae.csv",
                 "sdtm/ae.xpt", "participant_flow/participant_flow.csv"):
        assert (reports / name).stat().st_size > 0, name
    con = _db(folder)
    in_db = con.execute("select count(*) from adverse_events_adverseevent").fetchone()[0]
    related = con.execute("select count(*) from adverse_events_adverseevent where relatedness in ('possibly', 'probably', 'definitely')"
                          ).fetchone()[0]
    severe = con.execute("select count(*) from adverse_events_adverseevent where grade >= 3").fetchone()[0]
    rows = list(csv.DictReader((reports / "primary_outcome" / "primary_outcome_counts.csv").read_text().splitlines()))
    total = next(r for r in rows if r["scope"] == "total")
    assert (int(total["events"]), int(total["related_events"]), int(total["grade_3_plus_events"])) == (in_db, related, severe)
    assert sum(int(r["events"]) for r in rows if r["scope"] == "infusion") == in_db
    with (reports / "sdtm" / "ae.csv").open() as f:
        assert sum(1 for _ in csv.DictReader(f)) == in_db
    dsmb = (reports / "dsmb_report.html").read_text()
    names = [r[0] for r in con.execute("select family_name from screening_screeningentry where family_name != ''")]
    assert names and not [n for n in names if n in dsmb] and "MRN-" not in dsmb, "the DSMB report must not name participants"


@pytest.mark.slow
def test_the_audit_trail_of_the_demo_verifies(demo: tuple[Path, str]) -> None:
    folder = demo[0]
    from trialdesk.demo import DEMO_PROTOCOL

    # the desk's commands serve one protocol: with two installed, the demo's desk is named, as a deployment names its own
    env = _env(folder / "trialdesk-data") | {"TRIALDESK_PROTOCOL": DEMO_PROTOCOL}
    run = subprocess.run([sys.executable, "-c", CLI, "audit", "verify"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "intact" in run.stdout


@pytest.mark.slow
def test_the_dsmb_signed_an_interim_decision_and_the_sae_has_its_medwatch_summary(demo: tuple[Path, str]) -> None:
    folder, printed = demo
    con = _db(folder)
    (decision,) = con.execute("select id, kind, decided_on, report_cutoff from adverse_events_dsmbdecision").fetchall()
    assert decision["kind"] == "continue" and decision["decided_on"] > decision["report_cutoff"]
    signed = con.execute("select count(*) from signatures_signature where model = 'adverse_events.DsmbDecision' and object_id = ?",
                         (str(decision["id"]),)).fetchone()[0]
    assert signed == 1
    dsmb = (folder / "reports" / "dsmb_report.html").read_text()
    assert decision["report_cutoff"] in dsmb  # the interim decision is listed in the final report
    (sae_id,) = con.execute("select id from adverse_events_adverseevent where serious = 1").fetchone()
    medwatch = (folder / "reports" / f"medwatch_AE-{sae_id}.html").read_text()
    assert "Lung infection" in medwatch and "missing: IND #" in medwatch  # the IND number is not known for this trial
    assert (folder / "reports" / f"medwatch_AE-{sae_id}.pdf").read_bytes().startswith(b"%PDF")
    assert "DSMB interim decision: continue" in printed


@pytest.mark.slow
def test_the_demos_results_exports_read_back_as_a_registry_and_a_reviewer_would(demo: tuple[Path, str]) -> None:
    from trialdesk.analysis.ctgov_results import check_results
    from trialdesk.analysis.define import validate

    folder = demo[0]
    reports = folder / "reports"
    con = _db(folder)
    doc = json.loads((reports / "ctgov_results.json").read_text())
    rs = doc["resultsSection"]
    race = next(m for m in rs["baselineCharacteristicsModule"]["measures"] if m["title"].startswith("Race"))
    counts = {c["title"]: int(c["measurements"][0]["value"]) for c in race["classes"][0]["categories"]}
    entered = con.execute("select count(*) from visits_formentry where form = 'demographics'").fetchone()[0]
    assert entered == 10 and counts["Unknown or Not Reported"] == 0 and sum(counts.values()) == 10  # every participant infused
    # only what the protocol file leaves to the sponsor remains for a PRS reviewer to return
    problems = check_results(doc)
    assert problems and all(p.startswith(("moreInfoModule.pointOfContact", "documentSection")) for p in problems), problems
    sdtm = reports / "sdtm"
    assert validate((sdtm / "define.xml").read_text()) == []
    for name in ("re.csv", "ft.csv", "ts.csv"):
        with (sdtm / name).open() as f:
            assert sum(1 for _ in csv.DictReader(f)) > 0, name
    with (sdtm / "dm.csv").open() as f:
        assert all(r["RFICDTC"] for r in csv.DictReader(f))  # de-identified by shifting, not by blanking
    assert "AEDECOD holds the CTCAE v5.0 term" in (sdtm / "reviewers_guide.html").read_text()

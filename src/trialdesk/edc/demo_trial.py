"""The demo trial, conducted in the trial desk through its own services.

``trialdesk demo`` pre-screens a synthetic hospital; this module then runs NCT03929120 in the
trial desk's database as a study team would, one call per act, so the audit trail, the
e-signatures and every rule of the core are the real ones: accounts for each role, the
pre-screen's candidates put into the screening log (and a FHIR referral), identities recorded,
the PI's signed eligibility decisions, consent, enrolment of the protocol's 10 participants
under the stagger rule (an 11th is refused), two infusions each, six months of visits with
their forms, adverse events (infusion reactions on infusion days, mostly grade 1–2 events, one
SAE with its reports and follow-up, one AE confirmed from a lab suggestion), queries and source
data verification, and the completion of follow-up.

Everything random comes from one seeded :class:`random.Random`, so a seed gives the same trial.
Clinical dates follow the demo's pre-screen date (``as_of``); the audit trail and signatures
carry the real instants at which the demo ran them, as they would in any back-entry.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.utils import timezone

from trialdesk.terminology.ctcae import catalogue
from trialdesk.trial.errors import ConductError

#: one account per role (username, role, first name, last name); every demo account has PASSWORD
ACCOUNTS: tuple[tuple[str, str, str, str], ...] = (
    ("pi", "pi", "Ines", "Moreau"),
    ("subi", "sub_investigator", "Samuel", "Okafor"),
    ("coordinator", "coordinator", "Cora", "Quinn"),
    ("datamanager", "data_manager", "Dana", "Whitfield"),
    ("monitor", "monitor", "Milo", "Brandt"),
    ("dsmb", "dsmb", "Dorothea", "Santos"),
    ("sponsor", "sponsor", "Sofia", "Lindqvist"),
    ("admin", "admin", "Adam", "Kowalski"),
)
PASSWORD = "trialdesk-demo-2024"
ICF_VERSION = "1.0 (2019-10-01)"

_GIVEN = {"female": ["Maria", "Linda", "Patricia", "Susan", "Carmen", "Joan", "Aisha", "Helen", "Rosa", "Grace", "Diane", "Mei"],
          "male": ["James", "Robert", "Carlos", "David", "Thomas", "Ahmed", "Walter", "Kenji", "Frank", "Luis", "Peter", "Samuel"]}
_FAMILY = ["Alvarez", "Bennett", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Iyer", "Jensen", "Kowalczyk", "Lopez",
           "Murphy", "Nguyen", "Olsen", "Patel", "Reyes", "Schmidt", "Turner", "Williams"]

#: what happens to the n-th person screened (the rest are enrolled while places remain)
_FATES = {2: "abnormal_labs", 5: "declines_contraception", 8: "declines_consent"}

# reference ranges (lower, upper) in the forms' units; sex-specific where laboratories report them so
_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "female": {"hgb": (12.0, 15.5), "wbc": (3.4, 9.6), "neut": (1.56, 6.45), "lym": (0.95, 3.07), "plat": (157, 371),
               "creat": (0.59, 1.04), "ast": (8, 43), "alt": (7, 45)},
    "male": {"hgb": (13.2, 16.6), "wbc": (3.4, 9.6), "neut": (1.56, 6.45), "lym": (0.95, 3.07), "plat": (135, 317),
             "creat": (0.74, 1.35), "ast": (8, 48), "alt": (7, 55)},
}
_DECIMALS = {"hgb": 1, "wbc": 1, "neut": 2, "lym": 2, "plat": 0, "creat": 2, "ast": 0, "alt": 0}

#: adverse events seen over follow-up: (CTCAE term, relatedness choices)
_FOLLOW_UP_TERMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Cough", ("unrelated", "unlikely")), ("Fatigue", ("unlikely", "possibly")), ("Headache", ("unlikely", "possibly")),
    ("Upper respiratory infection", ("unrelated",)), ("Arthralgia", ("unrelated", "unlikely")), ("Nausea", ("unlikely", "possibly")),
    ("Diarrhea", ("unrelated",)), ("Insomnia", ("unrelated",)), ("Back pain", ("unrelated",)), ("Dyspnea", ("unrelated", "unlikely")),
    ("Sinusitis", ("unrelated",)), ("Myalgia", ("unlikely", "possibly")), ("Dizziness", ("unrelated", "unlikely")),
    ("Rash maculo-papular", ("unlikely", "possibly")), ("Urinary tract infection", ("unrelated",)), ("Constipation", ("unrelated",)),
)


@dataclass(frozen=True)
class Candidate:
    """A row of the pre-screen's candidates.csv with the person's sex and birth date from the CDM."""

    person_id: str
    rank: str
    unknown: str
    needs_review: str
    sex: str
    birth_date: dt.date

    def csv_text(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["rank", "person_id", "overall", "unknown_criteria", "needs_review_criteria"])
        w.writerow([self.rank, self.person_id, "needs_review", self.unknown, self.needs_review])
        return buf.getvalue()


def read_candidates(candidates_csv: Path, hospital: Path) -> list[Candidate]:
    """The pre-screen's candidates in rank order, with sex and birth date read from the OMOP person table."""
    import duckdb

    rows = list(csv.DictReader(candidates_csv.read_text(encoding="utf-8").splitlines()))
    if not rows:
        return []
    ids = [int(r["person_id"]) for r in rows]
    con = duckdb.connect(str(hospital), read_only=True)
    try:
        people = {pid: (g, y, m, d) for pid, g, y, m, d in con.execute(
            "select person_id, gender_concept_id, year_of_birth, month_of_birth, day_of_birth from person where person_id in "
            f"({','.join('?' * len(ids))})", ids).fetchall()}
    finally:
        con.close()
    out = []
    for r in rows:
        gender, year, month, day = people[int(r["person_id"])]
        out.append(Candidate(r["person_id"], r.get("rank", ""), r.get("unknown_criteria", ""), r.get("needs_review_criteria", ""),
                             "female" if gender == 8532 else "male", dt.date(year, month or 6, min(day or 15, 28))))
    return out


@dataclass
class Conducted:
    """What the demo did, for its closing summary."""

    screened: int = 0
    screen_failed: int = 0
    enrolled: list[str] = field(default_factory=list)
    refused_enrolment: str = ""
    adverse_events: int = 0
    sae: str = ""
    sae_id: str = ""
    sae_reports: list[str] = field(default_factory=list)
    dsmb_decision: str = ""
    confirmed_suggestion: str = ""
    queries: int = 0
    pending: int = 0
    cutoff: dt.date | None = None


class _Desk:
    """The study team at work: each method is one act, through the trial desk's services."""

    def __init__(self, rng: random.Random) -> None:
        from trialdesk.edc.accounts.models import User

        self.rng = rng
        self.users = {u.role: u for u in User.objects.all()}
        self.done = Conducted()

    # --- helpers ---------------------------------------------------------------------------------
    def at(self, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        return timezone.make_aware(dt.datetime(day.year, day.month, day.day, hour, minute))

    def jitter(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def done_until(self) -> dt.date:
        from trialdesk.edc.visits.models import Visit

        last = Visit.objects.exclude(done_on=None).order_by("-done_on").values_list("done_on", flat=True).first()
        return last or timezone.localdate()

    # --- screening -------------------------------------------------------------------------------
    def screen(self, candidate: Candidate | None, as_of: dt.date, on: dt.date) -> Any:
        from trialdesk.edc.audit import trail
        from trialdesk.edc.screening.service import import_candidates, screen_by_hand

        coordinator = self.users["coordinator"]
        sex = candidate.sex if candidate else self.rng.choice(["female", "male"])
        given, family = self.rng.choice(_GIVEN[sex]), self.rng.choice(_FAMILY)
        mrn = f"MRN-{self.rng.randint(1_000_000, 9_999_999)}"
        self.done.screened += 1
        if candidate is None:  # the pre-screen ran out of candidates (a small hospital): a referral screened by hand
            birth = dt.date(on.year - self.rng.randint(35, 75), self.rng.randint(1, 12), self.rng.randint(1, 28))
            return screen_by_hand(coordinator, screened_on=on, given_name=given, family_name=family, mrn=mrn, birth_date=birth, sex=sex)
        (entry,) = import_candidates(coordinator, candidate.csv_text(), as_of=as_of, screened_on=on)
        return trail.update(entry, coordinator, changes={"given_name": given, "family_name": family, "mrn": mrn,
                                                         "birth_date": candidate.birth_date, "sex": sex},
                            reason="identity from the clinic chart at the screening visit", version=entry.version)

    def referral_identity(self, entries: Sequence[Any], bundle: Path) -> None:
        """The referral letter names the patient; the worksheet came from the FHIR record without the identity."""
        import json

        from trialdesk.edc.audit import trail

        patients = {e["resource"]["id"]: e["resource"] for e in json.loads(bundle.read_text(encoding="utf-8"))["entry"]
                    if e["resource"]["resourceType"] == "Patient"}
        for entry in entries:
            patient = patients.get(entry.source_ref.rsplit("Patient/", 1)[-1])
            if patient is None:
                continue
            trail.update(entry, self.users["coordinator"], changes={
                "given_name": "Evelyn", "family_name": "Hart", "mrn": f"MRN-{self.rng.randint(1_000_000, 9_999_999)}",
                "birth_date": dt.date.fromisoformat(patient["birthDate"]), "sex": patient.get("gender", "unknown")},
                reason="identity from the referral letter", version=entry.version)

    def sign(self, entry: Any, fate: str, *, by: str = "pi") -> str:
        from trialdesk.edc.screening.service import sign_off
        from trialdesk.edc.web import protocol
        from trialdesk.trial.signoff import open_criteria

        p = protocol()
        answers = {aid: False for _, aid, _ in p.attestation_items()}
        answers.update(consent_and_compliance=True, ipaf=True, no_improvement=True)
        from trialdesk.criteria.status import settled_status

        decisions = {cid: settled_status(p.eligibility.roles[cid]).label for cid in open_criteria(p, entry.snapshot)}
        note = "Screening labs and pregnancy test reviewed; every attestation asked at the screening visit."
        if fate == "abnormal_labs":
            decisions["E8"] = "met"
            note = "Screening creatinine 1.6 mg/dL, above the laboratory's upper limit: excluded (E8)."
        if fate == "declines_contraception":
            answers["contraception"] = True
            note = "Unwilling to use contraception during the trial: excluded (E10)."
        investigator = self.users[by]
        signoff = sign_off(investigator, entry, answers=answers, decisions=decisions, password=PASSWORD,
                           printed_name=investigator.get_full_name(), note=note)
        return signoff.overall

    def consent(self, entry: Any, on: dt.date) -> Any:
        from trialdesk.edc.participants.service import record_consent

        coordinator = self.users["coordinator"]
        entry.refresh_from_db()
        return record_consent(coordinator, entry, icf_version=ICF_VERSION, signed_at=self.at(on, 9, 30),
                              obtained_by=coordinator.get_full_name(), copy_given=True)

    # --- one participant's six months ----------------------------------------------------------------
    def conduct(self, participant: Any, first_infusion: dt.date, *, index: int) -> None:
        weight = round(self.rng.uniform(52, 96), 1)
        sex = participant.screening.sex
        ranges = _RANGES[sex]
        baseline = {k: self.rng.uniform(lo + 0.25 * (hi - lo), hi - 0.3 * (hi - lo)) for k, (lo, hi) in ranges.items()}
        reactions = {n: self._reaction_grade() for n in (1, 2)}
        self._infuse(participant, 1, first_infusion, weight, reactions[1])
        participant.refresh_from_db()
        self._screening_forms(participant, weight, baseline, ranges)
        for v in participant.visits.order_by("day"):
            if v.code == "SCREENING":
                continue
            if v.infusion_number == 2:
                self._infuse(participant, 2, v.target, round(weight + self.rng.uniform(-1.5, 1.5), 1), reactions[2])
                v.refresh_from_db()
            elif v.done_on is None:
                self._visit_date(v, index)
                v.refresh_from_db()
            self._forms_at(v, weight, baseline, ranges, alt_high=(index == 3 and v.code == "D7"))
        self._adverse_events(participant, first_infusion, reactions, index)

    def _reaction_grade(self) -> int:
        roll = self.rng.random()
        return 2 if roll < 0.1 else 1 if roll < 0.35 else 0

    def _infuse(self, participant: Any, number: int, day: dt.date, weight: float, reaction: int) -> None:
        from trialdesk.edc.dosing.service import record_infusion
        from trialdesk.edc.web import protocol

        dose = protocol().study_intervention.dose
        low, high = (dose.min, dose.max) if dose else (5e5, 1e6)
        per_kg = self.rng.uniform(low + 0.1 * (high - low), high - 0.05 * (high - low))
        total = round(per_kg * weight, -5)
        start = dt.time(9, self.rng.choice([0, 10, 15, 30]))
        minutes = 45 + (20 if reaction == 2 else 0)
        stop = (dt.datetime.combine(day, start) + dt.timedelta(minutes=minutes)).time()
        after_temp = 38.2 if reaction else round(self.rng.uniform(36.5, 37.3), 1)
        vitals = {"before": self._infusion_vitals(round(self.rng.uniform(36.4, 37.1), 1)),
                  "during": self._infusion_vitals(round(self.rng.uniform(36.5, 37.4), 1)),
                  "after": self._infusion_vitals(after_temp)}
        record_infusion(self.users["coordinator"], participant, number=number, date=day, started_at=start, stopped_at=stop,
                        weight_kg=weight, total_cells=total, lot=f"LOT-24-{self.rng.randint(100, 999)}",
                        donor_id=f"D-{self.rng.randint(1000, 9999)}",
                        premedication="acetaminophen 650 mg PO and diphenhydramine 25 mg PO, 30 min before",
                        vitals=vitals, interrupted=reaction == 2,
                        interruptions="paused 20 min for chills and flushing; restarted at half rate" if reaction == 2 else "")

    def _infusion_vitals(self, temperature: float) -> dict[str, float]:
        # the codes of the infusion form (trialdesk.edc.dosing.service.VITALS), which the dosing service checks
        return {"sbp": self.rng.randint(110, 140), "dbp": self.rng.randint(64, 86), "pulse": self.rng.randint(64, 96),
                "temp": temperature, "spo2": self.rng.randint(90, 97)}

    def _visit_date(self, v: Any, index: int) -> None:
        from trialdesk.edc.visits.service import record_visit

        before, after = (v.target - v.earliest).days, (v.latest - v.target).days
        day = v.target + dt.timedelta(days=self.jitter(-min(2, before), min(2, after)))
        if index == 5 and v.code == "M2":
            day = v.latest + dt.timedelta(days=3)  # the participant was travelling: done late, flagged out of window
        record_visit(self.users["coordinator"], v, done_on=day, version=v.version,
                     out_of_window_reason="the participant was travelling" if not v.earliest <= day <= v.latest else "")

    def _save(self, v: Any, form_id: str, values: dict[str, Any]) -> None:
        from trialdesk.edc.visits.crf import crf_form
        from trialdesk.edc.visits.service import save_form

        posted = {k: ("yes" if x is True else "no" if x is False else str(x)) for k, x in values.items() if x is not None}
        form = crf_form(form_id, posted)
        if not form.is_valid():
            raise ConductError(form_id, f"demo data for {form_id} at {v.code} does not pass the form: {form.errors.as_text()}")
        save_form(self.users["coordinator"], v, form_id, form.cleaned_data,
                  out_of_window_reason="done at the visit, which was out of window" if v.out_of_window else "")

    def _labs(self, day: dt.date, baseline: dict[str, float], ranges: dict[str, tuple[float, float]], *,
              alt_high: bool = False) -> dict[str, Any]:
        values: dict[str, Any] = {"lb_date": day.isoformat()}
        for k, (lo, hi) in ranges.items():
            x = baseline[k] * self.rng.uniform(0.93, 1.07)
            x = min(max(x, lo + 0.03 * (hi - lo)), hi - 0.03 * (hi - lo))
            if k == "alt" and alt_high:
                x = hi * 1.7  # grade 1 ALT increased (> ULN, baseline normal): the lab suggests an AE
            values[k] = round(x, _DECIMALS[k])
            values[f"{k}_lln"], values[f"{k}_uln"] = lo, hi
        return values

    def _vitals(self, day: dt.date, weight: float, timepoint: str) -> dict[str, Any]:
        return {"vs_date": day.isoformat(), "vs_timepoint": timepoint, "sysbp": self.rng.randint(108, 142),
                "diabp": self.rng.randint(62, 88), "pulse": self.rng.randint(62, 94), "resp": self.rng.randint(14, 20),
                "temp": round(self.rng.uniform(36.3, 37.4), 1), "weight": round(weight + self.rng.uniform(-1.2, 1.2), 1)}

    def _screening_forms(self, participant: Any, weight: float, baseline: dict[str, float], ranges: dict[str, tuple[float, float]]) -> None:
        v = participant.visits.get(code="SCREENING")
        s = participant.screening
        day = v.done_on
        age = day.year - s.birth_date.year - ((day.month, day.day) < (s.birth_date.month, s.birth_date.day))
        self._save(v, "demographics", {"dm_age": age, "dm_sex": s.sex,
                                       "dm_race": self.rng.choice(["white", "white", "black_or_african_american", "asian",
                                                                   "more_than_one_race"]),
                                       "dm_ethnicity": self.rng.choice(["not_hispanic_or_latino", "not_hispanic_or_latino",
                                                                        "hispanic_or_latino"])})
        self._forms_at(v, weight, baseline, ranges)
        if "pregnancy_test" in v.forms:
            childbearing = s.sex == "female" and age < 52
            self._save(v, "pregnancy_test", {"preg_applicable": childbearing, "preg_date": day.isoformat() if childbearing else None,
                                             "preg_method": "urine" if childbearing else None,
                                             "preg_result": "negative" if childbearing else None})

    def _forms_at(self, v: Any, weight: float, baseline: dict[str, float], ranges: dict[str, tuple[float, float]], *,
                  alt_high: bool = False) -> None:
        day = v.done_on
        pre = "pre-infusion" if v.infusion_number else ("screening" if v.code == "SCREENING" else "clinic visit")
        for form_id in v.forms:
            if form_id == "vital_signs":
                self._save(v, form_id, self._vitals(day, weight, pre))
            elif form_id == "laboratory":
                self._save(v, form_id, self._labs(day, baseline, ranges, alt_high=alt_high))
            elif form_id == "spo2":
                self._save(v, form_id, {"spo2_date": day.isoformat(), "oxysat": self.rng.randint(90, 97), "spo2_at_rest": True,
                                        "spo2_o2_flow": self.rng.choice([0, 0, 0, 2])})
            elif form_id == "pulmonary_function":
                fvc = round(self.rng.uniform(1.9, 3.2), 2)
                self._save(v, form_id, {"pft_date": day.isoformat(), "fvc": fvc, "fvc_pct": round(self.rng.uniform(55, 78), 1),
                                        "fev1": round(fvc * self.rng.uniform(0.78, 0.88), 2),
                                        "dlco_pct": round(self.rng.uniform(35, 62), 1)})
            elif form_id == "six_minute_walk":
                self._save(v, form_id, {"smw_date": day.isoformat(), "smw_distance": self.rng.randint(280, 460),
                                        "smw_spo2_nadir": self.rng.randint(84, 91), "smw_borg": self.rng.randint(2, 5)})

    # --- adverse events --------------------------------------------------------------------------------
    def _ae(self, participant: Any, **values: Any) -> Any:
        from trialdesk.edc.adverse_events.service import record_adverse_event

        values.setdefault("learned_at", self.at(values["onset"] + dt.timedelta(days=self.jitter(0, 3)), 10, 15))
        values.setdefault("seriousness", [])
        values.setdefault("serious", False)
        values.setdefault("action_taken", "none")
        ae = record_adverse_event(self.users["coordinator"], participant, **values)
        self.done.adverse_events += 1
        return ae

    def _adverse_events(self, participant: Any, first: dt.date, reactions: dict[int, int], index: int) -> None:
        infusions = {i.number: i for i in participant.infusions.all()}
        for n, grade in reactions.items():
            if grade:
                day = infusions[n].date
                self._ae(participant, verbatim_term="Chills and flushing during infusion",
                         term="Infusion related reaction", grade=grade, onset=day, resolved=day,
                         relatedness=self.rng.choice(["probably", "definitely"]), outcome="recovered",
                         action_taken="infusion_interrupted" if grade == 2 else "treatment_given",
                         description=f"Chills and flushing during infusion {n}, temperature 38.2 C; settled with acetaminophen",
                         learned_at=self.at(day, 10, 40))
            elif self.rng.random() < 0.15:
                day = infusions[n].date + dt.timedelta(days=1)
                self._ae(participant, verbatim_term="Tiredness after infusion",
                         term="Fatigue", grade=1, onset=day, resolved=day + dt.timedelta(days=2),
                         relatedness="possibly", outcome="recovered", description=f"Tired for two days after infusion {n}")
        follow_up_days = 183
        for _ in range(self.rng.randint(1, 4)):
            term, related = self.rng.choice(_FOLLOW_UP_TERMS)
            onset = first + dt.timedelta(days=self.rng.randint(3, follow_up_days - 10))
            grade = 1 if self.rng.random() < 0.7 else 2
            grade = min(g for g in catalogue().term(term).allowed_grades if g >= grade)  # some terms start at grade 2
            resolved = min(onset + dt.timedelta(days=self.rng.randint(2, 21)), first + dt.timedelta(days=follow_up_days - 3))
            self._ae(participant, term=term, grade=grade, onset=onset, resolved=resolved, relatedness=self.rng.choice(related),
                     outcome="recovered", action_taken="treatment_given" if grade == 2 else "none",
                     description=f"{term}, reported at the next visit")
        if index == 6:
            self._sae(participant, first + dt.timedelta(days=74))
        if index == 3:
            self._confirm_lab_suggestion(participant)

    def _sae(self, participant: Any, onset: dt.date) -> None:
        from trialdesk.edc.adverse_events.service import add_follow_up, edit_adverse_event, record_report

        coordinator = self.users["coordinator"]
        learned = self.at(onset + dt.timedelta(days=1), 8, 40)
        ae = self._ae(participant, verbatim_term="Right lower lobe pneumonia",
                      term="Lung infection", grade=3, onset=onset, resolved=None, serious=True,
                      seriousness=["hospitalisation"], relatedness="unlikely", outcome="recovering", action_taken="treatment_given",
                      learned_at=learned, description="Admitted with fever and right lower lobe consolidation; IV antibiotics")
        record_report(coordinator, ae, rule_id="R1", submitted_at=learned + dt.timedelta(hours=17))
        from trialdesk.edc.safety.service import assess_expectedness

        # the sponsor-investigator's expectedness call (21 CFR 312.32(a)): not listed, so unexpected; being judged unlikely
        # related it needs no IND safety report, which the report history shows
        assess_expectedness(self.users["pi"], ae, expected=False, reason="")
        received = learned + dt.timedelta(days=8, hours=2)
        add_follow_up(coordinator, ae, received_at=received,
                      information="Discharge summary: afebrile on day 6, discharged on oral antibiotics on day 8; cultures negative")
        ae.refresh_from_db()
        edit_adverse_event(coordinator, ae, changes={"outcome": "recovered", "resolved": onset + dt.timedelta(days=12)},
                           reason="follow-up: discharge summary received", version=ae.version)
        record_report(coordinator, ae, rule_id="R4", submitted_at=received + dt.timedelta(days=5))
        self.done.sae = f"{ae.ae_id} ({participant.subject_id}, Lung infection grade 3, hospitalisation)"
        self.done.sae_id = ae.ae_id
        self.done.sae_reports = ["R1 submitted 17 h after the site learned of it",
                                 "expectedness assessed by the PI: unexpected (not in the reference safety information);"
                                 " unlikely related, so no IND safety report",
                                 "R4 (follow-up) submitted 5 days after receipt"]

    def _confirm_lab_suggestion(self, participant: Any) -> None:
        from trialdesk.edc.adverse_events.service import open_suggestions

        for s in (o.suggestion for o in open_suggestions()):
            if s.subject_id == participant.subject_id and s.term == "Alanine aminotransferase increased":
                ae = self._ae(participant, verbatim_term="Raised ALT",
                              term=s.term, grade=s.grade, onset=s.date, resolved=s.last_abnormal + dt.timedelta(days=14),
                              relatedness="possibly", outcome="recovered", suggested_from=s.source_label,
                              description="ALT above the upper limit at the week-1 visit; normal at the next draw, no treatment")
                self.done.confirmed_suggestion = f"{ae.ae_id} ({participant.subject_id}, {s.term} grade {s.grade}, from {s.source_label})"
                return
        raise ConductError("suggestions", f"the planted ALT rise of {participant.subject_id} gave no suggestion; the demo data is wrong")

    def dsmb_review(self, participants: Sequence[Any]) -> None:
        """The DSMB's interim review once half the participants are a month past their first
        infusion: the report is read and a signed decision to continue recorded."""
        from trialdesk.edc.adverse_events.service import record_dsmb_decision

        half = participants[len(participants) // 2 - 1] if len(participants) >= 2 else participants[-1]
        first = half.infusions.order_by("number").first()
        interim = first.date + dt.timedelta(days=35)
        decided = interim + dt.timedelta(days=7)
        decision = record_dsmb_decision(
            self.users["dsmb"], kind="continue", decided_on=decided, report_cutoff=interim, password=PASSWORD,
            printed_name=self.users["dsmb"].get_full_name(), rationale=(
                f"Interim review of the report cut on {interim}: no stopping rule met, no related grade 3 or higher event, "
                "infusion reactions mild and transient. Enrolment and dosing continue as planned."))
        self.done.dsmb_decision = f"continue, signed {decision.decided_on} (report cut {interim})"

    # --- monitoring ------------------------------------------------------------------------------------
    def monitor(self, participants: Sequence[Any]) -> None:
        from trialdesk.edc.quality.service import answer_query, close_query, raise_query, verify_source

        monitor, coordinator = self.users["monitor"], self.users["coordinator"]
        from trialdesk.edc.quality.service import verify_fields
        from trialdesk.edc.visits.models import FormEntry

        for p in participants[:5]:
            for infusion in p.infusions.all():
                verify_source(monitor, p, infusion, note="checked against the infusion record and the pharmacy log")
        for entry in FormEntry.objects.filter(visit__participant__in=list(participants[:3]), form="vital_signs").exclude(data={}):
            verify_fields(monitor, entry, note="checked against the clinic's vital-signs sheet")
        # (participant, visit code, form, field): each query on its data point ("" for the participant as a whole)
        asks = [(1, "", "", "", "Infusion 1: the weight on the infusion record differs from the clinic scale; please confirm."),
                (4, "M3", "pulmonary_function", "fvc_pct", "FVC percent predicted: which reference equations were used (GLI 2012)?"),
                (7, "D7", "laboratory", "", "Please file the laboratory's reference ranges for the week-1 panel.")]
        asks = [a for a in asks if a[0] < len(participants)]
        for i, (n, code, form, point, text) in enumerate(asks):
            p = participants[n]
            visit = p.visits.filter(code=code).first() if code else None
            q = raise_query(monitor, p, text=text, origin="monitor", visit=visit, form=form if visit else "",
                            field=point if visit else "")
            q = answer_query(coordinator, q, answer="Checked against the source; the entry is correct as recorded.", version=q.version)
            if i < len(asks) - 1:  # the last one waits for the monitor to close it
                close_query(monitor, q, version=q.version)
            self.done.queries += 1


def conduct_trial(candidates: Sequence[Candidate], *, as_of: dt.date, seed: int, referral: Path | None = None, enrol: int | None = None,
                  say: Callable[[str], None] = print, advance: Callable[[], None] = lambda: None) -> Conducted:
    """Run the whole trial in the configured trial-desk database (which must be empty and migrated).

    ``enrol`` stops after that many participants (default: the protocol's target, then an eleventh is refused);
    tests use it to leave places for a coordinator to fill in the browser."""
    from trialdesk.edc.accounts.models import User
    from trialdesk.edc.accounts.service import create_user
    from trialdesk.edc.participants.models import Participant
    from trialdesk.edc.participants.service import complete_study
    from trialdesk.edc.participants.service import enrol as enrol_participant
    from trialdesk.edc.screening.service import screen_fhir
    from trialdesk.edc.web import protocol

    if User.objects.exists():
        raise ConductError("database", "the trial desk's database already has accounts; the demo needs an empty one")
    rng = random.Random(seed)
    for username, role, first, last in ACCOUNTS:
        create_user(username, role, PASSWORD, first_name=first, last_name=last, email=f"{username}@demo.trialdesk.invalid",
                    must_change_password=False)
    desk = _Desk(rng)
    p = protocol()
    target, stagger = p.enrolment.target, p.enrolment.stagger_days
    if referral is not None:
        entries = screen_fhir(desk.users["coordinator"], referral, as_of=as_of, screened_on=as_of + dt.timedelta(days=1),
                              label="referral from pulmonology")
        desk.referral_identity(entries, referral)
        for e in entries:
            say(f"{e.number} FHIR referral: the engine finds it {e.engine_overall.replace('_', ' ')}"
                f" ({', '.join(e.failed_criteria) or 'nothing excludes'})")
        desk.done.screened += len(entries)
        desk.done.screen_failed += sum(e.outcome == "screen_failed" for e in entries)
    queue = list(candidates)
    first_infusion = as_of + dt.timedelta(days=24)
    n = 0
    participants: list[Any] = []
    while True:
        n += 1
        screened_on = first_infusion - dt.timedelta(days=rng.randint(16, 24))
        screened_on = max(screened_on, as_of + dt.timedelta(days=1))
        entry = desk.screen(queue.pop(0) if queue else None, as_of, screened_on)
        fate = _FATES.get(n, "enrol")
        if desk.sign(entry, fate, by="sub_investigator" if n % 4 == 0 else "pi") != "eligible":
            desk.done.screen_failed += 1
            say(f"{entry.number} screen failed at the investigator's sign-off ({fate.replace('_', ' ')})")
            continue
        if fate == "declines_consent":
            say(f"{entry.number} eligible, but declined to take part after the consent discussion")
            continue
        desk.consent(entry, screened_on)
        entry.refresh_from_db()
        enrolled_on = screened_on + dt.timedelta(days=rng.randint(2, 6))
        try:
            participant = enrol_participant(desk.users["coordinator"], entry, enrolled_on=enrolled_on,
                                            planned_first_infusion=first_infusion)
        except ConductError as refusal:
            if len(participants) < target:
                raise
            desk.done.refused_enrolment = f"{entry.number}: {refusal.message}"
            say(f"{entry.number} eligible and consented, but enrolment refused: {refusal.message}")
            break
        participants.append(participant)
        desk.done.enrolled.append(participant.subject_id)
        say(f"{participant.subject_id} enrolled ({entry.number}); first infusion {first_infusion}")
        desk.conduct(participant, first_infusion, index=len(participants))
        advance()
        first_infusion += dt.timedelta(days=stagger + rng.randint(0, 6))
        if enrol is not None and len(participants) >= enrol:
            break
    for _ in range(2):  # the pre-screen's next candidates, screened last week: waiting for the PI's review
        if queue:
            desk.screen(queue.pop(0), as_of, min(desk.done_until(), timezone.localdate()))
            desk.done.pending += 1
    desk.monitor(participants)
    if participants:
        desk.dsmb_review(participants)
    for participant in Participant.objects.order_by("subject_id"):
        last = participant.visits.order_by("-day").first()
        complete_study(desk.users["pi"], participant, on=last.done_on, version=participant.version)
    desk.done.cutoff = max(v.done_on for q in Participant.objects.all() for v in q.visits.all() if v.done_on)
    return desk.done

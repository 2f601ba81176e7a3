"""A data cut of NCT02013700 (AETHER) for the cohort and outcome tests: three cohorts of three,
one total-dose infusion each, cohort n dosed from day 40 × (n - 1)."""

from __future__ import annotations

import datetime as dt

from trialdesk.protocol.model import Cohort, Protocol
from trialdesk.trial.records import AdverseEvent, Infusion, Participant, TrialData

START = dt.date(2014, 1, 6)
CELLS = {"C1": 20e6, "C2": 100e6, "C3": 200e6}


def subjects(cohorts: tuple[str, ...] = ("C1", "C2", "C3")) -> dict[str, str]:
    return {f"{c}-{k}": c for c in cohorts for k in (1, 2, 3)}


def infusion_day(subject_id: str) -> dt.date:
    cohort, k = subject_id.split("-")
    return START + dt.timedelta(days=40 * (int(cohort[1]) - 1) + 7 * (int(k) - 1))


def ae(aid: str, subject_id: str, day: int, *, serious: bool, grade: int = 3, relatedness: str = "unrelated",
       term: str = "Dyspnoea") -> AdverseEvent:
    """An event ``day`` days after the subject's infusion (day 0 = infusion day)."""
    return AdverseEvent.model_validate({
        "id": aid, "subject_id": subject_id, "term": term, "meddra_code": 10013968, "soc": "Respiratory",
        "grade": grade, "onset": infusion_day(subject_id) + dt.timedelta(days=day), "serious": serious,
        "seriousness": ["hospitalisation"] if serious else [], "relatedness": relatedness,
    })


def cut(assignments: dict[str, str], events: list[AdverseEvent], cutoff: dt.date | None = None,
        undosed: tuple[str, ...] = (), cells: dict[str, float] | None = None) -> TrialData:
    """The participants of ``assignments`` (subject id -> cohort), each dosed at their cohort's level (``cells``, by
    cohort; AETHER's by default) but the ``undosed``."""
    people = [Participant(subject_id=s, age_at_enrolment=70, sex="male", consented_on=infusion_day(s) - dt.timedelta(days=20),
                          enrolled_on=infusion_day(s) - dt.timedelta(days=10)) for s in assignments]
    per_cohort = cells or CELLS
    infusions = [Infusion(subject_id=s, number=1, date=infusion_day(s), weight_kg=80, total_cells=per_cohort[c], lot="L1", donor_id="D1")
                 for s, c in assignments.items() if s not in undosed]
    return TrialData(protocol_id="nct02013700", cutoff=cutoff or dt.date(2015, 1, 1), participants=people,
                     infusions=infusions, adverse_events=events)


def expansion(aether: Protocol, **gaps: int) -> Protocol:
    """AETHER with a 3+3 expansion cohort listed: C2 gives DL1 again (after one DLT in three), C3 is DL2."""
    assert aether.dose_finding is not None
    cohorts = [Cohort(id="C1", dose_level="DL1", size=3, **gaps), Cohort(id="C2", dose_level="DL1", size=3, **gaps),
               Cohort(id="C3", dose_level="DL2", size=3, **gaps)]
    return aether.model_copy(update={"dose_finding": aether.dose_finding.model_copy(update={"cohorts": cohorts})})


EXPANSION_CELLS = {"C1": 20e6, "C2": 20e6, "C3": 100e6}

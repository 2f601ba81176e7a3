"""The ClinicalTrials.gov API v2 ``resultsSection`` of a data cut.

Four modules: ``participantFlowModule``, ``baselineCharacteristicsModule`` (age, sex, race and
ethnicity), ``outcomeMeasuresModule`` (the primary outcome as registered, counted per infusion)
and ``adverseEventsModule``, following 42 CFR 11.48(a)(4): every serious adverse event; other
(non-serious) adverse events whose frequency in the arm exceeds the frequency threshold (at most
5 %; 0 lists them all); all-cause mortality. Events are those of the primary outcome's window
(from the first infusion to its time frame), attributed as :mod:`.attribution` reads them, graded
and named with CTCAE v5.0 (``sourceVocabulary`` "CTCAE (5.0)"), systematically assessed at every
visit (``SYSTEMATIC_ASSESSMENT``).

Field names, nesting and value types are API v2's. Checked with the search tool (code corpus)
against two independent descriptions of the API v2 study record: a Coda pack schema of the
study structure (``ResultsSectionSchema``: ``participantFlowModule.groups/periods[].milestones
[].achievements[].{groupId,numSubjects}`` and ``dropWithdraws[].reasons``; ``baseline
CharacteristicsModule.groups/denoms[].counts[].{groupId,value}/measures[].{title,paramType,
dispersionType,unitOfMeasure,classes[].categories[].measurements[].{groupId,value,spread}}``;
``outcomeMeasures[].{type,title,description,populationDescription,reportingStatus,paramType,
unitOfMeasure,timeFrame,groups,denoms,classes}``; ``eventGroups[].{id,title,description,
deathsNumAffected,deathsNumAtRisk,seriousNumAffected,seriousNumAtRisk,otherNumAffected,
otherNumAtRisk}`` as numbers; ``seriousEvents/otherEvents[].{term,organSystem,sourceVocabulary,
assessmentType,notes,stats[].{groupId,numEvents,numAffected,numAtRisk}}``; ``frequencyThreshold``
as a string), and a pydantic model of the API v2 study structure with its enumerations
(``EventAssessment`` SYSTEMATIC_ASSESSMENT, ``OutcomeMeasureType`` PRIMARY, ``MeasureParam``
COUNT_OF_PARTICIPANTS / MEAN / NUMBER, ``MeasureDispersionType`` STANDARD_DEVIATION,
``ReportingStatus`` POSTED; ``FlowStats.numSubjects`` and ``DenomCount.value`` as strings).
Both were read through the search tool's index; the tests hold the field lists.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from typing import Any

from trialdesk.analysis.attribution import Attributed
from trialdesk.analysis.data_cut import check_enrolled
from trialdesk.analysis.disposition import ctgov_reason, has_left
from trialdesk.analysis.participant_flow import participant_flow
from trialdesk.analysis.primary_outcome import PrimaryOutcome, primary_outcome
from trialdesk.protocol.model import Protocol
from trialdesk.trial.records import Participant, TrialData

SOURCE_VOCABULARY = "CTCAE (5.0)"
ASSESSMENT = "SYSTEMATIC_ASSESSMENT"
MAX_THRESHOLD = 5.0
RACES = (
    "American Indian or Alaska Native", "Asian", "Native Hawaiian or Other Pacific Islander", "Black or African American",
    "White", "More than one race", "Unknown or Not Reported",
)
ETHNICITIES = ("Hispanic or Latino", "Not Hispanic or Latino", "Unknown or Not Reported")


class ThresholdError(ValueError):
    pass


def _category(value: str, categories: tuple[str, ...]) -> str:
    """The NIH/OMB category a recorded value names (any case), else Unknown or Not Reported."""
    for c in categories:
        if value.strip().casefold() == c.casefold():
            return c
    return categories[-1]


def _arm(protocol: Protocol) -> tuple[str, str]:
    arm = protocol.arms[0]
    return arm.label, arm.description


def _participant_flow(data: TrialData, protocol: Protocol, note: str | None) -> dict[str, Any]:
    flow = participant_flow(data, protocol, allow_empty=True)
    title, description = _arm(protocol)
    started = [p for p in data.participants if any(i.subject_id == p.subject_id for i in data.infusions)]
    left = [p for p in started if has_left(p) and p.subject_id not in flow.completed_ids]
    ongoing = len(started) - len([p for p in started if p.subject_id in flow.completed_ids]) - len(left)

    def achieved(n: int) -> list[dict[str, Any]]:
        return [{"groupId": "FG000", "numSubjects": str(n)}]

    milestones = [{"type": "STARTED", "achievements": achieved(len(started))}]
    milestones += [{"type": f"Received Infusion {k}", "achievements": achieved(n)} for k, n in flow.infused.items()]
    completed = len([p for p in started if p.subject_id in flow.completed_ids])
    milestones += [{"type": "COMPLETED", "achievements": achieved(completed)},
                   {"type": "NOT COMPLETED", "achievements": achieved(len(started) - completed)}]
    reasons: dict[str, int] = {}
    for p in left:
        reasons[ctgov_reason(p)] = reasons.get(ctgov_reason(p), 0) + 1
    drops = [{"type": r, "reasons": achieved(n)} for r, n in sorted(reasons.items())]
    if ongoing:
        drops.append({"type": "Still on study at the data cut", "reasons": achieved(ongoing)})
    details = f"Participants were enrolled at {protocol.locations[0].facility}." if protocol.locations else ""
    pre = (f"{flow.screened} screened, {flow.screen_failed} failed screening, {flow.enrolled} enrolled;"
           " STARTED counts participants who received at least one infusion.")
    module: dict[str, Any] = {
        "recruitmentDetails": " ".join(x for x in (details, note) if x),
        "preAssignmentDetails": pre,
        "groups": [{"id": "FG000", "title": title, "description": description}],
        "periods": [{"title": "Overall Study", "milestones": milestones, **({"dropWithdraws": drops} if drops else {})}],
    }
    if not module["recruitmentDetails"]:
        del module["recruitmentDetails"]
    return module


def _counts(participants: list[Participant], categories: tuple[str, ...], value: Callable[[Participant], str]) -> list[dict[str, Any]]:
    found = [_category(value(p), categories) for p in participants]
    return [{"title": c, "measurements": [{"groupId": "BG000", "value": str(found.count(c))}]} for c in categories]


def _baseline(data: TrialData, protocol: Protocol) -> dict[str, Any]:
    title, description = _arm(protocol)
    people = data.participants
    ages = [p.age_at_enrolment for p in people]
    age: dict[str, Any] = {"groupId": "BG000", "value": f"{statistics.fmean(ages):.1f}" if ages else "NA"}
    if len(ages) > 1:
        age["spread"] = f"{statistics.stdev(ages):.1f}"
    sexes = ("Female", "Male")
    return {
        "populationDescription": "All enrolled participants.",
        "groups": [{"id": "BG000", "title": title, "description": description}],
        "denoms": [{"units": "Participants", "counts": [{"groupId": "BG000", "value": str(len(people))}]}],
        "measures": [
            {"title": "Age, Continuous", "paramType": "MEAN", "dispersionType": "STANDARD_DEVIATION", "unitOfMeasure": "years",
             "classes": [{"categories": [{"measurements": [age]}]}]},
            {"title": "Sex: Female, Male", "paramType": "COUNT_OF_PARTICIPANTS", "unitOfMeasure": "Participants",
             "classes": [{"categories": _counts(people, sexes, lambda p: p.sex)}]},
            {"title": "Race (NIH/OMB)", "paramType": "COUNT_OF_PARTICIPANTS", "unitOfMeasure": "Participants",
             "classes": [{"categories": _counts(people, RACES, lambda p: p.race)}]},
            {"title": "Ethnicity (NIH/OMB)", "paramType": "COUNT_OF_PARTICIPANTS", "unitOfMeasure": "Participants",
             "classes": [{"categories": _counts(people, ETHNICITIES, lambda p: p.ethnicity)}]},
        ],
    }


def _outcome_measures(result: PrimaryOutcome, protocol: Protocol) -> dict[str, Any]:
    registered = protocol.outcomes.primary[0]
    title, description = _arm(protocol)
    at_risk = result.total.participants_at_risk

    def cls(label: str, n: int, events: int) -> dict[str, Any]:
        return {"title": label, "denoms": [{"units": "Participants", "counts": [{"groupId": "OG000", "value": str(n)}]}],
                "categories": [{"measurements": [{"groupId": "OG000", "value": str(events)}]}]}

    classes = [cls(f"Infusion {r.key}", r.participants_at_risk, r.events) for r in result.rows if r.scope == "infusion"]
    classes.append(cls("All infusions", at_risk, result.total.events))
    return {"outcomeMeasures": [{
        "type": "PRIMARY",
        "title": registered.measure,
        "description": registered.description or registered.measure,
        "populationDescription": "Participants who received at least one infusion; events from the first infusion to the end of"
                                 f" the time frame ({result.window_days} days), each counted with the most recent infusion on or"
                                 " before its onset.",
        "reportingStatus": "POSTED",
        "paramType": "NUMBER",
        "unitOfMeasure": "adverse events",
        "timeFrame": registered.time_frame,
        "groups": [{"id": "OG000", "title": title, "description": description}],
        "denoms": [{"units": "Participants", "counts": [{"groupId": "OG000", "value": str(at_risk)}]}],
        "classes": classes,
    }]}


def _events(counted: list[Attributed], at_risk: int, serious: bool, threshold: float) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[Attributed]] = {}
    for a in counted:
        if a.event.serious == serious:
            groups.setdefault((a.event.soc, a.event.term), []).append(a)
    out = []
    for (soc, term), events in sorted(groups.items()):
        affected = len({a.event.subject_id for a in events})
        if not serious and not (at_risk and 100 * affected / at_risk > threshold):
            continue
        out.append({"term": term, "organSystem": soc, "sourceVocabulary": SOURCE_VOCABULARY, "assessmentType": ASSESSMENT,
                    "stats": [{"groupId": "EG000", "numEvents": len(events), "numAffected": affected, "numAtRisk": at_risk}]})
    return out


def _died(p: Participant, counted: list[Attributed], last_day: dict[str, bool]) -> bool:
    fatal = any(a.event.subject_id == p.subject_id and (a.event.outcome == "fatal" or "death" in a.event.seriousness) for a in counted)
    return fatal or (last_day.get(p.subject_id, False) and ctgov_reason(p) == "Death")


def _adverse_events(data: TrialData, protocol: Protocol, result: PrimaryOutcome, threshold: float) -> dict[str, Any]:
    title, description = _arm(protocol)
    counted = result.counted
    at_risk = result.total.participants_at_risk
    serious = _events(counted, at_risk, True, threshold)
    other = _events(counted, at_risk, False, threshold)
    listed_other = {(e["organSystem"], e["term"]) for e in other}
    # deaths recorded only as the way off study count when they fall in the window
    first = {s: min(i.date for i in data.infusions_of(s)) for s in {i.subject_id for i in data.infusions}}
    in_window = {p.subject_id: p.off_study_on is not None and p.subject_id in first
                 and 0 <= (p.off_study_on - first[p.subject_id]).days <= result.window_days for p in data.participants}
    infused = [p for p in data.participants if p.subject_id in first]
    other_affected = {a.event.subject_id for a in counted if not a.event.serious and (a.event.soc, a.event.term) in listed_other}
    group = {
        "id": "EG000", "title": title, "description": description,
        "deathsNumAffected": sum(1 for p in infused if _died(p, counted, in_window)), "deathsNumAtRisk": at_risk,
        "seriousNumAffected": len({a.event.subject_id for a in counted if a.event.serious}), "seriousNumAtRisk": at_risk,
        "otherNumAffected": len(other_affected),
        "otherNumAtRisk": at_risk,
    }
    registered = protocol.outcomes.primary[0]
    return {
        "frequencyThreshold": f"{threshold:g}",
        "timeFrame": f"{registered.time_frame} from the first infusion ({result.window_days} days)",
        "description": "Adverse events graded with CTCAE v5.0 and assessed at every study visit, counted from the first infusion;"
                       " events before the first infusion are not treatment-emergent and are not included. Serious: meets a"
                       " criterion of 21 CFR 312.32 (death, life-threatening, hospitalisation, disability, congenital anomaly,"
                       " important medical event).",
        "eventGroups": [group],
        "seriousEvents": serious,
        "otherEvents": other,
    }


def results_section(data: TrialData, protocol: Protocol, frequency_threshold: float = 0.0, allow_empty: bool = False) -> dict[str, Any]:
    """``{"resultsSection": {...}}`` for ``data``; ``frequency_threshold`` in percent (0 to 5)."""
    if not 0 <= frequency_threshold <= MAX_THRESHOLD:
        raise ThresholdError(f"frequency threshold {frequency_threshold:g} % is outside 0-5 %; 42 CFR 11.48(a)(4)(ii) allows at most 5 %")
    note = check_enrolled(data, "ClinicalTrials.gov results", allow_empty)
    result = primary_outcome(data, protocol, allow_empty=True)
    return {"resultsSection": {
        "participantFlowModule": _participant_flow(data, protocol, note),
        "baselineCharacteristicsModule": _baseline(data, protocol),
        "outcomeMeasuresModule": _outcome_measures(result, protocol),
        "adverseEventsModule": _adverse_events(data, protocol, result, frequency_threshold),
    }}


def results_json(data: TrialData, protocol: Protocol, frequency_threshold: float = 0.0, allow_empty: bool = False) -> str:
    return json.dumps(results_section(data, protocol, frequency_threshold, allow_empty), indent=2, ensure_ascii=False) + "\n"

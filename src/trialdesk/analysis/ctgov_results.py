"""The ClinicalTrials.gov API v2 ``resultsSection`` of a data cut.

Four modules: ``participantFlowModule``, ``baselineCharacteristicsModule`` (age, sex, race and
ethnicity), ``outcomeMeasuresModule`` (the primary outcome as the protocol's ``outcome_measures`` defines it, by
cohort or dose level; without one, as registered, counted per infusion)
and ``adverseEventsModule``, following 42 CFR 11.48(a)(4): every serious adverse event; other
(non-serious) adverse events whose frequency in the arm exceeds the frequency threshold (at most
5 %; 0 lists them all); all-cause mortality. Events are those of the primary outcome's window
(from the first infusion to its time frame), attributed as :mod:`.attribution` reads them, graded
and named with CTCAE v5.0 (``sourceVocabulary`` "CTCAE (5.0)"). Besides the four scientific modules,
``moreInfoModule`` (results point of contact and certain agreements, 42 CFR 11.48(a)(6)) and, beside
the ``resultsSection`` as API v2 places it, the ``documentSection`` (protocol and statistical analysis
plan with their dates, 11.48(a)(5)) come from the protocol file's ``results_disclosure``.

Groups. Participant flow, baseline characteristics and adverse events report one arm/group per cohort or dose
level that has an infused participant (the protocol's one arm when it has neither; which group a participant is in
is read by :mod:`trialdesk.trial.groups`), and the outcome measure reports the groups its ``group_by`` names. This
follows the ClinicalTrials.gov Results Data Element Definitions for Interventional and Observational Studies
(prsinfo.clinicaltrials.gov/results_definitions.html, read through the search tool): participant flow is the
progress of participants "by study arm", each milestone given per arm/group; baseline characteristics are given
"for the entire trial population and for each group" (API v2 adds the total as one more group, titled "Total",
only when there is more than one group); an Arm/Group Title is 4 to 62 characters.

Populations. Every module counts the same people: the participants who received at least one
infusion. That is STARTED of the participant flow, the overall number of baseline participants, the
outcome measure's denominator and the adverse events' number at risk; enrolled participants who were
never infused are stated in ``preAssignmentDetails`` and the baseline ``populationDescription``.

Race and ethnicity are the demographics form's codes (``dm_race``/``dm_ethnicity`` in
``protocol/forms.yaml``), matched by code to the form's choices and reported under the choice's label,
which is the NIH/OMB category ClinicalTrials.gov uses; an unrecorded value is Unknown or Not Reported.

Assessment type per event (:func:`assessment_type`): ``SYSTEMATIC_ASSESSMENT`` when the event was found
by a scheduled assessment: suggested by a laboratory or vital-sign result, or learned by the site on the
day of a scheduled visit of that participant whose forms include the adverse-event form;
``NON_SYSTEMATIC_ASSESSMENT`` when the site learned of it on any other day (the participant volunteered
it). With neither ``learned_at`` nor ``suggested_from`` recorded the type is not known: the event's row
has no ``assessmentType`` and :func:`check_results` names it. No field was added to the adverse event:
the data cut already records when the site learned of each event and the visit dates.

:func:`check_results` applies the PRS results quality-control criteria that the file itself can be
held to (see its docstring).

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
from trialdesk.analysis.outcome_report import MeasureReport, measure_report
from trialdesk.analysis.participant_flow import participant_flow
from trialdesk.analysis.primary_outcome import PrimaryOutcome, counted_in_time_frame, primary_outcome
from trialdesk.protocol.forms import FormCatalogue, load_forms
from trialdesk.protocol.model import Protocol
from trialdesk.safety.outcome_measures import primary_measure
from trialdesk.trial import groups as trial_groups
from trialdesk.trial.records import AdverseEvent, Participant, TrialData

SOURCE_VOCABULARY = "CTCAE (5.0)"
SYSTEMATIC = "SYSTEMATIC_ASSESSMENT"
NON_SYSTEMATIC = "NON_SYSTEMATIC_ASSESSMENT"
MAX_THRESHOLD = 5.0
RACES = (
    "American Indian or Alaska Native", "Asian", "Native Hawaiian or Other Pacific Islander", "Black or African American",
    "White", "More than one race", "Unknown or Not Reported",
)
ETHNICITIES = ("Hispanic or Latino", "Not Hispanic or Latino", "Unknown or Not Reported")


class ThresholdError(ValueError):
    pass


def _code(value: str) -> str:
    return "_".join(value.strip().casefold().replace("-", " ").split())


def _category(value: str, categories: tuple[str, ...], choices: dict[str, str]) -> str:
    """The NIH/OMB category of a recorded demographics code: the form's choice with that code (``choices``: code ->
    label of the demographics form's field), reported under its label; anything else is Unknown or Not Reported."""
    label = choices.get(_code(value))
    return label if label in categories else categories[-1]


def started_ids(data: TrialData) -> set[str]:
    """The analysis population of every module: participants who received at least one infusion."""
    infused = {i.subject_id for i in data.infusions}
    return {p.subject_id for p in data.participants if p.subject_id in infused}


def _arm(protocol: Protocol) -> tuple[str, str]:
    arm = protocol.arms[0]
    return arm.label, arm.description


#: a reporting group: id ('FG000', 'BG001', 'EG002'), title, description, and its members (infused participants)
ReportingGroup = tuple[str, str, str, frozenset[str]]


def reporting_groups(data: TrialData, protocol: Protocol, prefix: str) -> list[ReportingGroup]:
    """The arms/groups of every module: one per cohort or dose level that has an infused participant, in the protocol's
    order (:mod:`trialdesk.trial.groups` says which group a participant is in); the protocol's one arm when it has
    neither. Ids are ``<prefix>000``, ``<prefix>001``... as API v2 numbers them."""
    started = frozenset(started_ids(data))
    return [(f"{prefix}{k:03d}", g.title, g.description, mine) for k, (g, mine) in enumerate(trial_groups.members(protocol, data, started))]


def _participant_flow(data: TrialData, protocol: Protocol, note: str | None) -> dict[str, Any]:
    """Participant Flow by arm/group (the results data element definitions: "the progress of research participants
    through each stage of a study ... by study arm"; each milestone and each reason not completed gives a number for
    every group, 0 included)."""
    flow = participant_flow(data, protocol, allow_empty=True)
    groups = reporting_groups(data, protocol, "FG")
    by_id = {p.subject_id: p for p in data.participants}
    completed_ids = set(flow.completed_ids)

    def achieved(count: Callable[[frozenset[str]], int]) -> list[dict[str, Any]]:
        return [{"groupId": gid, "numSubjects": str(count(members))} for gid, _, _, members in groups]

    def left(members: frozenset[str]) -> list[Participant]:
        return [by_id[s] for s in sorted(members) if has_left(by_id[s]) and s not in completed_ids]

    milestones = [{"type": "STARTED", "achievements": achieved(len)}]
    numbers = sorted({i.number for i in data.infusions})

    def received(k: int) -> Callable[[frozenset[str]], int]:
        return lambda m: len({i.subject_id for i in data.infusions if i.number == k and i.subject_id in m})

    milestones += [{"type": f"Received Infusion {k}", "achievements": achieved(received(k))} for k in numbers]
    milestones += [{"type": "COMPLETED", "achievements": achieved(lambda m: len(m & completed_ids))},
                   {"type": "NOT COMPLETED", "achievements": achieved(lambda m: len(m - completed_ids))}]
    reasons = sorted({ctgov_reason(p) for _, _, _, m in groups for p in left(m)})

    def leaving_for(reason: str) -> Callable[[frozenset[str]], int]:
        return lambda m: sum(1 for p in left(m) if ctgov_reason(p) == reason)

    drops = [{"type": r, "reasons": achieved(leaving_for(r))} for r in reasons]

    def ongoing(m: frozenset[str]) -> int:
        return len(m) - len(m & completed_ids) - len(left(m))

    if any(ongoing(m) for _, _, _, m in groups):
        drops.append({"type": "Still on study at the data cut", "reasons": achieved(ongoing)})
    details = f"Participants were enrolled at {protocol.locations[0].facility}." if protocol.locations else ""
    started = sum(len(m) for _, _, _, m in groups)
    never = flow.enrolled - started
    pre = (f"{flow.screened} screened, {flow.screen_failed} failed screening, {flow.enrolled} enrolled;"
           " STARTED counts participants who received at least one infusion"
           + (f" ({never} enrolled participant{'s' if never != 1 else ''} had received no infusion at the data cut)." if never else "."))
    module: dict[str, Any] = {
        "recruitmentDetails": " ".join(x for x in (details, note) if x),
        "preAssignmentDetails": pre,
        "groups": [{"id": gid, "title": title, "description": description} for gid, title, description, _ in groups],
        "periods": [{"title": "Overall Study", "milestones": milestones, **({"dropWithdraws": drops} if drops else {})}],
    }
    if not module["recruitmentDetails"]:
        del module["recruitmentDetails"]
    return module


def _counts(columns: list[tuple[str, list[Participant]]], categories: tuple[str, ...], value: Callable[[Participant], str],
            field: str | None = None, forms: FormCatalogue | None = None) -> list[dict[str, Any]]:
    choices = {c.code: c.label for c in (forms or load_forms()).form("demographics").field(field).choices} if field else {}

    def found(people: list[Participant]) -> list[str]:
        return [_category(value(p), categories, choices) if field else value(p) for p in people]

    return [{"title": c, "measurements": [{"groupId": gid, "value": str(found(people).count(c))} for gid, people in columns]}
            for c in categories]


def _age(gid: str, people: list[Participant]) -> dict[str, Any]:
    ages = [p.age_at_enrolment for p in people]
    age: dict[str, Any] = {"groupId": gid, "value": f"{statistics.fmean(ages):.1f}" if ages else "NA"}
    if len(ages) > 1:
        age["spread"] = f"{statistics.stdev(ages):.1f}"
    return age


TOTAL_TITLE = "Total"


def _baseline(data: TrialData, protocol: Protocol, forms: FormCatalogue | None = None) -> dict[str, Any]:
    """Baseline Characteristics by arm/group and, with more than one group, in total (the results data element
    definitions: "demographic and baseline data ... for the entire trial population and for each group"; API v2
    carries the total as one more group titled "Total")."""
    groups = reporting_groups(data, protocol, "BG")
    by_id = {p.subject_id: p for p in data.participants}
    columns = [(gid, [by_id[s] for s in sorted(members)]) for gid, _, _, members in groups]
    listed = [{"id": gid, "title": title, "description": description} for gid, title, description, _ in groups]
    if len(groups) > 1:
        total = f"BG{len(groups):03d}"
        columns.append((total, [p for _, people in columns for p in people]))
        listed.append({"id": total, "title": TOTAL_TITLE, "description": "Total of all reporting groups"})
    never = len(data.participants) - sum(len(m) for _, _, _, m in groups)
    sexes = ("Female", "Male")
    return {
        "populationDescription": "Participants who received at least one infusion (STARTED in the participant flow)"
                                 + (f"; {never} enrolled participant{'s' if never != 1 else ''} with no infusion at the data cut"
                                    f" {'are' if never != 1 else 'is'} not included." if never else "."),
        "groups": listed,
        "denoms": [{"units": "Participants", "counts": [{"groupId": gid, "value": str(len(people))} for gid, people in columns]}],
        "measures": [
            {"title": "Age, Continuous", "paramType": "MEAN", "dispersionType": "STANDARD_DEVIATION", "unitOfMeasure": "years",
             "classes": [{"categories": [{"measurements": [_age(gid, people) for gid, people in columns]}]}]},
            {"title": "Sex: Female, Male", "paramType": "COUNT_OF_PARTICIPANTS", "unitOfMeasure": "Participants",
             "classes": [{"categories": _counts(columns, sexes, lambda p: p.sex.capitalize())}]},
            {"title": "Race (NIH/OMB)", "paramType": "COUNT_OF_PARTICIPANTS", "unitOfMeasure": "Participants",
             "classes": [{"categories": _counts(columns, RACES, lambda p: p.race, "dm_race", forms)}]},
            {"title": "Ethnicity (NIH/OMB)", "paramType": "COUNT_OF_PARTICIPANTS", "unitOfMeasure": "Participants",
             "classes": [{"categories": _counts(columns, ETHNICITIES, lambda p: p.ethnicity, "dm_ethnicity", forms)}]},
        ],
    }


def _measured(report: MeasureReport, protocol: Protocol) -> dict[str, Any]:
    """The primary outcome as the protocol's measure defines it, one outcome group per cohort or dose level."""
    registered = protocol.outcomes.primary[0]
    ids = {r.group: f"OG{k:03d}" for k, r in enumerate(report.rows)}
    participants = report.measure.counts == "participants"
    return {"outcomeMeasures": [{
        "type": "PRIMARY",
        "title": registered.measure,
        "description": f"{registered.description or registered.measure} Counted: {report.definition}.",
        "populationDescription": "Participants who received the infusion that opens the measure's window"
                                 + (", by group." if len(report.rows) > 1 else "."),
        "reportingStatus": "POSTED",
        "paramType": "COUNT_OF_PARTICIPANTS" if participants else "NUMBER",
        "unitOfMeasure": "Participants" if participants else "adverse events",
        "timeFrame": registered.time_frame,
        "groups": [{"id": ids[r.group], "title": r.label, "description": r.label} for r in report.rows],
        "denoms": [{"units": "Participants", "counts": [{"groupId": ids[r.group], "value": str(r.analysed)} for r in report.rows]}],
        "classes": [{"categories": [{"measurements": [{"groupId": ids[r.group], "value": str(r.count)} for r in report.rows]}]}],
    }]}


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


def assessment_type(ae: AdverseEvent, data: TrialData, protocol: Protocol) -> str | None:
    """SYSTEMATIC_ASSESSMENT, NON_SYSTEMATIC_ASSESSMENT, or None when the data cut cannot tell (see the module docstring)."""
    if ae.suggested_from:
        return SYSTEMATIC
    if ae.learned_at is None:
        return None
    zone = next((loc.time_zone for loc in protocol.locations if loc.time_zone), None)
    if zone:
        from zoneinfo import ZoneInfo

        learned = ae.learned_at.astimezone(ZoneInfo(zone)).date()
    else:
        learned = ae.learned_at.date()
    asks = {v.code for v in protocol.schedule.visits if "adverse_events" in v.forms}
    visit_days = {v.date for v in data.visits if v.subject_id == ae.subject_id and v.status == "done" and v.code in asks}
    return SYSTEMATIC if learned in visit_days else NON_SYSTEMATIC


_ORDER = {SYSTEMATIC: 0, NON_SYSTEMATIC: 1, None: 2}


#: an event group: id, title, description, and its participants (the infused participants of the group)
EventGroup = ReportingGroup


def _event_groups(data: TrialData, protocol: Protocol) -> list[EventGroup]:
    """The reporting groups of the other modules (by cohort or dose level where the protocol has them), as event groups."""
    return reporting_groups(data, protocol, "EG")


def _events(counted: list[Attributed], groups: list[EventGroup], serious: bool, threshold: float,
            kinds: dict[str, str | None]) -> list[dict[str, Any]]:
    """One row per term and assessment type; the frequency threshold applies to the term as a whole, in any group."""
    by_term: dict[tuple[str, str], list[Attributed]] = {}
    for a in counted:
        if a.event.serious == serious:
            by_term.setdefault((a.event.soc, a.event.term), []).append(a)
    out = []
    for (soc, term), events in sorted(by_term.items()):
        if not serious and not any(
                members and 100 * len({a.event.subject_id for a in events if a.event.subject_id in members}) / len(members) > threshold
                for _, _, _, members in groups):
            continue
        by_kind: dict[str | None, list[Attributed]] = {}
        for a in events:
            by_kind.setdefault(kinds[a.event.id], []).append(a)
        for kind in sorted(by_kind, key=lambda k: _ORDER[k]):
            rows = by_kind[kind]
            row: dict[str, Any] = {"term": term, "organSystem": soc, "sourceVocabulary": SOURCE_VOCABULARY}
            if kind is None:
                row["notes"] = ("Assessment type not known: the data cut records neither when the site learned of "
                                + ", ".join(sorted(a.event.id for a in rows)) + " nor a result that suggested it.")
            else:
                row["assessmentType"] = kind
            row["stats"] = [{"groupId": gid, "numEvents": len([a for a in rows if a.event.subject_id in members]),
                             "numAffected": len({a.event.subject_id for a in rows if a.event.subject_id in members}),
                             "numAtRisk": len(members)} for gid, _, _, members in groups]
            out.append(row)
    return out


def _died(p: Participant, counted: list[Attributed], last_day: dict[str, bool]) -> bool:
    fatal = any(a.event.subject_id == p.subject_id and (a.event.outcome == "fatal" or "death" in a.event.seriousness) for a in counted)
    return fatal or (last_day.get(p.subject_id, False) and ctgov_reason(p) == "Death")


def _adverse_events(data: TrialData, protocol: Protocol, threshold: float) -> dict[str, Any]:
    counted, window_days = counted_in_time_frame(data, protocol)
    groups = _event_groups(data, protocol)
    kinds = {a.event.id: assessment_type(a.event, data, protocol) for a in counted}
    serious = _events(counted, groups, True, threshold, kinds)
    other = _events(counted, groups, False, threshold, kinds)
    listed_other = {(e["organSystem"], e["term"]) for e in other}
    # deaths recorded only as the way off study count when they fall in the window
    first = {s: min(i.date for i in data.infusions_of(s)) for s in {i.subject_id for i in data.infusions}}
    in_window = {p.subject_id: p.off_study_on is not None and p.subject_id in first
                 and 0 <= (p.off_study_on - first[p.subject_id]).days <= window_days for p in data.participants}
    infused = [p for p in data.participants if p.subject_id in first]
    event_groups = []
    for gid, title, description, members in groups:
        mine = [a for a in counted if a.event.subject_id in members]
        other_affected = {a.event.subject_id for a in mine if not a.event.serious and (a.event.soc, a.event.term) in listed_other}
        at_risk = len(members)
        event_groups.append({
            "id": gid, "title": title, "description": description,
            "deathsNumAffected": sum(1 for p in infused if p.subject_id in members and _died(p, mine, in_window)),
            "deathsNumAtRisk": at_risk,
            "seriousNumAffected": len({a.event.subject_id for a in mine if a.event.serious}), "seriousNumAtRisk": at_risk,
            "otherNumAffected": len(other_affected),
            "otherNumAtRisk": at_risk,
        })
    registered = protocol.outcomes.primary[0]
    return {
        "frequencyThreshold": f"{threshold:g}",
        "timeFrame": f"{registered.time_frame} from the first infusion ({window_days} days)",
        "description": "Adverse events graded with CTCAE v5.0, counted from the first infusion; events before the first infusion"
                       " are not treatment-emergent and are not included. Systematic assessment: found at a scheduled visit (asked"
                       " about, or suggested by a scheduled laboratory or vital-sign result); non-systematic: volunteered by the"
                       " participant between visits. Serious: meets a"
                       " criterion of 21 CFR 312.32 (death, life-threatening, hospitalisation, disability, congenital anomaly,"
                       " important medical event).",
        "eventGroups": event_groups,
        "seriousEvents": serious,
        "otherEvents": other,
    }


def _more_info(protocol: Protocol) -> dict[str, Any]:
    disclosure = protocol.results_disclosure
    if disclosure is None:
        return {}
    poc = disclosure.point_of_contact
    contact = {"title": poc.title, "organization": poc.organization, "email": poc.email, "phone": poc.phone, "phoneExt": poc.phone_ext}
    agreement = disclosure.certain_agreement
    certain: dict[str, Any] = {"piSponsorEmployee": agreement.pi_sponsor_employee}
    if not agreement.pi_sponsor_employee:
        certain["restrictiveAgreement"] = agreement.restrictive_agreement
        if agreement.restrictive_agreement:
            certain["restrictionType"] = agreement.restriction_type
            if agreement.other_details:
                certain["otherDetails"] = agreement.other_details
    module: dict[str, Any] = {"certainAgreement": certain, "pointOfContact": {k: v for k, v in contact.items() if v}}
    if disclosure.limitations_and_caveats:
        module["limitationsAndCaveats"] = {"description": disclosure.limitations_and_caveats}
    return module


_DOC_TYPES = {"protocol": ("Prot", True, False, False, "Study Protocol"), "sap": ("SAP", False, True, False, "Statistical Analysis Plan"),
              "protocol_sap": ("Prot_SAP", True, True, False, "Study Protocol and Statistical Analysis Plan"),
              "icf": ("ICF", False, False, True, "Informed Consent Form")}


def _documents(protocol: Protocol) -> dict[str, Any]:
    disclosure = protocol.results_disclosure
    docs = disclosure.documents if disclosure else []
    large = []
    for d in docs:
        abbrev, prot, sap, icf, label = _DOC_TYPES[d.type]
        doc: dict[str, Any] = {"typeAbbrev": abbrev, "hasProtocol": prot, "hasSap": sap, "hasIcf": icf, "label": d.label or label,
                               "date": d.date.isoformat(), "filename": d.filename}
        if d.upload_date:
            doc["uploadDate"] = d.upload_date.isoformat()
        large.append(doc)
    module: dict[str, Any] = {"largeDocs": large}
    if disclosure is not None and disclosure.no_sap:
        module["noSap"] = True
    return {"largeDocumentModule": module}


def results_section(data: TrialData, protocol: Protocol, frequency_threshold: float = 0.0, allow_empty: bool = False,
                    forms: FormCatalogue | None = None) -> dict[str, Any]:
    """``{"resultsSection": {...}, "documentSection": {...}}`` for ``data``; ``frequency_threshold`` in percent (0 to 5);
    ``forms``: the protocol's case report forms (its folder's ``forms.yaml``; default the package's)."""
    if not 0 <= frequency_threshold <= MAX_THRESHOLD:
        raise ThresholdError(f"frequency threshold {frequency_threshold:g} % is outside 0-5 %; 42 CFR 11.48(a)(4)(ii) allows at most 5 %")
    note = check_enrolled(data, "ClinicalTrials.gov results", allow_empty)
    outcomes = (_measured(measure_report(protocol, data), protocol) if primary_measure(protocol) is not None
                else _outcome_measures(primary_outcome(data, protocol, allow_empty=True), protocol))
    return {"resultsSection": {
        "participantFlowModule": _participant_flow(data, protocol, note),
        "baselineCharacteristicsModule": _baseline(data, protocol, forms),
        "outcomeMeasuresModule": outcomes,
        "adverseEventsModule": _adverse_events(data, protocol, frequency_threshold),
        "moreInfoModule": _more_info(protocol),
    }, "documentSection": _documents(protocol)}


def results_json(data: TrialData, protocol: Protocol, frequency_threshold: float = 0.0, allow_empty: bool = False,
                 forms: FormCatalogue | None = None) -> str:
    return json.dumps(results_section(data, protocol, frequency_threshold, allow_empty, forms), indent=2, ensure_ascii=False) + "\n"


# --- the PRS review ---------------------------------------------------------------------


def _n(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def check_results(doc: dict[str, Any]) -> list[str]:
    """The problems a PRS reviewer would return, each naming the field and the rule; [] when none.

    Applies what the file itself can be held to, from 42 CFR 11.48 and the ClinicalTrials.gov results
    quality-control review criteria and PRS major comments (read through the search tool: "Information
    within the Participant Flow / Adverse Events module appears inconsistent", "A measure of dispersion
    or precision appears missing for continuous data", the analysis population must explain a
    difference from STARTED, the unit of measure may not be a placeholder or only numerals):

    - required modules: participant flow, baseline characteristics, outcome measures, adverse events,
      more information (11.48(a)(1)-(4), (6)) and the document section with the protocol and the SAP
      (or the statement that there is none) with their dates (11.48(a)(5));
    - arm/group titles of every module: 4 to 62 characters (Arm/Group Title);
    - results point of contact: name or title, organisation, e-mail and phone (11.48(a)(6)(ii)); the
      certain-agreements statement (11.48(a)(6)(i));
    - participant flow: STARTED = COMPLETED + NOT COMPLETED; NOT COMPLETED = the reasons given; no
      milestone above STARTED;
    - baseline: the overall number equals STARTED or the population description says why; age, sex,
      race and ethnicity present (11.48(a)(2)); each count measure's categories add up to the overall
      number; a mean with more than one participant has its standard deviation;
    - outcome measures: title, time frame, unit of measure (not a placeholder), denominators no larger
      than STARTED, a population description;
    - adverse events: a threshold of at most 5 % (11.48(a)(4)(ii)); time frame and description; every
      event with term, organ system, vocabulary and an assessment type; affected <= at risk and <=
      events; at risk equal to the group's; other events above the threshold; each group total at least
      the largest single event's and at most its at risk; at risk no larger than STARTED; deaths in the
      participant flow not more than all-cause mortality unless a comment explains.
    """
    problems: list[str] = []
    rs = doc.get("resultsSection") or {}

    def need(cond: bool, message: str) -> None:
        if not cond:
            problems.append(message)

    for module in ("participantFlowModule", "baselineCharacteristicsModule", "outcomeMeasuresModule", "adverseEventsModule",
                   "moreInfoModule"):
        need(bool(rs.get(module)), f"resultsSection.{module}: missing (42 CFR 11.48(a))")

    # more information
    more = rs.get("moreInfoModule") or {}
    poc = more.get("pointOfContact") or {}
    for field, what in (("title", "name or official title"), ("organization", "organisation"), ("email", "e-mail"), ("phone", "phone")):
        need(bool(poc.get(field)), f"moreInfoModule.pointOfContact.{field}: the results point of contact's {what} is missing"
                                   " (42 CFR 11.48(a)(6)(ii)); set results_disclosure.point_of_contact in the protocol file")
    agreement = more.get("certainAgreement") or {}
    need("piSponsorEmployee" in agreement, "moreInfoModule.certainAgreement.piSponsorEmployee: the certain-agreements statement is"
                                           " missing (42 CFR 11.48(a)(6)(i)); set results_disclosure.certain_agreement")
    if agreement.get("piSponsorEmployee") is False:
        need("restrictiveAgreement" in agreement, "moreInfoModule.certainAgreement.restrictiveAgreement: say whether an agreement"
                                                  " restricts the PI (42 CFR 11.48(a)(6)(i))")
        if agreement.get("restrictiveAgreement"):
            need(agreement.get("restrictionType") in ("LTE60", "GT60", "OTHER"), "moreInfoModule.certainAgreement.restrictionType:"
                                                                                 " missing for a restrictive agreement")

    # documents
    docs = ((doc.get("documentSection") or {}).get("largeDocumentModule") or {})
    large = docs.get("largeDocs") or []
    need(any(d.get("hasProtocol") for d in large), "documentSection: the study protocol is missing (42 CFR 11.48(a)(5));"
                                                   " add it to results_disclosure.documents with its date")
    need(any(d.get("hasSap") for d in large) or bool(docs.get("noSap")),
         "documentSection: the statistical analysis plan is missing (42 CFR 11.48(a)(5)); add it, or set results_disclosure.no_sap")
    for i, d in enumerate(large):
        need(bool(d.get("date")), f"documentSection.largeDocs[{i}] ({d.get('typeAbbrev')}): the document date is missing")

    # arm/group titles: 4 to 62 characters (results data element definitions, Arm/Group Title)
    titled = [(f"{m}.groups", rs.get(m) or {}) for m in ("participantFlowModule", "baselineCharacteristicsModule")]
    outcome_list = (rs.get("outcomeMeasuresModule") or {}).get("outcomeMeasures") or []
    titled += [(f"outcomeMeasures[{i}].groups", om) for i, om in enumerate(outcome_list)]
    titled += [("adverseEventsModule.eventGroups", {"groups": (rs.get("adverseEventsModule") or {}).get("eventGroups") or []})]
    for where, part in titled:
        for g in part.get("groups") or []:
            title = str(g.get("title") or "")
            need(4 <= len(title) <= 62, f"{where} {g.get('id')}: the title {title!r} has {len(title)} characters; an arm/group title"
                                        " has 4 to 62")

    # participant flow
    flow = rs.get("participantFlowModule") or {}
    started_by_group: dict[str, int] = {}
    deaths_in_flow = 0
    for p_i, period in enumerate(flow.get("periods") or []):
        ms = {m.get("type"): {a.get("groupId"): _n(a.get("numSubjects")) for a in m.get("achievements", [])}
              for m in period.get("milestones", [])}
        where = f"participantFlowModule.periods[{p_i}]"
        for kind in ("STARTED", "COMPLETED", "NOT COMPLETED"):
            need(kind in ms, f"{where}: the {kind} milestone is missing")
        reasons: dict[str, int] = {}
        for d in period.get("dropWithdraws", []):
            for r in d.get("reasons", []):
                reasons[r.get("groupId")] = reasons.get(r.get("groupId"), 0) + (_n(r.get("numSubjects")) or 0)
                if d.get("type") == "Death":
                    deaths_in_flow += _n(r.get("numSubjects")) or 0
        for group, started in ms.get("STARTED", {}).items():
            if p_i == 0 and started is not None:
                started_by_group[group] = started
            completed, not_completed = ms.get("COMPLETED", {}).get(group), ms.get("NOT COMPLETED", {}).get(group)
            if None not in (started, completed, not_completed):
                need(started == (completed or 0) + (not_completed or 0),
                     f"{where} group {group}: STARTED {started} is not COMPLETED {completed} + NOT COMPLETED {not_completed}"
                     " (PRS: information within the Participant Flow module appears inconsistent)")
                need(reasons.get(group, 0) == not_completed, f"{where} group {group}: NOT COMPLETED {not_completed} but the reasons"
                                                             f" not completed add up to {reasons.get(group, 0)}")
            for kind, counts in ms.items():
                value = counts.get(group)
                if started is not None and value is not None:
                    need(value <= started, f"{where} group {group}: milestone {kind!r} ({value}) is above STARTED ({started})")
    started_total = sum(started_by_group.values())

    # baseline
    base = rs.get("baselineCharacteristicsModule") or {}
    total_ids = {g.get("id") for g in base.get("groups", []) if g.get("title") == TOTAL_TITLE}
    denom = {c.get("groupId"): _n(c.get("value")) or 0 for d in base.get("denoms", []) for c in d.get("counts", [])}
    overall = sum(n for gid, n in denom.items() if gid not in total_ids)
    for gid in total_ids:
        need(denom.get(gid) == overall, f"baselineCharacteristicsModule group {gid} (Total): {denom.get(gid)} participants, but the"
                                        f" groups add up to {overall}")
    if base:
        need(overall == started_total or bool(base.get("populationDescription")),
             f"baselineCharacteristicsModule: {overall} baseline participants but {started_total} STARTED, and no population"
             " description explains the difference")
        titles = [m.get("title", "") for m in base.get("measures", [])]
        for what in ("Age", "Sex", "Race", "Ethnicity"):
            need(any(t.startswith(what) for t in titles), f"baselineCharacteristicsModule: no {what} measure (42 CFR 11.48(a)(2))")
    for m in base.get("measures", []):
        where = f"baselineCharacteristicsModule measure {m.get('title')!r}"
        need(bool(m.get("unitOfMeasure")), f"{where}: the unit of measure is missing")
        cats = [c for cls in m.get("classes", []) for c in cls.get("categories", [])]
        if m.get("paramType") == "COUNT_OF_PARTICIPANTS":
            per_group: dict[str, int] = {}
            for c in cats:
                for x in c.get("measurements", []):
                    per_group[x.get("groupId")] = per_group.get(x.get("groupId"), 0) + (_n(x.get("value")) or 0)
            for gid, total in per_group.items():
                need(total == denom.get(gid, 0), f"{where}: the categories of group {gid} add up to {total}, not its {denom.get(gid, 0)}"
                                                 " baseline participants (PRS: information within the measure appears inconsistent)")
        if m.get("paramType") == "MEAN" and overall > 1:
            need(all("spread" in x for c in cats for x in c.get("measurements", [])),
                 f"{where}: the standard deviation is missing (PRS: a measure of dispersion appears missing for continuous data)")

    # outcome measures
    measures = (rs.get("outcomeMeasuresModule") or {}).get("outcomeMeasures") or []
    need(any(m.get("type") == "PRIMARY" for m in measures), "outcomeMeasuresModule: no primary outcome measure (42 CFR 11.48(a)(3))")
    for i, m in enumerate(measures):
        where = f"outcomeMeasures[{i}] {m.get('title')!r}"
        for field in ("title", "timeFrame", "unitOfMeasure", "populationDescription"):
            need(bool(m.get(field)), f"{where}: {field} is missing")
        unit = str(m.get("unitOfMeasure", ""))
        need(not unit.strip().replace(".", "").isdigit() and unit.strip().upper() not in ("NA", "N/A"),
             f"{where}: unitOfMeasure {unit!r} is a placeholder or only numerals")
        need(not str(m.get("timeFrame", "")).strip().isdigit(), f"{where}: the time frame is only a numeral")
        for d in m.get("denoms", []):
            for c in d.get("counts", []):
                n = _n(c.get("value")) or 0
                need(n <= started_total, f"{where}: {n} analysed in group {c.get('groupId')}, more than the {started_total} STARTED")

    # adverse events
    ae = rs.get("adverseEventsModule") or {}
    if ae:
        threshold = ae.get("frequencyThreshold")
        try:
            t = float(str(threshold))
            need(0 <= t <= MAX_THRESHOLD, f"adverseEventsModule.frequencyThreshold: {threshold} % is above 5 % (42 CFR 11.48(a)(4)(ii))")
        except (TypeError, ValueError):
            t = 0.0
            problems.append(f"adverseEventsModule.frequencyThreshold: {threshold!r} is not a number")
        need(bool(ae.get("timeFrame")), "adverseEventsModule.timeFrame: missing (42 CFR 11.48(a)(4))")
        need(bool(ae.get("description")), "adverseEventsModule.description: missing (the adverse event definitions used)")
        groups = {g.get("id"): g for g in ae.get("eventGroups", [])}
        for gid, g in groups.items():
            for kind in ("deaths", "serious", "other"):
                affected, at_risk = g.get(f"{kind}NumAffected"), g.get(f"{kind}NumAtRisk")
                need(isinstance(affected, int) and isinstance(at_risk, int),
                     f"eventGroups {gid}: {kind}NumAffected/{kind}NumAtRisk missing")
                if isinstance(affected, int) and isinstance(at_risk, int):
                    need(affected <= at_risk, f"eventGroups {gid}: {kind}NumAffected {affected} is above {kind}NumAtRisk {at_risk}")
                    need(at_risk <= started_total or not started_total,
                         f"eventGroups {gid}: {kind}NumAtRisk {at_risk} is above the {started_total} STARTED")
            if deaths_in_flow and isinstance(g.get("deathsNumAffected"), int) and g["deathsNumAffected"] < deaths_in_flow:
                need(bool(ae.get("allCauseMortalityComment")),
                     f"eventGroups {gid}: the participant flow records {deaths_in_flow} death(s) but all-cause mortality counts"
                     f" {g['deathsNumAffected']}; explain in allCauseMortalityComment (PRS: information in other parts of the record"
                     " suggests that adverse events were collected that are not reported here)")
        for kind, key in (("serious", "seriousEvents"), ("other", "otherEvents")):
            largest: dict[str, int] = {}
            for i, e in enumerate(ae.get(key, [])):
                where = f"adverseEventsModule.{key}[{i}] {e.get('term')!r}"
                for field in ("term", "organSystem", "sourceVocabulary"):
                    need(bool(e.get(field)), f"{where}: {field} is missing")
                need(e.get("assessmentType") in (SYSTEMATIC, NON_SYSTEMATIC),
                     f"{where}: assessmentType is missing or not SYSTEMATIC_ASSESSMENT/NON_SYSTEMATIC_ASSESSMENT"
                     + (f" ({e['notes']})" if e.get("notes") else ""))
                for st in e.get("stats", []):
                    gid, affected, events, at_risk = st.get("groupId"), st.get("numAffected"), st.get("numEvents"), st.get("numAtRisk")
                    group = groups.get(gid, {})
                    need(gid in groups, f"{where}: group {gid} is not an event group")
                    if None in (affected, at_risk):
                        problems.append(f"{where} group {gid}: numAffected/numAtRisk missing")
                        continue
                    need(affected <= at_risk, f"{where} group {gid}: {affected} affected of {at_risk} at risk")
                    need(events is None or affected <= events, f"{where} group {gid}: {affected} affected but {events} events")
                    need(at_risk == group.get(f"{kind}NumAtRisk", at_risk),
                         f"{where} group {gid}: {at_risk} at risk, the group's {kind}NumAtRisk is {group.get(f'{kind}NumAtRisk')}")
                    largest[gid] = max(largest.get(gid, 0), affected)
            if kind == "other":  # the threshold applies to each term (its rows of either assessment type together)
                per_term: dict[tuple[str, str], int] = {}
                for e in ae.get(key, []):
                    for st in e.get("stats", []):
                        if st.get("numAtRisk"):
                            k = (e.get("term"), st.get("groupId"))
                            per_term[k] = per_term.get(k, 0) + (st.get("numAffected") or 0)
                shares: dict[str, list[tuple[str, float]]] = {}
                for (term, gid), affected in per_term.items():
                    at_risk = groups.get(gid, {}).get("otherNumAtRisk") or 0
                    shares.setdefault(term, []).append((gid, 100 * affected / at_risk if at_risk else 0.0))
                for term, by_group in shares.items():  # listed when above the threshold in at least one group (42 CFR 11.48(a)(4)(iii))
                    need(any(share > t for _, share in by_group),
                         f"adverseEventsModule.otherEvents {term!r}: "
                         + ", ".join(f"group {gid} {share:.1f} %" for gid, share in by_group)
                         + f" of participants: not above the {t:g} % threshold in any group")
            for gid, n in largest.items():
                total = groups.get(gid, {}).get(f"{kind}NumAffected")
                if isinstance(total, int):
                    need(total >= n, f"eventGroups {gid}: {kind}NumAffected {total} is below the {n} affected by one {kind} event"
                                     " (PRS: information within the Adverse Events module appears inconsistent)")
    return problems

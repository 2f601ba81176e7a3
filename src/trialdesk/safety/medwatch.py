"""A MedWatch 3500A-style summary of one serious adverse event, for the IND safety report.

The content follows the blocks of Form FDA 3500A (mandatory reporting) as the FDA's instructions
list them: A patient information (A1 identifier, A2 age at time of event, A3 sex, A4 weight),
B adverse event (B1 event, B2 outcomes attributed, B3 date of event, B4 date of this report,
B5 description, B6 relevant tests with dates, B7 other relevant history), C suspect product(s)
(C1 name, C2 dose, frequency and route, C3 therapy dates, C4 diagnosis for use, C5 event abated
after use stopped, C6 lot, C7 expiration date, C8 event reappeared after reintroduction, C9 NDC or
unique id, C10 concomitant medical products), D suspect medical device, E initial reporter,
F user facility/importer, G all manufacturers (contact office, report source, date received, IND
number, protocol number, type of report, adverse event terms, manufacturer report number).
Sources: "Instructions for Completing the MedWatch Form 3500A", FDA, updated 27 July 2004
(https://webharvest.gov/peth04/20041031171653/http://www.fda.gov/medwatch/report/instruc.htm), and
the Form FDA 3500A (10/05) layout (https://omb.report/icr/200810-0910-002/doc/11014801). The 4/16
supplement's general instructions say that a report of a drug or biologic alone fills sections A, B,
C, E and G (https://docslib.org/doc/1608047/); D and F are shown as "does not apply".

Readings for an IND sponsor-investigator (the PI holds the IND; the sponsor is the institution):

- **A1** is the subject id only (the form asks for an identifier "in confidence", never a name).
- **A2** is the age at the event when the caller knows the birth date, else the age at enrolment
  (labelled so). **A4** is the weight measured for the infusion the event follows.
- **C** describes the study product as given (named as the protocol names it): every infusion on or before the onset, with its dose per
  kg, total cells, route and lot. The suspect infusion is the one the event is attributed to
  (:mod:`trialdesk.safety.attribution`, the one implementation).
- **C5 dechallenge**: each infusion is a single administration, so "does not apply" unless the
  action taken stopped, interrupted or withheld the product: then yes when the outcome is recovered
  or recovering, no when not recovered, unknown otherwise.
- **C8 rechallenge**: yes when a later infusion was given after the onset and the same term began
  again after it, no when it was given and the term did not recur, "does not apply" when none was given.
- **C10** lists the premedication recorded on the infusion forms (the trial desk records no other
  concomitant medications).
- **E** is the principal investigator of the protocol; **G** is the lead sponsor with the IND number
  from the protocol file (``identification.ind_number``, not in the registry record; a caller may pass
  ``ind_number`` to override it); without one G5 is listed as missing.
- **B5** and **G4** give the instant the site learned of the event at the site (``tz``): the day
  received counts in the site's calendar, as the SAE clocks do (:mod:`trialdesk.safety.sae_clock`).
- **G7** is a 7-day report for an unexpected fatal or life-threatening suspected adverse reaction,
  15-day for another serious unexpected suspected one (21 CFR 312.32(c)), and otherwise "other
  (not an IND safety report)"; "follow-up #n" when follow-up information was received.

Required blocks left empty are never blank: each is printed as ``missing: <what>`` and listed on
the form's first lines, so the reporter sees what to complete before sending.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from trialdesk.protocol.model import Protocol
from trialdesk.safety.attribution import attribute
from trialdesk.safety.site_time import site_date, site_zone
from trialdesk.terminology.ctcae import catalogue
from trialdesk.trial.death import AUTOPSY, DeathReport
from trialdesk.trial.dose import infusion_dose_text
from trialdesk.trial.dosing import weight_text
from trialdesk.trial.records import AdverseEvent, TrialData, is_related

__all__ = ["Block", "FollowUpNote", "MedwatchForm", "Reporter", "Section", "build_medwatch", "render_html"]

_CRITERIA = {"death": "Death", "life_threatening": "Life-threatening", "hospitalisation": "Hospitalization — initial or prolonged",
             "disability": "Disability or permanent damage", "congenital_anomaly": "Congenital anomaly / birth defect",
             "important_medical_event": "Other serious (important medical event)"}
_STOPPING_ACTIONS = {"infusion_interrupted", "infusion_stopped", "infusion_withheld"}
#: days either side of the onset from which labs count as relevant tests (B6)
LAB_WINDOW_DAYS = 14


@dataclass(frozen=True)
class Reporter:
    name: str
    qualification: str = "Physician"
    institution: str = ""
    address: str = ""
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class FollowUpNote:
    received_at: dt.datetime
    information: str


@dataclass(frozen=True)
class Block:
    code: str  # e.g. "A4"
    label: str
    value: str
    required: bool = False

    @property
    def missing(self) -> bool:
        return self.required and not self.value.strip()

    @property
    def shown(self) -> str:
        return f"missing: {self.label}" if self.missing else (self.value or "—")


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    blocks: tuple[Block, ...]
    note: str = ""


@dataclass(frozen=True)
class MedwatchForm:
    ae_id: str
    subject_id: str
    nct_id: str
    report_date: dt.date
    sections: tuple[Section, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def missing(self) -> list[str]:
        return [f"{b.code} {b.label}" for s in self.sections for b in s.blocks if b.missing]

    def block(self, code: str) -> Block:
        for s in self.sections:
            for b in s.blocks:
                if b.code == code:
                    return b
        raise KeyError(f"no block {code}")


def _report_type(ae: AdverseEvent, follow_ups: int) -> str:
    suspected = is_related(ae.relatedness)
    if ae.serious and suspected and not ae.expected:
        fatal = "death" in ae.seriousness or ae.outcome == "fatal" or "life_threatening" in ae.seriousness
        # 312.32(c)(2) "also": a fatal or life-threatening one needs the 7-day notice and the 15-day report
        kind = "7-day IND safety report (and the 15-day report)" if fatal else "15-day IND safety report"
        if ae.expected is None:
            kind += " if the sponsor-investigator assesses it unexpected (expectedness not yet assessed)"
    else:
        kind = "Other (not an IND safety report: " + ("expected" if ae.expected else "not suspected") + ")"
    return f"{kind}; " + (f"follow-up #{follow_ups}" if follow_ups else "initial")


def _dechallenge(ae: AdverseEvent) -> str:
    if ae.action_taken not in _STOPPING_ACTIONS:
        return "Doesn't apply (single infusion; the product was not stopped or reduced because of the event)"
    return {"recovered": "Yes", "recovering": "Yes", "not_recovered": "No", "recovered_with_sequelae": "Yes"}.get(ae.outcome, "Unknown")


def _rechallenge(ae: AdverseEvent, data: TrialData) -> str:
    later = [i for i in data.infusions_of(ae.subject_id) if i.date > ae.onset]
    if not later:
        return "Doesn't apply (no infusion after the onset)"
    again = [a for a in data.adverse_events if a.subject_id == ae.subject_id and a.id != ae.id and a.term.casefold() == ae.term.casefold()
             and a.onset >= later[0].date]
    first = f"infusion {later[0].number} on {later[0].date}"
    return f"Yes ({', '.join(a.id for a in again)} after {first})" if again else f"No (reintroduced: {first})"


def _labs(ae: AdverseEvent, data: TrialData) -> str:
    low, high = ae.onset - dt.timedelta(days=LAB_WINDOW_DAYS), (ae.resolved or ae.onset) + dt.timedelta(days=LAB_WINDOW_DAYS)
    lines = []
    for lab in sorted((x for x in data.labs if x.subject_id == ae.subject_id and low <= x.date <= high), key=lambda x: (x.date, x.test)):
        ref = f" (range {lab.range_low if lab.range_low is not None else '?'}–{lab.range_high if lab.range_high is not None else '?'})" \
            if lab.range_low is not None or lab.range_high is not None else ""
        lines.append(f"{lab.date} {lab.test} {lab.value:g} {lab.unit}{ref}")
    for v in sorted((x for x in data.vitals if x.subject_id == ae.subject_id and x.test == "SPO2" and low <= x.date <= high),
                    key=lambda x: x.date):
        lines.append(f"{v.date} SpO2 {v.value:g} %")
    return "\n".join(lines) or f"None recorded from {low} to {high}"


def build_medwatch(ae: AdverseEvent, data: TrialData, protocol: Protocol, *, report_date: dt.date, reporter: Reporter | None = None,
                   age_at_event: int | None = None, premedication: Mapping[int, str] | None = None,
                   follow_ups: Sequence[FollowUpNote] = (), death: DeathReport | None = None, history: str = "",
                   ind_number: str | None = None, tz: ZoneInfo | None = None) -> MedwatchForm:
    """The 3500A blocks for ``ae`` (a serious AE of ``data``); ``premedication`` maps infusion number to what was given."""
    tz = tz or site_zone(protocol)
    participant = next((p for p in data.participants if p.subject_id == ae.subject_id), None)
    if participant is None:
        raise KeyError(f"{ae.subject_id} is not a participant of the data cut")
    intervention = protocol.interventions[0]
    sponsor = protocol.sponsorship.lead_sponsor.name
    pi = next((o for o in protocol.overall_officials if o.role == "PRINCIPAL_INVESTIGATOR"), None)
    reporter = reporter or Reporter(name=pi.name if pi else "", institution=(pi.affiliation or "") if pi else "")
    spec = protocol.study_intervention.dose_spec
    att = attribute(ae, data.infusions, protocol.safety.ae_follow_up_days, spec)
    given = [i for i in data.infusions_of(ae.subject_id) if i.date <= ae.onset]
    suspect = att.infusion
    term = catalogue().get(ae.term)
    premedication = premedication or {}

    age = (f"{age_at_event} years" if age_at_event is not None
           else f"{participant.age_at_enrolment} years (at enrolment)" if participant.age_at_enrolment else "")
    patient = Section("A", "Patient information", (
        Block("A1", "Patient identifier", f"{ae.subject_id} (subject id; in confidence)", True),
        Block("A2", "Age at time of event", age, True),
        Block("A3", "Sex", participant.sex.capitalize() if participant.sex != "unknown" else "", True),
        Block("A4", "Weight", f"{weight_text(suspect.weight_kg)} (at infusion {suspect.number}, {suspect.date})" if suspect else "", True),
    ))

    outcomes = [_CRITERIA.get(c, c) for c in ae.seriousness]
    if death is not None:
        outcomes = [f"{o} ({death.date_of_death})" if o == "Death" else o for o in outcomes]
    suspect_dose = infusion_dose_text(spec, suspect.total_cells, suspect.weight_kg) if suspect else ""
    attribution = (f"follows infusion {suspect.number} of {suspect.date} ({suspect_dose}),"
                   f" onset {att.days_after_infusion} day(s) after it" if suspect else "onset before the first infusion (pre-treatment)")
    description = [
        f"{ae.term} (CTCAE v5.0 grade {ae.grade}" + (f": {term.grade_definition(ae.grade)}" if term else "") + ")",
        f"Onset {ae.onset}" + (f"; resolved {ae.resolved}" if ae.resolved else "; not resolved")
        + f"; outcome: {ae.outcome.replace('_', ' ')}",
        f"Attribution: {attribution}",
        f"Relatedness to the study product (investigator): {ae.relatedness}; "
        + {True: "expected", False: "unexpected", None: "expectedness not yet assessed"}[ae.expected]
        + " against the reference safety information"
        + (f" (assessed by {ae.expectedness_assessed_by})" if ae.expectedness_assessed_by else ""),
        f"Action taken: {ae.action_taken.replace('_', ' ')}",
    ]
    if ae.learned_at is not None:
        description.append(f"The site learned of the event on {ae.learned_at.astimezone(tz):%Y-%m-%d %H:%M %Z}")
    description += [f"Follow-up received {f.received_at:%Y-%m-%d %H:%M}: {f.information}" for f in follow_ups]
    if death is not None:
        description += [f"Death on {death.date_of_death}; cause(s): {'; '.join(c for c in death.causes if c.strip())};"
                        f" autopsy: {AUTOPSY[death.autopsy].lower()}", f"Death narrative: {death.narrative}"]
    event = Section("B", "Adverse event", (
        Block("B1", "Adverse event or product problem", "Adverse event"),
        Block("B2", "Outcomes attributed to adverse event", "; ".join(outcomes), True),
        Block("B3", "Date of event", ae.onset.isoformat(), True),
        Block("B4", "Date of this report", report_date.isoformat(), True),
        Block("B5.1", "Describe event", "\n".join(description)),
        Block("B5.2", "Verbatim description (site)", ae.description.strip(), True),
        Block("B6", "Relevant tests / laboratory data, including dates", _labs(ae, data)),
        Block("B7", "Other relevant history, including pre-existing medical conditions",
              history.strip() or f"Enrolled for: {', '.join(protocol.conditions)}"),
    ))

    route = (intervention.route or "").lower()
    none_given = "no infusion on or before the onset (pre-treatment event)"
    product = Section("C", "Suspect product(s)", (
        Block("C1", "Name, strength, manufacturer", f"{intervention.name} — investigational; {sponsor}", True),
        Block("C2", "Dose, frequency and route used",
              "\n".join(f"#{i.number}: {infusion_dose_text(spec, i.total_cells, i.weight_kg)} ({i.total_cells:,.0f} cells at"
                        f" {weight_text(i.weight_kg)}), once,"
                        f" {route or 'route not in the protocol'}" for i in given) if given else none_given, True),
        Block("C3", "Therapy dates", "\n".join(f"#{i.number}: {i.date}" for i in given) if given else none_given, True),
        Block("C4", "Diagnosis for use (indication)", "; ".join(protocol.conditions)),
        Block("C5", "Event abated after use stopped or dose reduced", _dechallenge(ae)),
        Block("C6", "Lot #", "\n".join(f"#{i.number}: {i.lot}" for i in given if i.lot.strip())
              if given else none_given, True),
        Block("C7", "Expiration date", "not recorded in the trial desk"),
        Block("C8", "Event reappeared after reintroduction", _rechallenge(ae, data)),
        Block("C9", "NDC # or unique id", "; ".join(f"#{i.number}: donor {i.donor_id}" for i in given) or "investigational; no NDC"),
        Block("C10", "Concomitant medical products and therapy dates",
              "\n".join(f"with infusion #{i.number} ({i.date}): {premedication[i.number]}" for i in given
                        if premedication.get(i.number, "").strip()) or "none recorded"),
    ))
    device = Section("D", "Suspect medical device", (), "Does not apply: the suspect product is a biologic.")
    initial = Section("E", "Initial reporter", (
        Block("E1", "Name and address", ", ".join(x for x in (reporter.name, reporter.institution, reporter.address) if x.strip())
              if reporter.name.strip() else "", True),
        Block("E1", "Phone / e-mail", " / ".join(x for x in (reporter.phone, reporter.email) if x.strip())),
        Block("E2", "Health professional?", "Yes"),
        Block("E3", "Occupation", f"{reporter.qualification} (investigator)"),
        Block("E4", "Initial reporter also sent report to FDA", "No (reported by the sponsor-investigator under the IND)"),
    ))
    facility = Section("F", "For use by user facility / importer", (), "Does not apply: reported by the IND sponsor-investigator.")
    manufacturer = Section("G", "All manufacturers (IND sponsor-investigator)", (
        Block("G1", "Contact office", f"{sponsor}; {reporter.name} (sponsor-investigator)" if reporter.name.strip() else sponsor, True),
        Block("G3", "Report source", "Study"),
        Block("G4", "Date received by manufacturer", site_date(ae.learned_at, "learned_at", tz).isoformat() if ae.learned_at else "", True),
        Block("G5", "IND #", (ind_number or protocol.identification.ind_number or "").strip(), True),
        Block("G6", "Protocol #", f"{protocol.identification.nct_id} (protocol version {protocol.version})", True),
        Block("G7", "Type of report", _report_type(ae, len(follow_ups))),
        Block("G8", "Adverse event term(s)", f"{ae.term} (MedDRA LLT {ae.meddra_code}; {ae.soc})"),
        Block("G9", "Manufacturer report #", f"{protocol.identification.nct_id}-{ae.id}"),
    ))
    notes = () if ae.serious else ("This event is not serious: a 3500A is not required for it.",)
    return MedwatchForm(ae.id, ae.subject_id, protocol.identification.nct_id, report_date,
                        (patient, event, product, device, initial, facility, manufacturer), notes)


def render_html(form: MedwatchForm) -> str:
    """The form as a printable HTML page (Jinja2 template ``templates/medwatch.html.j2``)."""
    from trialdesk.safety.dsmb_report import _environment

    return _environment().get_template("medwatch.html.j2").render(form=form)

"""The DSMB safety report: de-identified tables from a data cut and the safety status, as HTML and PDF.

:func:`build_report` computes the content once (:class:`DsmbReport`, a list of :class:`ReportTable`);
:func:`render_html` lays it out with the Jinja2 template ``templates/dsmb_report.html.j2`` (with print
CSS), and :func:`render_pdf` (:mod:`trialdesk.safety.dsmb_pdf`) writes the same tables to PDF.

Counting conventions (stated in the report too):

- **Treatment-emergent AEs** (onset on or after the first infusion and within ``ae_follow_up_days``)
  fill the tables by SOC and term, by grade and by relatedness. Events before the first infusion and
  after the follow-up window are not dropped: the per-infusion table shows them on their own rows.
- "Events" counts AE records; "participants" counts distinct participants. In the grade table each
  participant is counted once, at the worst grade among their events.
- "Related" means possibly, probably or definitely related.
- Per infusion and per dose level, an AE belongs to the infusion it follows
  (:mod:`trialdesk.safety.attribution`); dose levels are the protocol's (``dosing.levels``), or, for a
  per-kg range, the dose rounded to 0.1 × 10^6 cells/kg. Doses are shown in the protocol's unit.

De-identification: participants appear by subject id only; no names, screening numbers, ages at
enrolment, product lot or donor ids, verbatim AE descriptions (free text can name people), or calendar
dates of participants' events. Times are study days from each participant's first infusion; the only
calendar dates are the data cut-off and those of the DSMB's own decisions (listed with their rationale
and signature; a decision to stop heads the report).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import jinja2
from markupsafe import Markup

from trialdesk.protocol.model import Protocol
from trialdesk.safety.aggregate import evaluate_aggregate
from trialdesk.safety.attribution import Attribution, DoseGroup, attribute_all, dose_group, grouping_text
from trialdesk.safety.outcome_measures import compute, events_text, group_label, primary_measure, window_text
from trialdesk.safety.sae_clock import SaeClockError, due_reports
from trialdesk.safety.site_time import site_zone
from trialdesk.safety.stopping_rules import SafetyStatus
from trialdesk.safety.suggestions import hy_law_cases
from trialdesk.safety.swimmer_plot import swimmer_plot
from trialdesk.terminology.ctcae import catalogue
from trialdesk.trial.dose import PER_KG_IN_MILLIONS, number_text, shown_unit
from trialdesk.trial.dose import amount as dose_amount
from trialdesk.trial.dsmb_decision import DECISIONS, Decision
from trialdesk.trial.records import RELATEDNESS_ORDER, AdverseEvent, TrialData
from trialdesk.trial.screening_log import tally

__all__ = ["DsmbReport", "ReportTable", "build_report", "render_html"]

Cell = str | int


@dataclass(frozen=True)
class ReportTable:
    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""

    def column(self, name: str) -> list[Cell]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def row(self, *first_cells: Cell) -> tuple[Cell, ...]:
        """The row whose first cells are ``first_cells``."""
        for row in self.rows:
            if row[: len(first_cells)] == first_cells:
                return row
        raise KeyError(f"{self.key}: no row starting {first_cells}")


@dataclass(frozen=True)
class DsmbReport:
    nct_id: str
    title: str
    protocol_version: str
    cutoff: str
    status_sentence: str
    bayes_sentence: str
    tables: tuple[ReportTable, ...]
    swimmer_svg: str
    swimmer_png: bytes

    def table(self, key: str) -> ReportTable:
        for t in self.tables:
            if t.key == key:
                return t
        raise KeyError(f"no table {key!r}; tables: {', '.join(t.key for t in self.tables)}")


def _participants(aes: Iterable[AdverseEvent]) -> int:
    return len({ae.subject_id for ae in aes})


def _enrolment(data: TrialData, protocol: Protocol) -> ReportTable:
    plan = protocol.infusion_plan
    count = plan.count if plan is not None else max((i.number for i in data.infusions), default=1)
    statuses = Counter(p.status for p in data.participants)
    log = tally(data.screening)
    rows: list[tuple[Cell, ...]] = [
        ("Screened", log.screened),
        ("Screen failed", log.screen_failed),
        ("Pending eligibility sign-off", log.pending_signoff),
        ("Enrolled", len(data.participants)),
        ("Enrolment target", protocol.enrolment.target),
    ]
    rows += [(f"Received infusion {k}", len({i.subject_id for i in data.infusions if i.number == k})) for k in range(1, count + 1)]
    rows += [
        ("On study", statuses["enrolled"] + statuses["on_study"]),
        ("Completed follow-up", statuses["completed"]),
        ("Withdrawn", statuses["withdrawn"]),
        ("Off study (other)", statuses["off_study"]),
    ]
    return ReportTable("enrolment", "Enrolment and infusions", ("", "participants"), tuple(rows),
                       "Screened: screening entries with a screening decision (signed, excluded by the data, enrolled or withdrawn"
                       " before enrolment); entries pending the investigator's eligibility sign-off are not counted as screened.")


def _participant_status(data: TrialData, protocol: Protocol) -> ReportTable:
    shown = protocol.study_intervention.dose_spec or PER_KG_IN_MILLIONS
    rows: list[tuple[Cell, ...]] = []
    for p in sorted(data.participants, key=lambda p: p.subject_id):
        infusions = data.infusions_of(p.subject_id)
        first = min((i.date for i in infusions), default=None)
        doses = ", ".join(number_text(dose_amount(shown, i.total_cells, weight_kg=i.weight_kg)) for i in infusions) or "-"
        last = min(d for d in (data.cutoff, p.off_study_on) if d is not None)
        rows.append((p.subject_id, p.status.replace("_", " "), len(infusions), doses,
                     (last - first).days if first is not None else "-",
                     sum(1 for ae in data.adverse_events if ae.subject_id == p.subject_id)))
    return ReportTable("participants", "Participants", ("subject", "status", "infusions", f"dose ({shown_unit(shown.unit)})",
                                                         "last study day", "AEs"), tuple(rows))


def _by_soc_and_term(aes: Sequence[AdverseEvent]) -> ReportTable:
    order = {soc: i for i, soc in enumerate(catalogue().socs)}
    rows: list[tuple[Cell, ...]] = []
    for soc in sorted({ae.soc for ae in aes}, key=lambda s: (order.get(s, len(order)), s)):
        in_soc = [ae for ae in aes if ae.soc == soc]
        grades = Counter(ae.grade for ae in in_soc)
        rows.append((soc, "All terms", len(in_soc), _participants(in_soc), *(grades[g] for g in range(1, 6))))
        for term in sorted({ae.term for ae in in_soc}):
            of_term = [ae for ae in in_soc if ae.term == term]
            grades = Counter(ae.grade for ae in of_term)
            rows.append((soc, term, len(of_term), _participants(of_term), *(grades[g] for g in range(1, 6))))
    return ReportTable("by_soc_term", "Treatment-emergent AEs by system organ class and term",
                       ("SOC", "term", "events", "participants", "grade 1", "grade 2", "grade 3", "grade 4", "grade 5"), tuple(rows),
                       "Events by grade; participants counted once per row.")


def _by_grade(aes: Sequence[AdverseEvent]) -> ReportTable:
    worst: dict[str, int] = {}
    for ae in aes:
        worst[ae.subject_id] = max(ae.grade, worst.get(ae.subject_id, 0))
    rows = tuple((f"Grade {g}", sum(1 for ae in aes if ae.grade == g), sum(1 for w in worst.values() if w == g)) for g in range(1, 6))
    return ReportTable("by_grade", "Treatment-emergent AEs by CTCAE grade", ("grade", "events", "participants (worst grade)"),
                       (*rows, ("Any grade", len(aes), len(worst))))


def _by_relatedness(aes: Sequence[AdverseEvent]) -> ReportTable:
    rows: list[tuple[Cell, ...]] = []
    for r in reversed(RELATEDNESS_ORDER):
        of = [ae for ae in aes if ae.relatedness == r]
        rows.append((r.capitalize(), len(of), _participants(of), sum(1 for ae in of if ae.grade >= 3), sum(1 for ae in of if ae.serious)))
    related = [ae for ae in aes if ae.related]
    rows.append(("Related (possibly or more)", len(related), _participants(related), sum(1 for ae in related if ae.grade >= 3),
                 sum(1 for ae in related if ae.serious)))
    return ReportTable("by_relatedness", "Treatment-emergent AEs by relatedness to the study product",
                       ("relatedness", "events", "participants", "grade >= 3 events", "serious events"), tuple(rows))


def _summary(aes: Sequence[AdverseEvent]) -> tuple[Cell, ...]:
    return (len(aes), _participants(aes), sum(1 for ae in aes if ae.related), sum(1 for ae in aes if ae.grade >= 3),
            sum(1 for ae in aes if ae.serious))


_SUMMARY_COLUMNS = ("events", "participants with an event", "related events", "grade >= 3 events", "serious events")


def _primary_measure(data: TrialData, protocol: Protocol) -> ReportTable | None:
    """The primary outcome as the protocol's measure defines it (None when the protocol names no primary measure)."""
    m = primary_measure(protocol)
    if m is None:
        return None
    result = compute(protocol, data, m.id)
    unit = "participants with an event" if m.counts == "participants" else "events"
    rows = tuple((group_label(protocol, m, g.group), g.analysed, g.count, ", ".join(g.event_ids) or "-") for g in result.groups)
    return ReportTable("primary_measure", f"Primary outcome: {m.title}", ("group", "participants analysed", unit, "events counted"),
                       rows, f"Counted as the protocol defines it: {events_text(m)}, {window_text(m)}.")


def _per_infusion(data: TrialData, att: Mapping[str, Attribution], primary: bool = True) -> ReportTable:
    numbers = sorted({i.number for i in data.infusions})
    rows: list[tuple[Cell, ...]] = []
    for k in numbers:
        aes = [ae for ae in data.adverse_events if att[ae.id].treatment_emergent and att[ae.id].infusion_number == k]
        rows.append((f"Infusion {k}", len({i.subject_id for i in data.infusions if i.number == k}), *_summary(aes)))
    before = [ae for ae in data.adverse_events if att[ae.id].pre_treatment]
    after = [ae for ae in data.adverse_events if not att[ae.id].pre_treatment and not att[ae.id].within_follow_up]
    rows.append(("Before first infusion", "-", *_summary(before)))
    rows.append(("After follow-up window", "-", *_summary(after)))
    title = "AEs per infusion" + (" (primary outcome)" if primary else "")
    return ReportTable("per_infusion", title, ("infusion", "participants infused", *_SUMMARY_COLUMNS),
                       tuple(rows), "An AE belongs to the latest infusion on or before its onset.")


def _per_dose(data: TrialData, att: Mapping[str, Attribution], protocol: Protocol) -> ReportTable:
    rows: list[tuple[Cell, ...]] = []
    spec = protocol.study_intervention.dose_spec
    group = {(i.subject_id, i.number): dose_group(spec, i) for i in data.infusions}

    def of(a: Attribution) -> DoseGroup | None:
        return group[(a.infusion.subject_id, a.infusion.number)] if a.infusion is not None else None

    for key in sorted(set(group.values())):
        given = [i for i in data.infusions if group[(i.subject_id, i.number)] == key]
        aes = [ae for ae in data.adverse_events if att[ae.id].treatment_emergent and of(att[ae.id]) == key]
        rows.append((key.label, len(given), len({i.subject_id for i in given}), *_summary(aes)))
    how = grouping_text(spec)
    return ReportTable("per_dose", "AEs per dose level", ("dose level", "infusions", "participants dosed", *_SUMMARY_COLUMNS),
                       tuple(rows), f"{how}; an AE counts at the dose of the infusion it follows.")


def _day(att: Attribution, day: int | None) -> Cell:
    return day if day is not None else "-"


def _sae_listing(data: TrialData, att: Mapping[str, Attribution]) -> ReportTable:
    rows: list[tuple[Cell, ...]] = []
    for ae in sorted((a for a in data.adverse_events if a.serious), key=lambda a: (a.subject_id, a.onset, a.id)):
        a = att[ae.id]
        resolved = (ae.resolved - a.first_infusion.date).days if ae.resolved is not None and a.first_infusion is not None else "-"
        rows.append((ae.id, ae.subject_id, ae.term, ae.grade, _day(a, a.study_day), a.infusion_number or "-", ae.relatedness,
                     {True: "expected", False: "unexpected", None: "not yet assessed"}[ae.expected],
                     ", ".join(c.replace("_", " ") for c in ae.seriousness),
                     ae.outcome.replace("_", " "), resolved))
    return ReportTable("sae_listing", "Serious adverse events",
                       ("AE", "subject", "term", "grade", "onset day", "infusion", "relatedness", "expected", "criteria", "outcome",
                        "resolved day"), tuple(rows))


def _deaths(data: TrialData, att: Mapping[str, Attribution]) -> ReportTable:
    rows = tuple((ae.subject_id, ae.id, ae.term, _day(att[ae.id], att[ae.id].study_day), ae.relatedness)
                 for ae in sorted(data.adverse_events, key=lambda a: a.subject_id) if ae.grade == 5 or ae.outcome == "fatal")
    return ReportTable("deaths", "Deaths", ("subject", "AE", "term", "study day", "relatedness"), rows)


def _rules(status: SafetyStatus, protocol: Protocol) -> ReportTable:
    needed = {r.id: r.participants_at_least for r in protocol.safety.stopping_rules}
    rows: list[tuple[Cell, ...]] = []
    for r in status.rules:
        threshold = f"{len(r.participants)} / {needed[r.rule_id]}" if r.rule_id in needed else f"{len(r.participants)}"
        state = {"clear": "not triggered", "paused": "IN FORCE", "resumed": "resumed by DSMB", "stopped": "trial stopped by DSMB"}[r.state]
        rows.append((r.rule_id, r.description, r.action.replace("_", " "), threshold, ", ".join(r.evidence) or "-", state))
    return ReportTable("stopping_rules", "Stopping rules", ("rule", "description", "action", "participants qualifying / needed",
                                                             "evidence (AE ids)", "state"), tuple(rows))


def _reference_safety_information(protocol: Protocol) -> ReportTable:
    rows = tuple((e.term, e.highest_expected_grade,
                  f"within {e.within_hours_of_infusion} h of an infusion" if e.within_hours_of_infusion else "any time",
                  f"{e.listed_rate:.0%}" if e.listed_rate is not None else "-", e.citation)
                 for e in protocol.safety.reference_safety_information)
    return ReportTable("reference_safety_information", "Reference safety information (expectedness, 21 CFR 312.32(a))",
                       ("term", "expected up to grade", "setting", "listed rate (serious)", "source"), rows,
                       "An event is unexpected when not listed at the specificity or severity observed; the assessment on each"
                       " event is the sponsor-investigator's.")


def _ind_reports(data: TrialData, protocol: Protocol, att: Mapping[str, Attribution]) -> ReportTable:
    """Every SAE and IND safety report as of the end of the cut-off day; days counted from when the site learned of it
    (no calendar dates: de-identified)."""
    tz = site_zone(protocol)
    end = dt.datetime.combine(data.cutoff, dt.time.max, tzinfo=tz)
    try:
        reports = due_reports(data, protocol, end, tz=tz)
    except SaeClockError as exc:
        return ReportTable("ind_reports", "SAE and IND safety reports", ("problem",), ((str(exc),),))
    rows: list[tuple[Cell, ...]] = []
    rules = {rule.id: rule for rule in protocol.safety.sae_reporting}
    for r in reports:
        rule = rules[r.rule_id.split("/")[-1]]
        deadline = f"{rule.due_hours} h" if rule.due_hours is not None else f"{rule.due_calendar_days} calendar days"
        sent = (f"day {(r.submitted_at.astimezone(tz).date() - r.clock_start.astimezone(tz).date()).days}"
                + (" (late)" if r.late else "") if r.submitted_at else "-")
        status = r.status + (" if assessed unexpected" if r.pending_assessment else "")
        rows.append((r.ae_id, att[r.ae_id].subject_id if r.ae_id in att else "-", r.rule_id, r.recipient,
                     deadline, sent, status))
    return ReportTable("ind_reports", "SAE and IND safety reports (21 CFR 312.32)",
                       ("AE", "subject", "rule", "recipient", "due after learning", "submitted", f"status at end of {data.cutoff}"),
                       tuple(rows), "7-day notice and also the 15-day report for an unexpected fatal or life-threatening suspected"
                       " reaction; every IND safety report notifies all participating investigators; follow-ups as soon as the"
                       " information is available. Days count from the day the site learned of the event (day 0).")


def _aggregate(data: TrialData, protocol: Protocol) -> ReportTable:
    rows = tuple((a.rule_id, a.term, f"{a.listed_rate:.0%}", f"{a.with_event} / {a.infused}", f"{a.probability:.3f}",
                  f"fired ({a.trigger_ae})" if a.fired else "not fired") for a in evaluate_aggregate(data, protocol))
    return ReportTable("aggregate_reports", "Increased rate of a serious suspected reaction (21 CFR 312.32(c)(1)(iv))",
                       ("rule", "term", "listed rate", "participants with it / infused", "P(at least this many | listed rate)",
                        "state"), rows)


def _hy_law(data: TrialData, att: Mapping[str, Attribution]) -> ReportTable:
    rows: list[tuple[Cell, ...]] = []
    for c in hy_law_cases(data):
        first = min((i.date for i in data.infusions_of(c.subject_id)), default=None)
        t, b = c.transaminase, c.bilirubin
        rows.append((c.subject_id, (c.date - first).days if first else "-", f"{t.test} {t.value / (t.range_high or 1):.1f} × ULN",
                     f"bilirubin {b.value / (b.range_high or 1):.1f} × ULN"))
    return ReportTable("hy_law", "Hy's law (ALT or AST > 3 × ULN with total bilirubin > 2 × ULN)",
                       ("subject", "study day", "transaminase", "bilirubin"), tuple(rows))


def _decisions(decisions: Sequence[Decision]) -> ReportTable:
    rows = tuple((d.decided_on.isoformat(), DECISIONS[d.kind], d.report_cutoff.isoformat(), d.rationale, d.modifications or "-",
                  d.signed_by or "unsigned") for d in sorted(decisions, key=lambda d: d.decided_on))
    return ReportTable("dsmb_decisions", "DSMB decisions", ("decided on", "decision", "report cut-off reviewed", "rationale",
                                                            "modifications", "signed"), rows)


def _status_sentence(status: SafetyStatus, decisions: Sequence[Decision] = ()) -> str:
    stop = next((d for d in decisions if d.kind == "stop"), None)
    if stop is not None:
        return f"The trial was stopped by the DSMB on {stop.decided_on}: no further enrolment or dosing."
    if status.action is None:
        return "No stopping rule is in force: enrolment and dosing may continue."
    in_force = ", ".join(r.rule_id for r in status.in_force)
    what = {"stop_trial": "The trial is stopped", "pause_enrolment_and_dosing": "Enrolment and dosing are paused",
            "pause_dosing": "Dosing is paused"}[status.action]
    return f"{what} (rule {in_force}) until the DSMB records a decision."


def build_report(data: TrialData, protocol: Protocol, status: SafetyStatus, decisions: Sequence[Decision] = ()) -> DsmbReport:
    """The report; ``decisions`` are the DSMB's recorded decisions up to the cut-off (listed, and a stop heads the report)."""
    att = attribute_all(data, protocol)
    emergent = [ae for ae in data.adverse_events if att[ae.id].treatment_emergent]
    svg = swimmer_plot(data, att, protocol.safety.ae_follow_up_days, "svg").decode("utf-8")
    measured = _primary_measure(data, protocol)
    tables = (
        _enrolment(data, protocol),
        _participant_status(data, protocol),
        *((measured,) if measured is not None else ()),
        _per_infusion(data, att, primary=measured is None),
        _per_dose(data, att, protocol),
        _by_soc_and_term(emergent),
        _by_grade(emergent),
        _by_relatedness(emergent),
        _sae_listing(data, att),
        _ind_reports(data, protocol, att),
        _deaths(data, att),
        _rules(status, protocol),
        _aggregate(data, protocol),
        _hy_law(data, att),
        _reference_safety_information(protocol),
        _decisions([d for d in decisions if d.decided_on <= data.cutoff]),
    )
    return DsmbReport(
        nct_id=protocol.identification.nct_id,
        title=protocol.identification.brief_title,
        protocol_version=protocol.version,
        cutoff=data.cutoff.isoformat(),
        status_sentence=_status_sentence(status, [d for d in decisions if d.decided_on <= data.cutoff]),
        bayes_sentence=status.bayes.sentence() if status.bayes is not None else "No Bayesian monitor is configured.",
        tables=tables,
        swimmer_svg=svg[svg.index("<svg"):],
        swimmer_png=swimmer_plot(data, att, protocol.safety.ae_follow_up_days, "png"),
    )


def _environment() -> jinja2.Environment:
    folder = resources.files("trialdesk.safety").joinpath("templates")
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def render_html(report: DsmbReport) -> str:
    template = _environment().get_template("dsmb_report.html.j2")
    numeric: Callable[[Cell], bool] = lambda cell: isinstance(cell, int)  # noqa: E731
    return template.render(report=report, swimmer=Markup(report.swimmer_svg), numeric=numeric)

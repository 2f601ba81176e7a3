"""The protocol's stopping rules and Bayesian monitor, evaluated on a data cut, with the pauses they impose.

A fixed rule counts the distinct participants with a *qualifying* AE: grade at least ``min_grade``,
relatedness at least ``min_relatedness`` (when given), term among ``terms`` (when given, compared
case-insensitively). It triggers when the count reaches ``participants_at_least``. The Bayesian
monitor (:mod:`trialdesk.safety.bayesian_monitor`) counts participants with a qualifying event among
participants infused and triggers when the posterior probability is above its bound.

Readings:

- A rule with ``within_hours_of_infusion`` counts only events whose onset date lies in that setting
  after one of the participant's infusions (:func:`trialdesk.safety.expectedness.within_hours_of_infusion`:
  with 24 h, the infusion day or the day after), whatever their attribution when the rule names none.
- ``serious_only`` counts serious events only; ``dlt_only`` counts only events that meet the protocol's
  DLT definition (``dose_finding.dlt``: grade, relatedness, seriousness, terms, window after the first
  infusion), as the investigator graded and attributed them.
- Only AEs with onset on or after the participant's first infusion count: an event before any
  product was given says nothing about the product's toxicity (and a related one is refused at entry).
  A late event after the follow-up window still counts: a related death must stop the trial whenever it
  is learned of.
- Rules act on evidence as the site learned it: each AE is known at ``learned_at`` when recorded, else
  at the start of its onset date at the site. A rule triggers at the instant its condition first holds.
- A triggered rule keeps its action in force until a :class:`DsmbDecision` for that rule, decided at or
  after the trigger, says ``resume`` (the pause lifts) or ``stop`` (the trial stops for good). After a
  resume, the next qualifying AE learned of while the condition still holds triggers the rule again:
  the DSMB decided on the evidence it had.
- The Bayesian monitor's denominator counts the participants who have completed its
  ``observation_days`` after their first infusion, plus those who already had a qualifying event (an
  event makes a participant's outcome known); a participant infused yesterday has not been observed
  and would only dilute the rate.
- The Bayesian monitor has no ``action`` in the protocol model; monitors are stated as pausing dosing
  (e.g. the reason in NCT03929120's file says "dosing pauses"), so it acts as ``pause_dosing`` under the
  id ``BAYES`` (:data:`BAYES_RULE_ID`). The lead may add an ``action`` field to ``BayesianMonitor``.
- The strongest action in force wins: stop_trial > pause_enrolment_and_dosing > pause_dosing. Every
  action pauses dosing; enrolment pauses under pause_enrolment_and_dosing and stop_trial (as in
  :class:`trialdesk.trial.pause.Pause`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from trialdesk.protocol.model import BayesianMonitor, DltDefinition, Protocol, StoppingRule
from trialdesk.safety.aggregate import AggregateEvaluation, evaluate_aggregate
from trialdesk.safety.bayesian_monitor import Posterior, posterior
from trialdesk.safety.expectedness import within_hours_of_infusion
from trialdesk.safety.site_time import require_aware, site_zone
from trialdesk.trial.cohorts import is_dlt
from trialdesk.trial.pause import Pause, PauseAction
from trialdesk.trial.records import AdverseEvent, Relatedness, TrialData, at_least

__all__ = [
    "ACTION_STRENGTH",
    "BAYES_ACTION",
    "BAYES_RULE_ID",
    "DsmbDecision",
    "RuleStatus",
    "SafetyStatus",
    "evaluate",
    "qualifies",
]

BAYES_RULE_ID = "BAYES"
BAYES_ACTION: PauseAction = "pause_dosing"
ACTION_STRENGTH: dict[PauseAction, int] = {"pause_dosing": 1, "pause_enrolment_and_dosing": 2, "stop_trial": 3}


@dataclass(frozen=True)
class DsmbDecision:
    """A signed DSMB decision on a triggered rule."""

    rule_id: str
    decided_at: dt.datetime
    decision: Literal["resume", "stop"]
    signed_by: str


@dataclass(frozen=True)
class RuleStatus:
    rule_id: str
    description: str
    action: PauseAction
    evidence: tuple[str, ...]  # ids of the qualifying AEs
    participants: tuple[str, ...]  # subjects with a qualifying AE
    triggered_at: dt.datetime | None  # the latest trigger (None: the condition never held)
    state: Literal["clear", "paused", "resumed", "stopped"]
    decision: DsmbDecision | None = None  # the decision that answered the latest trigger

    @property
    def triggered(self) -> bool:
        return self.triggered_at is not None

    @property
    def in_force(self) -> bool:
        """Whether the rule's action is in force now."""
        return self.state in ("paused", "stopped")

    @property
    def effective_action(self) -> PauseAction:
        return "stop_trial" if self.state == "stopped" else self.action

    def sentence(self) -> str:
        if self.triggered_at is None:
            return f"{self.rule_id}: not triggered ({len(self.participants)} participant(s) with a qualifying event)"
        when = self.triggered_at.date().isoformat()
        tail = {
            "paused": f"{self.action.replace('_', ' ')} until the DSMB decides",
            "resumed": f"resumed by the DSMB on {self.decision.decided_at.date() if self.decision else '?'}",
            "stopped": f"trial stopped by the DSMB on {self.decision.decided_at.date() if self.decision else '?'}",
            "clear": "",
        }[self.state]
        return f"{self.rule_id}: triggered on {when} by {', '.join(self.evidence)}; {tail}"


@dataclass(frozen=True)
class SafetyStatus:
    cutoff: dt.date
    rules: tuple[RuleStatus, ...]
    bayes: Posterior | None  # the monitor's posterior on the whole data cut
    tz: ZoneInfo  # the site's clock the rules were evaluated on
    #: the aggregate IND safety report rules (21 CFR 312.32(c)(1)(iv)), evaluated with the stopping rules; one that
    #: fired puts its 15-day reports in trialdesk.safety.sae_clock.due_reports
    aggregate: tuple[AggregateEvaluation, ...] = ()

    @property
    def triggered(self) -> list[RuleStatus]:
        return [r for r in self.rules if r.triggered]

    @property
    def in_force(self) -> list[RuleStatus]:
        return [r for r in self.rules if r.in_force]

    @property
    def action(self) -> PauseAction | None:
        """The strongest action in force, or None when nothing is paused."""
        actions = [r.effective_action for r in self.in_force]
        if not actions:
            return None
        return max(actions, key=lambda a: ACTION_STRENGTH[a])

    @property
    def stopped(self) -> bool:
        return self.action == "stop_trial"

    @property
    def paused_enrolment(self) -> bool:
        return self.action in ("pause_enrolment_and_dosing", "stop_trial")

    @property
    def paused_dosing(self) -> bool:
        return self.action is not None

    def rule(self, rule_id: str) -> RuleStatus:
        for r in self.rules:
            if r.rule_id == rule_id:
                return r
        raise KeyError(f"no rule {rule_id!r}; rules: {', '.join(r.rule_id for r in self.rules)}")

    def pauses(self, tz: ZoneInfo | None = None) -> list[Pause]:
        """The pauses in force, in the form the trial desk's enrolment and dosing checks take
        (dated on the site's calendar)."""
        zone = tz or self.tz
        return [Pause(r.rule_id, r.effective_action, r.triggered_at.astimezone(zone).date(), r.description)
                for r in self.in_force if r.triggered_at is not None]


def qualifies(ae: AdverseEvent, min_grade: int, min_relatedness: Relatedness | None, terms: Sequence[str] = ()) -> bool:
    if ae.grade < min_grade:
        return False
    if min_relatedness is not None and not at_least(ae.relatedness, min_relatedness):
        return False
    return not terms or ae.term.casefold() in {t.casefold() for t in terms}


def _known_at(ae: AdverseEvent, tz: ZoneInfo) -> dt.datetime:
    if ae.learned_at is not None:
        return require_aware(ae.learned_at, f"AE {ae.id} learned_at")
    return dt.datetime.combine(ae.onset, dt.time.min, tzinfo=tz)


def _on_treatment(data: TrialData) -> Callable[[AdverseEvent], bool]:
    first: dict[str, dt.date] = {}
    for i in data.infusions:
        first[i.subject_id] = min(i.date, first.get(i.subject_id, i.date))
    return lambda ae: ae.subject_id in first and ae.onset >= first[ae.subject_id]


@dataclass(frozen=True)
class _Rule:
    rule_id: str
    description: str
    action: PauseAction
    qualifies: Callable[[AdverseEvent], bool]
    holds: Callable[[Sequence[AdverseEvent], dt.datetime], bool]  # qualifying AEs known so far, at that instant


def _run(rule: _Rule, aes: Sequence[AdverseEvent], decisions: Sequence[DsmbDecision], tz: ZoneInfo) -> RuleStatus:
    """Replay the qualifying AEs and the DSMB's decisions in time order (an AE before a decision at the same instant)."""
    qualifying = sorted((ae for ae in aes if rule.qualifies(ae)), key=lambda ae: (_known_at(ae, tz), ae.id))
    timeline: list[tuple[dt.datetime, int, AdverseEvent | DsmbDecision]] = [(_known_at(ae, tz), 0, ae) for ae in qualifying]
    timeline += [(require_aware(d.decided_at, "decided_at"), 1, d) for d in decisions if d.rule_id == rule.rule_id]
    state: Literal["clear", "paused", "resumed", "stopped"] = "clear"
    triggered_at: dt.datetime | None = None
    decision: DsmbDecision | None = None
    known: list[AdverseEvent] = []
    for at, _, item in sorted(timeline, key=lambda t: (t[0], t[1])):
        if isinstance(item, AdverseEvent):
            known.append(item)
            if state in ("clear", "resumed") and rule.holds(known, at):
                state, triggered_at, decision = "paused", at, None
        elif state == "paused" and triggered_at is not None and at >= triggered_at:
            state, decision = ("resumed" if item.decision == "resume" else "stopped"), item
    return RuleStatus(
        rule.rule_id, rule.description, rule.action, tuple(ae.id for ae in qualifying),
        tuple(dict.fromkeys(ae.subject_id for ae in qualifying)), triggered_at, state, decision,
    )


def _fixed(r: StoppingRule, data: TrialData, tz: ZoneInfo, dlt: DltDefinition | None = None) -> _Rule:
    def in_setting(ae: AdverseEvent) -> bool:
        if r.within_hours_of_infusion is None:
            return True
        return within_hours_of_infusion(ae.onset, data.infusions_of(ae.subject_id), r.within_hours_of_infusion, tz) is not None

    def of_kind(ae: AdverseEvent) -> bool:
        if r.serious_only and not ae.serious:
            return False
        if not r.dlt_only:
            return True
        assert dlt is not None  # the protocol model refuses dlt_only without a DLT definition
        infusions = data.infusions_of(ae.subject_id)
        return bool(infusions) and is_dlt(ae, infusions[0].date, dlt)

    return _Rule(
        r.id, r.description, r.action,
        lambda ae: qualifies(ae, r.min_grade, r.min_relatedness, r.terms) and in_setting(ae) and of_kind(ae),
        lambda known, _at: len({ae.subject_id for ae in known}) >= r.participants_at_least,
    )


def _observed_by(data: TrialData, tz: ZoneInfo, days: int) -> Callable[[dt.datetime], set[str]]:
    """Participants who, at an instant, have completed ``days`` of observation after their first infusion."""
    firsts: dict[str, dt.datetime] = {}
    for i in data.infusions:
        at = i.started_at or dt.datetime.combine(i.date, dt.time.min, tzinfo=tz)
        at = require_aware(at, f"infusion {i.subject_id}#{i.number} started_at")
        firsts[i.subject_id] = min(at, firsts.get(i.subject_id, at))
    window = dt.timedelta(days=days)
    return lambda at: {s for s, t in firsts.items() if t + window <= at}


def _bayes(m: BayesianMonitor, data: TrialData, tz: ZoneInfo) -> _Rule:
    observed_by = _observed_by(data, tz, m.observation_days)

    def holds(known: Sequence[AdverseEvent], at: dt.datetime) -> bool:
        with_event = {ae.subject_id for ae in known}
        return posterior(m, len(with_event), len(observed_by(at) | with_event)).triggers

    description = (f"Bayesian monitor: P(rate of grade >= {m.min_grade}, {m.min_relatedness} or more related > {m.threshold_rate:.0%})"
                   f" above {m.posterior_probability:.0%}")
    return _Rule(BAYES_RULE_ID, description, BAYES_ACTION, lambda ae: qualifies(ae, m.min_grade, m.min_relatedness), holds)


def evaluate(data: TrialData, protocol: Protocol, decisions: Iterable[DsmbDecision] = (), tz: ZoneInfo | None = None) -> SafetyStatus:
    """The stopping rules and the Bayesian monitor on the data cut, with the DSMB's decisions
    applied; dates are the site's (``tz``, by default the protocol's site zone)."""
    tz = tz or site_zone(protocol)
    on_treatment = _on_treatment(data)
    aes = [ae for ae in data.adverse_events if ae.onset <= data.cutoff and on_treatment(ae)]
    decided = list(decisions)
    dlt = protocol.dose_finding.dlt if protocol.dose_finding is not None else None
    rules = [_fixed(r, data, tz, dlt) for r in protocol.safety.stopping_rules]
    monitor = protocol.safety.bayesian_monitor
    if monitor is not None:
        rules.append(_bayes(monitor, data, tz))
    statuses = tuple(_run(rule, aes, decided, tz) for rule in rules)
    bayes: Posterior | None = None
    if monitor is not None:
        end_of_cut = dt.datetime.combine(data.cutoff, dt.time.max, tzinfo=tz)
        with_event = {ae.subject_id for ae in aes if qualifies(ae, monitor.min_grade, monitor.min_relatedness)}
        bayes = posterior(monitor, len(with_event), len(_observed_by(data, tz, monitor.observation_days)(end_of_cut) | with_event))
    return SafetyStatus(data.cutoff, statuses, bayes, tz, tuple(evaluate_aggregate(data, protocol, tz)))

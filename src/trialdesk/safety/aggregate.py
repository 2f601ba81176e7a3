"""The aggregate IND safety report of 21 CFR 312.32(c)(1)(iv): a clinically important increase in the
rate of a serious suspected adverse reaction over the rate listed in the reference safety information.

The rule is the protocol's (``safety.aggregate_reports``, see
:class:`~trialdesk.protocol.model.AggregateReportRule`): for each listed term with a ``listed_rate``,
the participants with a *serious suspected* event of that term (serious, relatedness possibly or
stronger, onset on or after their first infusion) are counted among the participants infused; the rule
fires at the first instant when at least ``participants_at_least`` have one and the one-sided exact
binomial probability of that many or more at the listed rate is below ``alpha``.

Readings:

- Events count as the site learned of them (``learned_at``; a serious event always has it), and the
  denominator is the participants whose first infusion had started by then: the rule is replayed in
  time, like the stopping rules, so the clock of the report starts when the sponsor could first
  determine that the increase qualifies (312.32(c)(1): "after the sponsor determines that the
  information qualifies").
- A rule fires once per term; a further increase is follow-up information to that report.
- Expectedness does not matter here: an unexpected event is reported on its own (312.32(c)(1)(i)),
  and it still counts towards the rate.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from trialdesk.protocol.model import AggregateReportRule, Protocol
from trialdesk.safety.site_time import require_aware, site_zone
from trialdesk.trial.records import AdverseEvent, TrialData, is_related

__all__ = ["AggregateEvaluation", "evaluate_aggregate", "tail_probability"]


@functools.cache
def _binom() -> Any:
    return importlib.import_module("scipy.stats").binom


def tail_probability(with_event: int, participants: int, rate: float) -> float:
    """P(X >= with_event) for X ~ Binomial(participants, rate)."""
    if with_event <= 0:
        return 1.0
    return float(_binom().sf(with_event - 1, participants, rate))


@dataclass(frozen=True)
class AggregateEvaluation:
    """One aggregate rule on one listed term: whether (and when) it fired, and on what."""

    rule_id: str
    term: str
    listed_rate: float
    alpha: float
    evidence: tuple[str, ...]  # ids of the serious suspected events of the term, in the order learned
    with_event: int  # participants with one (now)
    infused: int  # participants infused (now)
    probability: float  # P(at least with_event | listed rate), now
    fired_at: dt.datetime | None
    trigger_ae: str | None  # the event that made it fire
    fired_with: tuple[int, int] | None = None  # (with_event, infused) when it fired

    @property
    def fired(self) -> bool:
        return self.fired_at is not None

    def sentence(self) -> str:
        base = (f"{self.rule_id} {self.term}: {self.with_event} of {self.infused} infused with a serious suspected reaction"
                f" (listed rate {self.listed_rate:.0%}; P(at least {self.with_event}) = {self.probability:.3f}, bound {self.alpha:g})")
        if self.fired_at is None:
            return base + "; not fired"
        x, n = self.fired_with or (self.with_event, self.infused)
        return base + f"; fired on {self.fired_at.date()} by {self.trigger_ae} ({x} of {n}): an IND safety report is due"


def _serious_suspected(ae: AdverseEvent, term: str) -> bool:
    return ae.serious and is_related(ae.relatedness) and ae.term.casefold() == term.casefold()


def _known_at(ae: AdverseEvent, tz: ZoneInfo) -> dt.datetime:
    if ae.learned_at is not None:
        return require_aware(ae.learned_at, f"AE {ae.id} learned_at")
    return dt.datetime.combine(ae.onset, dt.time.min, tzinfo=tz)


def _evaluate(rule: AggregateReportRule, term: str, rate: float, data: TrialData, tz: ZoneInfo) -> AggregateEvaluation:
    firsts: dict[str, dt.datetime] = {}
    first_dates: dict[str, dt.date] = {}
    for i in data.infusions:
        at = i.started_at or dt.datetime.combine(i.date, dt.time.min, tzinfo=tz)
        at = require_aware(at, f"infusion {i.subject_id}#{i.number} started_at")
        firsts[i.subject_id] = min(at, firsts.get(i.subject_id, at))
        first_dates[i.subject_id] = min(i.date, first_dates.get(i.subject_id, i.date))
    events = sorted((ae for ae in data.adverse_events if _serious_suspected(ae, term) and ae.subject_id in first_dates
                     and first_dates[ae.subject_id] <= ae.onset <= data.cutoff), key=lambda ae: (_known_at(ae, tz), ae.id))
    seen: set[str] = set()
    fired_at: dt.datetime | None = None
    trigger: str | None = None
    fired_with: tuple[int, int] | None = None
    for ae in events:
        seen.add(ae.subject_id)
        at = _known_at(ae, tz)
        infused = max(len(seen), sum(1 for t in firsts.values() if t <= at))
        if fired_at is None and len(seen) >= rule.participants_at_least and tail_probability(len(seen), infused, rate) < rule.alpha:
            fired_at, trigger, fired_with = at, ae.id, (len(seen), infused)
    infused_now = max(len(seen), len({i.subject_id for i in data.infusions if i.date <= data.cutoff}))
    return AggregateEvaluation(rule.id, term, rate, rule.alpha, tuple(ae.id for ae in events), len(seen), infused_now,
                               tail_probability(len(seen), infused_now, rate), fired_at, trigger, fired_with)


def evaluate_aggregate(data: TrialData, protocol: Protocol, tz: ZoneInfo | None = None) -> list[AggregateEvaluation]:
    """Every aggregate rule on every listed term it covers (those with a listed rate)."""
    tz = tz or site_zone(protocol)
    out = []
    for rule in protocol.safety.aggregate_reports:
        wanted = {t.casefold() for t in rule.terms}
        for entry in protocol.safety.reference_safety_information:
            if entry.listed_rate is None or (wanted and entry.term.casefold() not in wanted):
                continue
            out.append(_evaluate(rule, entry.term, entry.listed_rate, data, tz))
    return out

"""The primary outcome as the protocol's ``outcome_measures`` defines it: one row per group (cohort,
dose level or all), the participants analysed, the count (events or participants with an event), and
for participants the proportion with its exact (Clopper-Pearson) 95 % confidence interval; every adverse
event of the cut listed with whether the measure counted it.

Used by ``trialdesk report primary-outcome``, the DSMB report and the ClinicalTrials.gov results when the
protocol names a primary measure; without one the registered outcome is counted the first trial's way
(:mod:`.primary_outcome`: all events per infusion).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trialdesk.analysis.primary_outcome import clopper_pearson
from trialdesk.protocol.model import OutcomeMeasure, Protocol
from trialdesk.safety.outcome_measures import MeasureResult, compute, events_text, group_label, measure, window_text
from trialdesk.trial.records import TrialData


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


@dataclass(frozen=True)
class MeasureRow:
    group: str
    label: str
    analysed: int
    count: int
    ci_low: float | None  # participants only
    ci_high: float | None
    event_ids: tuple[str, ...]

    @property
    def proportion(self) -> float | None:
        if self.ci_low is None:
            return None
        return self.count / self.analysed if self.analysed else 0.0


@dataclass(frozen=True)
class MeasureReport:
    protocol_id: str
    cutoff: str
    measure: OutcomeMeasure
    result: MeasureResult
    rows: tuple[MeasureRow, ...]
    counted_ids: frozenset[str]
    all_event_ids: tuple[str, ...]

    @property
    def unit(self) -> str:
        return "participants" if self.measure.counts == "participants" else "events"

    @property
    def total(self) -> int:
        """Over all groups: events, or participants with an event (each participant is in one group)."""
        return sum(r.count for r in self.rows)

    @property
    def analysed(self) -> int:
        return sum(r.analysed for r in self.rows)

    @property
    def definition(self) -> str:
        counted = "participants with at least one" if self.measure.counts == "participants" else "the number of"
        return f"{counted} {events_text(self.measure)}, {window_text(self.measure)}"

    def to_csv(self, directory: Path) -> list[Path]:
        """``primary_outcome_measure.csv`` (one line per group) and ``primary_outcome_measure_events.csv``."""
        directory.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["measure", "group", "label", "analysed", self.unit, "proportion", "ci95_low", "ci95_high", "events_counted"])
        for r in self.rows:
            w.writerow([self.measure.id, r.group, r.label, r.analysed, r.count, _fmt(r.proportion), _fmt(r.ci_low), _fmt(r.ci_high),
                        " ".join(r.event_ids)])
        summary = directory / "primary_outcome_measure.csv"
        summary.write_text(buf.getvalue(), encoding="utf-8")
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["ae_id", "counted"])
        for ae_id in self.all_event_ids:
            w.writerow([ae_id, "Y" if ae_id in self.counted_ids else "N"])
        events = directory / "primary_outcome_measure_events.csv"
        events.write_text(buf.getvalue(), encoding="utf-8")
        return [summary, events]


def measure_report(protocol: Protocol, data: TrialData, measure_id: str | None = None,
                   assignments: Mapping[str, str] | None = None) -> MeasureReport:
    """The measure ``measure_id`` (default: the primary one) of ``data``, with labels and confidence intervals."""
    m = measure(protocol, measure_id)
    result = compute(protocol, data, m.id, assignments)
    rows = []
    for g in result.groups:
        low: float | None = None
        high: float | None = None
        if m.counts == "participants":
            low, high = clopper_pearson(g.count, g.analysed)
        rows.append(MeasureRow(g.group, group_label(protocol, m, g.group), g.analysed, g.count, low, high, g.event_ids))
    counted = frozenset(e for g in result.groups for e in g.event_ids)
    return MeasureReport(data.protocol_id, data.cutoff.isoformat(), m, result, tuple(rows), counted,
                         tuple(sorted(ae.id for ae in data.adverse_events)))

"""Operating characteristics of the configured stopping rules: how often they stop the trial, and how
many participants are treated, for true toxicity rates from 5 % to 50 %.

The model: participants are treated one after another (the enrolment stagger lets each one's outcome
be known before the next is dosed), each has a qualifying toxicity independently with probability
``p``, and after each participant the rules look at (participants treated ``k``, participants with a
toxicity ``x``). Each rule is then a *boundary* b(k): it triggers as soon as x >= b(k).

- a fixed rule: b(k) = ``participants_at_least`` for every k;
- the Bayesian monitor: b(k) = the fewest events among k that make P(rate > threshold) exceed its bound;
- "any rule": b(k) = the smallest of the rules' boundaries. This assumes one toxicity counts for every
  rule (the event each rule counts occurs at the same rate p), the cautious reading; each rule's own
  characteristics are reported beside it.

Outputs per rate: ``p_stop``, the probability that the rule triggers at some point among the N
participants (including on the N-th); ``p_stop_early``, that it triggers with fewer than N treated
(treatment is cut short); and ``expected_treated``, E[participants treated], counting the participant
whose toxicity triggers the rule as treated.

Method: exact by default, by enumerating every binomial path grouped by its state (k, x) — the
stopping decision depends only on that state, so this is the sum over all 2^N sequences, done in
O(N^2). ``method="simulation"`` draws paths with a seeded numpy generator instead (used as a check,
and as the fallback for very long trials, above :data:`EXACT_MAX_PARTICIPANTS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from trialdesk.protocol.model import Protocol
from trialdesk.safety.bayesian_monitor import boundary as bayes_boundary
from trialdesk.safety.stopping_rules import BAYES_RULE_ID

__all__ = [
    "ANY_RULE",
    "DEFAULT_RATES",
    "EXACT_MAX_PARTICIPANTS",
    "MonitorComparison",
    "OperatingCharacteristics",
    "boundaries",
    "comparable_fixed_rules",
    "exact",
    "monitor_added_stopping",
    "monitor_comparison",
    "operating_characteristics",
    "plot",
    "simulated",
]

ANY_RULE = "any rule"
DEFAULT_RATES: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 11))
EXACT_MAX_PARTICIPANTS = 5000
Method = Literal["auto", "exact", "simulation"]
#: a boundary: for k = 1..N treated, the fewest toxicities that trigger (None: cannot trigger at k)
Boundary = tuple[int | None, ...]


@dataclass(frozen=True)
class OperatingCharacteristics:
    rule_id: str
    rate: float
    participants: int
    p_stop: float
    p_stop_early: float
    expected_treated: float
    method: Literal["exact", "simulation"]


def boundaries(protocol: Protocol, participants: int | None = None) -> dict[str, Boundary]:
    """Each rule's boundary over k = 1..N (N: the enrolment target), and the combined "any rule" boundary."""
    n = participants or protocol.enrolment.target
    out: dict[str, Boundary] = {r.id: (r.participants_at_least,) * n for r in protocol.safety.stopping_rules}
    monitor = protocol.safety.bayesian_monitor
    if monitor is not None:
        out[BAYES_RULE_ID] = tuple(bayes_boundary(monitor, k) for k in range(1, n + 1))
    if out:
        out[ANY_RULE] = tuple(_smallest(b[k] for b in out.values()) for k in range(n))
    return out


def _smallest(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def exact(bound: Boundary, rate: float) -> tuple[float, float, float]:
    """(p_stop, p_stop_early, expected_treated) for ``bound`` at toxicity ``rate``, exactly."""
    n = len(bound)
    alive = np.zeros(n + 1)  # alive[x]: probability of x toxicities and no trigger so far
    alive[0] = 1.0
    p_stop = p_stop_early = 0.0
    expected = 0.0
    for k in range(1, n + 1):
        expected += alive.sum()  # participant k is treated if no rule triggered before
        step = alive * (1 - rate)
        step[1:] += alive[:-1] * rate
        b = bound[k - 1]
        if b is not None:
            stopped = step[b:].sum()
            step[b:] = 0.0
            p_stop += stopped
            if k < n:
                p_stop_early += stopped
        alive = step
    return float(p_stop), float(p_stop_early), float(expected)


def simulated(bound: Boundary, rate: float, simulations: int = 100_000, seed: int = 20191105) -> tuple[float, float, float]:
    """(p_stop, p_stop_early, expected_treated) estimated from ``simulations`` seeded paths."""
    n = len(bound)
    rng = np.random.default_rng(seed)
    toxicities = np.zeros(simulations, dtype=np.int64)
    stopped_at = np.zeros(simulations, dtype=np.int64)  # 0: not stopped
    for k in range(1, n + 1):
        alive = stopped_at == 0
        toxicities += alive & (rng.random(simulations) < rate)
        b = bound[k - 1]
        if b is not None:
            stopped_at[alive & (toxicities >= b)] = k
    stopped = stopped_at > 0
    treated = np.where(stopped, stopped_at, n)
    return float(stopped.mean()), float((stopped & (stopped_at < n)).mean()), float(treated.mean())


def operating_characteristics(
    protocol: Protocol,
    rates: Sequence[float] = DEFAULT_RATES,
    method: Method = "auto",
    participants: int | None = None,
    simulations: int = 100_000,
    seed: int = 20191105,
) -> list[OperatingCharacteristics]:
    """Each rule's (and any rule's) characteristics at each rate."""
    for r in rates:
        if not 0 <= r <= 1:
            raise ValueError(f"toxicity rate {r} is not a probability; give rates between 0 and 1 (0.05 for 5 %)")
    bounds = boundaries(protocol, participants)
    n = participants or protocol.enrolment.target
    chosen: Literal["exact", "simulation"] = (
        "simulation" if method == "simulation" or (method == "auto" and n > EXACT_MAX_PARTICIPANTS) else "exact"
    )
    out: list[OperatingCharacteristics] = []
    for rule_id, bound in bounds.items():
        for rate in rates:
            p, early, treated = exact(bound, rate) if chosen == "exact" else simulated(bound, rate, simulations, seed)
            out.append(OperatingCharacteristics(rule_id, rate, n, p, early, treated, chosen))
    return out


def by_rule(results: Sequence[OperatingCharacteristics]) -> Mapping[str, list[OperatingCharacteristics]]:
    grouped: dict[str, list[OperatingCharacteristics]] = {}
    for r in results:
        grouped.setdefault(r.rule_id, []).append(r)
    return grouped


def plot(results: Sequence[OperatingCharacteristics], path: Path, title: str = "") -> Path:
    """P(stop) and expected participants treated against the true rate, one line per rule; PNG, SVG or PDF by suffix."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (ax_stop, ax_n) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for rule_id, rows in by_rule(results).items():
        rates = [r.rate * 100 for r in rows]
        style = {"linewidth": 2.5, "color": "black"} if rule_id == ANY_RULE else {"linewidth": 1.2}
        ax_stop.plot(rates, [r.p_stop for r in rows], marker="o", markersize=3, label=rule_id, **style)
        ax_n.plot(rates, [r.expected_treated for r in rows], marker="o", markersize=3, label=rule_id, **style)
    ax_stop.set(xlabel="true toxicity rate (%)", ylabel="P(rule triggers)", ylim=(0, 1.02), title="Probability of stopping")
    n = results[0].participants if results else 0
    ax_n.set(xlabel="true toxicity rate (%)", ylabel="participants treated", ylim=(0, n + 0.5), title="Expected number treated")
    for ax in (ax_stop, ax_n):
        ax.grid(alpha=0.3)
    ax_stop.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Date": None} if path.suffix.lower() in (".svg", ".pdf") else None)
    plt.close(fig)
    return path


@dataclass(frozen=True)
class MonitorComparison:
    """What the Bayesian monitor adds at k participants observed, against the fixed rules counting the same events."""

    treated: int
    fixed_boundary: int | None  # fewest events that trigger a comparable fixed rule
    bayes_boundary: int | None

    @property
    def fires_first(self) -> bool:
        """The monitor triggers on fewer events than the fixed rules at this k."""
        return self.bayes_boundary is not None and (self.fixed_boundary is None or self.bayes_boundary < self.fixed_boundary)

    def sentence(self) -> str:
        if self.fires_first:
            return (f"after {self.treated}: the monitor fires at {self.bayes_boundary} event(s),"
                    f" before the fixed rules ({self.fixed_boundary or '-'})")
        return f"after {self.treated}: the monitor adds nothing (it needs {self.bayes_boundary or 'more than ' + str(self.treated)}," \
               f" the fixed rules {self.fixed_boundary or '-'})"


def comparable_fixed_rules(protocol: Protocol) -> list[str]:
    """The fixed rules that count the events the monitor counts: the same or a lower grade and relatedness
    floor, any term, any time (so each of the monitor's events also counts for them)."""
    from trialdesk.trial.records import at_least

    m = protocol.safety.bayesian_monitor
    if m is None:
        return []
    return [r.id for r in protocol.safety.stopping_rules if r.min_grade <= m.min_grade and not r.terms
            and r.within_hours_of_infusion is None
            and (r.min_relatedness is None or at_least(m.min_relatedness, r.min_relatedness))]


def monitor_comparison(protocol: Protocol, participants: int | None = None) -> list[MonitorComparison]:
    """For k = 1..N: the monitor's boundary beside the comparable fixed rules' (empty without a monitor)."""
    if protocol.safety.bayesian_monitor is None:
        return []
    bounds = boundaries(protocol, participants)
    fixed = comparable_fixed_rules(protocol)
    n = participants or protocol.enrolment.target
    return [MonitorComparison(k + 1, _smallest(bounds[r][k] for r in fixed), bounds[BAYES_RULE_ID][k]) for k in range(n)]


def monitor_added_stopping(protocol: Protocol, rates: Sequence[float] = DEFAULT_RATES,
                           participants: int | None = None) -> list[tuple[float, float, float]]:
    """(rate, P(stop) of the comparable fixed rules alone, P(stop) with the monitor too), exactly: the difference is what
    the monitor adds at that true rate."""
    if protocol.safety.bayesian_monitor is None:
        return []
    bounds = boundaries(protocol, participants)
    fixed = comparable_fixed_rules(protocol)
    n = participants or protocol.enrolment.target
    alone = tuple(_smallest(bounds[r][k] for r in fixed) for k in range(n))
    both = tuple(_smallest([alone[k], bounds[BAYES_RULE_ID][k]]) for k in range(n))
    return [(rate, exact(alone, rate)[0], exact(both, rate)[0]) for rate in rates]

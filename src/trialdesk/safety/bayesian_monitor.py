"""The beta-binomial toxicity monitor: the posterior probability that the toxicity rate exceeds a threshold.

With a Beta(a, b) prior on the rate and ``x`` participants with a qualifying event among ``n``
participants observed (those who completed the rule's observation window, or had the event), the
posterior is Beta(a + x, b + n - x); the monitor triggers when
P(rate > threshold | data) is greater than ``posterior_probability``. A Beta(a, b) prior is worth
a + b participants of information (Beta(0.5, 4.5): five participants, prior mean 10 %): the
posterior weighs the prior like that many participants already observed. The tail probability is the
regularised incomplete beta function, computed by ``scipy.stats.beta.sf``.

:func:`boundary` gives, for ``n`` participants, the smallest number of participants with an event
that triggers the monitor, the form the operating-characteristics simulation uses.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any

from trialdesk.protocol.model import BayesianMonitor

__all__ = ["Posterior", "boundary", "posterior", "probability_above"]


@functools.cache
def _beta() -> Any:
    # scipy ships no type information; import_module keeps mypy --strict quiet without a per-module override
    return importlib.import_module("scipy.stats").beta


def probability_above(threshold: float, a: float, b: float) -> float:
    """P(rate > threshold) for rate ~ Beta(a, b)."""
    return float(_beta().sf(threshold, a, b))


@dataclass(frozen=True)
class Posterior:
    participants: int  # observed (completed the observation window, or had a qualifying event)
    with_event: int
    a: float
    b: float
    threshold_rate: float
    probability_above: float  # P(rate > threshold | data)
    trigger_probability: float

    @property
    def triggers(self) -> bool:
        return self.probability_above > self.trigger_probability

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)

    def sentence(self) -> str:
        return (f"{self.with_event} of {self.participants} observed with a qualifying event: posterior Beta({self.a:g}, {self.b:g}),"
                f" P(rate > {self.threshold_rate:.0%}) = {self.probability_above:.3f}"
                f" ({'above' if self.triggers else 'not above'} {self.trigger_probability:.0%})")


def posterior(monitor: BayesianMonitor, with_event: int, participants: int) -> Posterior:
    """The posterior after ``with_event`` of ``participants`` infused had a qualifying event."""
    if not 0 <= with_event <= participants:
        raise ValueError(f"participants with an event ({with_event}) must be between 0 and the participants observed ({participants})")
    a = monitor.prior_a + with_event
    b = monitor.prior_b + participants - with_event
    return Posterior(participants, with_event, a, b, monitor.threshold_rate,
                     probability_above(monitor.threshold_rate, a, b), monitor.posterior_probability)


def boundary(monitor: BayesianMonitor, participants: int) -> int | None:
    """The fewest participants with an event, among ``participants``, that trigger the monitor; None if none do."""
    return next((x for x in range(participants + 1) if posterior(monitor, x, participants).triggers), None)

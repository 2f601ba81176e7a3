"""Dose escalation rules as data: 3+3 and BOIN, their decisions, the BOIN decision table, and a
seeded simulation of each design's operating characteristics.

BOIN (Liu S, Yuan Y. Bayesian optimal interval designs for phase I clinical trials. J R Stat Soc
Ser C 2015;64:507-523): with target toxicity rate phi and the sub-therapeutic / overly toxic rates
phi1 < phi < phi2, escalate while the observed DLT rate at the current dose is <= lambda_e and
de-escalate once it is >= lambda_d, where

    lambda_e = log((1 - phi1) / (1 - phi)) / log(phi (1 - phi1) / (phi1 (1 - phi)))
    lambda_d = log((1 - phi) / (1 - phi2)) / log(phi2 (1 - phi) / (phi (1 - phi2)))

(for phi = 0.3 with the default phi1 = 0.18, phi2 = 0.42: lambda_e = 0.236, lambda_d = 0.358). A dose
and every higher one is eliminated when, with 3 or more treated there, P(rate > phi | data) exceeds
the cutoff (0.95) under a Beta(1, 1) prior. The MTD is the dose whose isotonic estimate of the
toxicity rate is closest to phi. Formulas checked against the BOIN R package documentation
(get.boundary) and the paper; written here (a few lines, no R at run time) so the core stays Python.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import beta  # type: ignore[import-untyped]

from trialdesk.protocol.model import EscalationRule

Decision = Literal["escalate", "stay", "de-escalate", "stop"]


@dataclass(frozen=True)
class Outcome:
    """The rule's decision after a cohort, with the MTD when the trial stops (None: no dose tolerated)."""

    decision: Decision
    next_level: int | None
    mtd: int | None
    why: str


# --- BOIN ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def boin_boundaries(target: float, phi1: float | None = None, phi2: float | None = None) -> tuple[float, float]:
    """(lambda_e, lambda_d) of BOIN for the target toxicity rate."""
    p1 = 0.6 * target if phi1 is None else phi1
    p2 = 1.4 * target if phi2 is None else phi2
    if not 0 < p1 < target < p2 < 1:
        raise ValueError(f"BOIN needs 0 < phi1 < target < phi2 < 1; got {p1}, {target}, {p2}")
    lam_e = math.log((1 - p1) / (1 - target)) / math.log(target * (1 - p1) / (p1 * (1 - target)))
    lam_d = math.log((1 - target) / (1 - p2)) / math.log(p2 * (1 - target) / (target * (1 - p2)))
    return lam_e, lam_d


@functools.lru_cache(maxsize=4096)
def _eliminate(n: int, y: int, target: float, cutoff: float) -> bool:
    """Whether P(rate > target | y of n) > cutoff under Beta(1, 1); cached, as a simulation asks the same few cells."""
    return n >= 3 and float(beta.sf(target, 1 + y, 1 + n - y)) > cutoff


@dataclass(frozen=True)
class TableRow:
    """For ``n`` treated at a dose: escalate with at most ``escalate_max`` DLTs, de-escalate with at
    least ``deescalate_min``, eliminate the dose with at least ``eliminate_min`` (None: never)."""

    n: int
    escalate_max: int | None
    deescalate_min: int | None
    eliminate_min: int | None


def boin_table(rule: EscalationRule, max_n: int) -> list[TableRow]:
    """The decision table a DSMB reads: number of DLTs that lead to each decision, by number treated."""
    assert rule.target_toxicity is not None
    lam_e, lam_d = boin_boundaries(rule.target_toxicity, rule.boin_phi1, rule.boin_phi2)
    rows = []
    for n in range(1, max_n + 1):
        esc = math.floor(n * lam_e + 1e-12)
        de = math.ceil(n * lam_d - 1e-12)
        elim = next((y for y in range(n + 1) if _eliminate(n, y, rule.target_toxicity, rule.elimination_cutoff)), None)
        rows.append(TableRow(n, esc if esc >= 0 else None, de if de <= n else None, elim))
    return rows


def boin_decide(rule: EscalationRule, n: Sequence[int], y: Sequence[int], current: int,
                eliminated_from: int | None = None) -> Outcome:
    """The BOIN decision at dose index ``current`` given participants ``n`` and DLTs ``y`` per dose."""
    assert rule.target_toxicity is not None
    target = rule.target_toxicity
    lam_e, lam_d = boin_boundaries(target, rule.boin_phi1, rule.boin_phi2)
    top = len(n) - 1 if eliminated_from is None else eliminated_from - 1
    if _eliminate(n[current], y[current], target, rule.elimination_cutoff):
        top = min(top, current - 1)
        if top < 0:
            return Outcome("stop", None, None, "the lowest dose is eliminated as overly toxic")
        return Outcome("de-escalate", current - 1, None, f"dose {current + 1} and above eliminated as overly toxic")
    rate = y[current] / n[current]
    if rule.max_participants is not None and sum(n) >= rule.max_participants:
        return Outcome("stop", None, boin_select(rule, n, y, top), "the maximum number of participants is reached")
    if rate <= lam_e and current < top:
        return Outcome("escalate", current + 1, None, f"DLT rate {y[current]}/{n[current]} <= {lam_e:.3f}")
    if rate >= lam_d and current > 0:
        return Outcome("de-escalate", current - 1, None, f"DLT rate {y[current]}/{n[current]} >= {lam_d:.3f}")
    return Outcome("stay", current, None, f"DLT rate {y[current]}/{n[current]} between the boundaries, or no dose to move to")


def boin_select(rule: EscalationRule, n: Sequence[int], y: Sequence[int], top: int) -> int | None:
    """The MTD: the tried, non-eliminated dose whose isotonic toxicity estimate is closest to the target."""
    assert rule.target_toxicity is not None
    target = rule.target_toxicity
    tried = [i for i in range(min(top + 1, len(n))) if n[i] > 0]
    if not tried:
        return None
    est = _pava([(y[i] + 0.05) / (n[i] + 0.1) for i in tried], [n[i] + 0.1 for i in tried])
    est = [e + 1e-10 * k for k, e in enumerate(est)]  # break ties towards the higher dose when below target
    dist = [abs(e - target) for e in est]
    best = min(range(len(tried)), key=lambda k: (dist[k], -k if est[k] < target else k))
    return tried[best]


def _pava(values: list[float], weights: list[float]) -> list[float]:
    """Weighted isotonic (non-decreasing) regression by pooling adjacent violators."""
    blocks: list[list[float]] = []  # [value, weight, count]
    for v, w in zip(values, weights, strict=True):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return [b[0] for b in blocks for _ in range(int(b[2]))]


# --- 3+3 -------------------------------------------------------------------------------


def three_plus_three_decide(n: Sequence[int], y: Sequence[int], current: int) -> Outcome:
    """The conventional 3+3 rule at dose index ``current``: 0/3 escalate; 1/3 treat 3 more at the same
    dose; 1/6 escalate; 2 or more de-escalate, where the lower dose is the MTD once 6 have had it."""
    nc, yc = n[current], y[current]
    if nc not in (3, 6):
        raise ValueError(f"3+3 decides after 3 or 6 participants at a dose; dose {current + 1} has {nc}")
    highest = len(n) - 1
    if yc == 0 or (nc == 6 and yc == 1):
        if current == highest:
            return Outcome("stop", None, current, f"{yc}/{nc} DLTs at the highest dose")
        return Outcome("escalate", current + 1, None, f"{yc}/{nc} DLTs")
    if nc == 3 and yc == 1:
        return Outcome("stay", current, None, "1/3 DLTs: treat 3 more at this dose")
    if current == 0:
        return Outcome("stop", None, None, f"{yc}/{nc} DLTs at the lowest dose: no dose is tolerated")
    if n[current - 1] >= 6:
        return Outcome("stop", None, current - 1, f"{yc}/{nc} DLTs; the dose below was tolerated by 6")
    return Outcome("de-escalate", current - 1, None, f"{yc}/{nc} DLTs: treat 3 more at the dose below")


def decide(rule: EscalationRule, n: Sequence[int], y: Sequence[int], current: int,
           eliminated_from: int | None = None) -> Outcome:
    if rule.design == "3+3":
        return three_plus_three_decide(n, y, current)
    return boin_decide(rule, n, y, current, eliminated_from)


# --- simulation --------------------------------------------------------------------------


@dataclass(frozen=True)
class OperatingCharacteristics:
    """Over ``trials`` simulated trials under ``true_rates``: the probability each dose is selected
    as the MTD (``no_mtd`` when none is), the mean participants treated and DLTs per dose."""

    design: str
    true_rates: tuple[float, ...]
    trials: int
    selected: tuple[float, ...]
    no_mtd: float
    treated: tuple[float, ...]
    dlts: tuple[float, ...]


def simulate(rule: EscalationRule, true_rates: Sequence[float], cohort_size: int = 3, max_cohorts: int = 10,
             trials: int = 2000, seed: int = 1) -> OperatingCharacteristics:
    """Simulate ``trials`` trials; seeded, so the same inputs give the same figures."""
    rng = np.random.default_rng(seed)
    k = len(true_rates)
    sel = np.zeros(k)
    none = 0
    treated = np.zeros(k)
    dlts = np.zeros(k)
    for _ in range(trials):
        n, y = [0] * k, [0] * k
        cur, elim_from, mtd = 0, None, None
        size = 3 if rule.design == "3+3" else cohort_size
        for _c in range(max_cohorts if rule.design == "boin" else 4 * k):
            tox = int(rng.binomial(size, true_rates[cur]))
            n[cur] += size
            y[cur] += tox
            if rule.design == "boin":
                if _eliminate(n[cur], y[cur], rule.target_toxicity or 0, rule.elimination_cutoff):
                    elim_from = cur if elim_from is None else min(elim_from, cur)
                out = boin_decide(rule, n, y, cur, elim_from)
            else:
                out = three_plus_three_decide(n, y, cur)
            if out.decision == "stop":
                mtd = out.mtd
                break
            assert out.next_level is not None
            if rule.design == "3+3" and out.decision == "escalate" and n[out.next_level] > 0:
                # 3+3 never re-escalates to a dose it de-escalated from: this dose (now given to 6) is the MTD
                mtd = cur
                break
            cur = out.next_level
        else:
            if rule.design == "boin":
                mtd = boin_select(rule, n, y, (elim_from - 1) if elim_from is not None else k - 1)
        if mtd is None:
            none += 1
        else:
            sel[mtd] += 1
        treated += n
        dlts += y
    return OperatingCharacteristics(
        rule.design, tuple(float(p) for p in true_rates), trials, tuple(float(v) for v in sel / trials), none / trials,
        tuple(float(v) for v in treated / trials), tuple(float(v) for v in dlts / trials),
    )


def plot(results: Sequence[OperatingCharacteristics], labels: Sequence[str], path: str) -> None:
    """Bar charts of selection probability and participants treated per dose, one panel pair per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    width = 0.8 / max(len(results), 1)
    x = np.arange(len(labels))
    for i, r in enumerate(results):
        axes[0].bar(x + i * width, r.selected, width, label=f"{r.design} (no MTD {r.no_mtd:.0%})")
        axes[1].bar(x + i * width, r.treated, width, label=r.design)
    axes[0].set_ylabel("P(selected as MTD)")
    axes[1].set_ylabel("participants treated (mean)")
    ticks = [f"{lab}\ntrue {p:.0%}" for lab, p in zip(labels, results[0].true_rates, strict=True)]
    axes[1].set_xticks(x + width * (len(results) - 1) / 2, ticks)
    axes[0].legend()
    axes[0].set_title(f"Operating characteristics, {results[0].trials} simulated trials per design")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

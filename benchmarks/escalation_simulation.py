"""How long the escalation simulation takes: 3+3 and BOIN, three dose levels and four, per scenario.

Prints simulated trials per second for each design; figures go to BENCHMARKS.md with the machine and date.
Run: PYTHONPATH=src python benchmarks/escalation_simulation.py [--trials 5000]
"""

from __future__ import annotations

import argparse
import platform
import time

from trialdesk.protocol.model import EscalationRule
from trialdesk.trial.escalation import simulate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5000)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, {args.trials} trials per run")
    designs = [EscalationRule(design="3+3", reason="bench"), EscalationRule(design="boin", target_toxicity=0.3, reason="bench")]
    for rates in ([0.05, 0.3, 0.55], [0.05, 0.12, 0.3, 0.5]):
        for rule in designs:
            start = time.perf_counter()
            oc = simulate(rule, rates, trials=args.trials, max_cohorts=2 * max(3, len(rates)), seed=1)
            took = time.perf_counter() - start
            print(f"{rule.design:5} {len(rates)} levels: {took:6.2f} s, {args.trials / took:8,.0f} trials/s;"
                  f" P(MTD) {', '.join(f'{p:.2f}' for p in oc.selected)}, no MTD {oc.no_mtd:.2f}")


if __name__ == "__main__":
    main()

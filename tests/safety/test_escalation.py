"""Escalation rules: BOIN's boundaries and decision table (Liu & Yuan 2015), the 3+3 rule, and the
seeded simulation of each design's operating characteristics."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialdesk.protocol.model import EscalationRule
from trialdesk.trial.escalation import boin_boundaries, boin_decide, boin_table, plot, simulate, three_plus_three_decide

BOIN_30 = EscalationRule(design="boin", target_toxicity=0.3, reason="test")
THREE = EscalationRule(design="3+3", reason="test")


@pytest.mark.parametrize("target, lam_e, lam_d", [(0.3, 0.236, 0.358), (0.25, 0.197, 0.298), (0.2, 0.157, 0.238)])
def test_boin_boundaries_are_the_published_ones_for_the_target(target: float, lam_e: float, lam_d: float) -> None:
    e, d = boin_boundaries(target)
    assert e == pytest.approx(lam_e, abs=1e-3) and d == pytest.approx(lam_d, abs=1e-3)  # the paper prints 3 decimals


def test_the_boin_decision_table_for_a_30_percent_target() -> None:
    rows = {r.n: r for r in boin_table(BOIN_30, 9)}
    # escalate with at most / de-escalate with at least / eliminate with at least, as in Liu & Yuan's table
    assert (rows[3].escalate_max, rows[3].deescalate_min, rows[3].eliminate_min) == (0, 2, 3)
    assert (rows[6].escalate_max, rows[6].deescalate_min, rows[6].eliminate_min) == (1, 3, 4)
    assert (rows[9].escalate_max, rows[9].deescalate_min, rows[9].eliminate_min) == (2, 4, 5)
    assert rows[2].eliminate_min is None  # never eliminate on fewer than 3


def test_boin_decides_at_each_side_of_its_boundaries() -> None:
    assert boin_decide(BOIN_30, [3, 0, 0], [0, 0, 0], 0).decision == "escalate"
    assert boin_decide(BOIN_30, [0, 3, 0], [0, 1, 0], 1).decision == "stay"          # 1/3 = 0.33, between
    assert boin_decide(BOIN_30, [0, 3, 0], [0, 2, 0], 1).decision == "de-escalate"   # 2/3 >= 0.358
    stop = boin_decide(BOIN_30, [3, 0, 0], [3, 0, 0], 0)
    assert stop.decision == "stop" and stop.mtd is None                               # 3/3 eliminates the lowest dose
    assert boin_decide(BOIN_30, [0, 0, 3], [0, 0, 0], 2).decision == "stay"          # nothing above the highest


@pytest.mark.parametrize("n, y, current, decision, nxt, mtd", [
    ([3, 0, 0], [0, 0, 0], 0, "escalate", 1, None),
    ([3, 3, 0], [0, 1, 0], 1, "stay", 1, None),
    ([3, 6, 0], [0, 1, 0], 1, "escalate", 2, None),
    ([3, 3, 0], [0, 2, 0], 1, "de-escalate", 0, None),
    ([6, 3, 0], [0, 2, 0], 1, "stop", None, 0),
    ([3, 0, 0], [2, 0, 0], 0, "stop", None, None),
    ([3, 3, 3], [0, 0, 0], 2, "stop", None, 2),
])
def test_three_plus_three(n: list[int], y: list[int], current: int, decision: str, nxt: int | None, mtd: int | None) -> None:
    out = three_plus_three_decide(n, y, current)
    assert (out.decision, out.next_level, out.mtd) == (decision, nxt, mtd)


def test_three_plus_three_decides_only_after_three_or_six() -> None:
    with pytest.raises(ValueError, match="after 3 or 6"):
        three_plus_three_decide([2, 0], [0, 0], 0)


def test_a_boin_rule_needs_a_target_between_phi1_and_phi2() -> None:
    with pytest.raises(ValueError, match="target_toxicity"):
        EscalationRule(design="boin", reason="x")
    with pytest.raises(ValueError, match="phi1 < target_toxicity < phi2"):
        EscalationRule(design="boin", target_toxicity=0.3, phi1=0.35, reason="x")


SCENARIO = [0.05, 0.12, 0.30, 0.50]


@pytest.mark.parametrize("rule", [BOIN_30, THREE])
def test_the_simulation_is_reproducible_with_its_seed_and_its_probabilities_add_up(rule: EscalationRule) -> None:
    a, b = simulate(rule, SCENARIO, trials=400, seed=7), simulate(rule, SCENARIO, trials=400, seed=7)
    assert a == b
    assert simulate(rule, SCENARIO, trials=400, seed=8) != a
    assert sum(a.selected) + a.no_mtd == pytest.approx(1.0)
    assert all(t >= d for t, d in zip(a.treated, a.dlts, strict=True))


def test_boin_selects_the_dose_at_the_target_most_often() -> None:
    oc = simulate(BOIN_30, SCENARIO, max_cohorts=10, trials=1000, seed=1)
    assert max(range(4), key=lambda i: oc.selected[i]) == 2


def test_when_every_dose_is_very_toxic_3_plus_3_mostly_finds_no_mtd_and_when_none_is_it_picks_the_highest() -> None:
    assert simulate(THREE, [0.8, 0.9, 0.95], trials=500).no_mtd > 0.8
    assert simulate(THREE, [0.01, 0.01, 0.01], trials=500).selected[2] > 0.9


def test_the_plot_is_written(tmp_path: Path) -> None:
    out = tmp_path / "oc.png"
    plot([simulate(BOIN_30, SCENARIO, trials=100), simulate(THREE, SCENARIO, trials=100)], ["DL1", "DL2", "DL3", "DL4"], str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_command_shows_the_decision_table_and_the_operating_characteristics(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trialdesk.cli import app

    png = tmp_path / "oc.png"
    args = ["protocol", "escalation", "nct02013700", "--trials", "100", "--scenario", "0.05,0.3,0.55", "--plot", str(png)]
    first = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "BOIN decision table, target DLT rate 30%" in first.output
    assert "True DLT rates 5%, 30%, 55% (100 trials, seed 1)" in first.output
    # a statistician reads the simulated designs' sizes beside the protocol's own
    assert "BOIN in cohorts of 3, at most 6 cohorts (18 participants); the protocol plans 9." in first.output
    assert "treated in all (mean)" in first.output
    assert png.exists()
    assert CliRunner().invoke(app, args, env={"COLUMNS": "200"}).output == first.output  # seeded: the same figures
    wrong = CliRunner().invoke(app, ["protocol", "escalation", "nct02013700", "--scenario", "0.1,0.2"])
    assert wrong.exit_code == 1 and "one true DLT rate per dose level (3)" in wrong.output
    none = CliRunner().invoke(app, ["protocol", "escalation", "nct03929120"])
    assert none.exit_code == 1 and "no dose_finding section" in none.output

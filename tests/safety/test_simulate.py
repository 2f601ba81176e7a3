"""Operating characteristics of the stopping rules against hand-computed probabilities (N = 10)."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from trialdesk.safety import simulate as sim
from trialdesk.safety.commands import app
from trialdesk.safety.simulate import ANY_RULE, boundaries, exact, operating_characteristics, simulated

N = 10


def only(protocol, *rule_ids: str, monitor: bool = False):  # type: ignore[no-untyped-def]
    rules = [r for r in protocol.safety.stopping_rules if r.id in rule_ids]
    safety = protocol.safety.model_copy(update={"stopping_rules": rules,
                                                "bayesian_monitor": protocol.safety.bayesian_monitor if monitor else None})
    return protocol.model_copy(update={"safety": safety})


@pytest.mark.parametrize("p", [0.05, 0.1, 0.3, 0.5])
def test_a_rule_on_one_participant_triggers_with_probability_1_minus_q_to_the_n(p: float) -> None:
    q = 1 - p
    p_stop, early, treated = exact((1,) * N, p)
    assert p_stop == pytest.approx(1 - q**N, abs=1e-12)
    assert early == pytest.approx(1 - q ** (N - 1), abs=1e-12)  # triggering on the 10th participant treats everyone
    assert treated == pytest.approx(sum(q**k for k in range(N)), abs=1e-12)  # participant k+1 is treated if the first k had none


def test_one_in_ten_at_a_10_percent_rate_is_0_6513() -> None:
    assert exact((1,) * N, 0.1)[0] == pytest.approx(0.6513215599, abs=1e-10)


@pytest.mark.parametrize("p", [0.05, 0.2, 0.5])
def test_a_rule_on_two_participants_triggers_unless_at_most_one_has_a_toxicity(p: float) -> None:
    q = 1 - p
    p_stop, early, treated = exact((2,) * N, p)
    assert p_stop == pytest.approx(1 - q**N - N * p * q ** (N - 1), abs=1e-12)
    assert early == pytest.approx(1 - q ** (N - 1) - (N - 1) * p * q ** (N - 2), abs=1e-12)
    # participant j+1 is treated when the first j had at most one toxicity
    assert treated == pytest.approx(sum(q**j + j * p * q ** (j - 1) for j in range(N)), abs=1e-12)


def test_a_boundary_that_never_triggers_treats_everyone() -> None:
    assert exact((None,) * N, 0.5) == (0.0, 0.0, N)


def test_the_protocol_rules_as_boundaries(protocol) -> None:  # type: ignore[no-untyped-def]
    bounds = boundaries(protocol)
    assert bounds["S1"] == (1,) * N and bounds["S2"] == (2,) * N and bounds["S3"] == (1,) * N
    assert bounds["BAYES"][0] is None  # one participant can never push P(rate > 20 %) above 80 % from Beta(0.5, 4.5)
    assert bounds[ANY_RULE] == (1,) * N


def test_s2_alone_at_a_20_percent_rate(protocol) -> None:  # type: ignore[no-untyped-def]
    [row] = operating_characteristics(only(protocol, "S2"), rates=[0.2])[:1]
    assert (row.rule_id, row.method) == ("S2", "exact")
    assert row.p_stop == pytest.approx(1 - 0.8**10 - 10 * 0.2 * 0.8**9, abs=1e-12)  # 0.6242


def test_any_rule_takes_the_tightest_boundary(protocol) -> None:  # type: ignore[no-untyped-def]
    results = {(r.rule_id, r.rate): r for r in operating_characteristics(only(protocol, "S1", "S2"), rates=[0.1])}
    assert results[ANY_RULE, 0.1].p_stop == pytest.approx(1 - 0.9**10)


def test_simulation_agrees_with_the_exact_answer(protocol) -> None:  # type: ignore[no-untyped-def]
    for bound in boundaries(protocol).values():
        for rate in (0.1, 0.3):
            p, early, treated = exact(bound, rate)
            sp, searly, streated = simulated(bound, rate, simulations=40_000, seed=7)
            se = math.sqrt(max(p * (1 - p), 1e-4) / 40_000)
            assert abs(sp - p) < 5 * se and abs(searly - early) < 5 * se
            assert streated == pytest.approx(treated, abs=0.1)


def test_simulation_is_the_fallback_for_very_long_trials(protocol, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sim, "EXACT_MAX_PARTICIPANTS", 5)
    rows = operating_characteristics(only(protocol, "S1"), rates=[0.1], simulations=20_000)
    assert {r.method for r in rows} == {"simulation"}
    assert rows[0].p_stop == pytest.approx(1 - 0.9**10, abs=0.02)


def test_rates_outside_0_to_1_are_refused(protocol) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="between 0 and 1"):
        operating_characteristics(protocol, rates=[5])


def test_the_command_prints_the_table_and_draws_the_plot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "oc.svg"
    result = CliRunner().invoke(app, ["simulate", "--rates", "10,20%,0.3", "--plot", str(target)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "0.651" in result.output and "Operating characteristics (exact, N = 10)" in result.output
    assert target.read_text().lstrip().startswith("<?xml") and "<svg" in target.read_text()


def test_the_command_writes_a_png_with_simulation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "oc.png"
    result = CliRunner().invoke(app, ["simulate", "--method", "simulation", "--simulations", "2000", "--plot", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_command_refuses_a_bad_rate() -> None:
    result = CliRunner().invoke(app, ["simulate", "--rates", "ten"])
    assert result.exit_code == 1 and "--rates" in result.output

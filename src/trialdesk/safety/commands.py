"""``trialdesk safety ...``: the safety rules from the command line (mounted by ``trialdesk.cli``).

``simulate`` prints the operating characteristics of the protocol's stopping rules
(:mod:`trialdesk.safety.simulate`) as a table, and draws them with ``--plot FILE``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from trialdesk.console import fail, out
from trialdesk.protocol.loader import PROTOCOL_HELP, ProtocolError, choose, load
from trialdesk.safety.simulate import (
    ANY_RULE,
    DEFAULT_RATES,
    Method,
    boundaries,
    by_rule,
    comparable_fixed_rules,
    monitor_added_stopping,
    monitor_comparison,
    operating_characteristics,
    plot,
)

app = typer.Typer(help="Safety: stopping rules, their operating characteristics, SAE clocks.", no_args_is_help=True)


@app.callback()
def _safety() -> None:
    """Safety: stopping rules, their operating characteristics, SAE clocks."""  # keeps `simulate` a sub-command while it is alone


def _rate(part: str) -> float:
    """0.05, 5 and 5% all mean 5 %."""
    text = part.strip()
    value = float(text.removesuffix("%"))
    return value / 100 if text.endswith("%") or value > 1 else value


def _rates(text: str) -> list[float]:
    try:
        rates = [_rate(part) for part in text.split(",") if part.strip()]
    except ValueError:
        fail(f"--rates {text!r}: give comma-separated rates, as fractions (0.05,0.1) or percentages (5,10)")
    if not rates or any(not 0 <= r <= 1 for r in rates):
        fail(f"--rates {text!r}: every rate must lie between 0 and 1 (or 0 and 100 %)")
    return rates


@app.command()
def simulate(
    protocol: str | None = typer.Option(None, "--protocol", "-p", help=PROTOCOL_HELP),
    rates: str = typer.Option(",".join(f"{r:g}" for r in DEFAULT_RATES), help="true toxicity rates, comma-separated (0.05 or 5)"),
    method: str = typer.Option("auto", help="exact (every binomial path), simulation (seeded), or auto"),
    participants: int = typer.Option(0, help="participants to treat (0: the protocol's enrolment target)"),
    simulations: int = typer.Option(100_000, help="paths per rate with --method simulation"),
    seed: int = typer.Option(20191105, help="random seed with --method simulation"),
    plot_file: Path | None = typer.Option(None, "--plot", help="also draw the curves to this file (.png, .svg or .pdf)"),
) -> None:
    """Probability of stopping and expected participants treated, per rule and for any rule, by true toxicity rate."""
    if method not in ("auto", "exact", "simulation"):
        fail(f"--method {method!r}: choose exact, simulation or auto")
    chosen: Method = method  # type: ignore[assignment]  # checked just above
    try:
        p = load(choose(protocol))
    except ProtocolError as exc:
        fail(str(exc))
    if not p.safety.stopping_rules and p.safety.bayesian_monitor is None:
        fail(f"{p.id}: the protocol has no stopping rules or Bayesian monitor to simulate")
    n = participants or p.enrolment.target
    results = operating_characteristics(p, _rates(rates), chosen, n, simulations, seed)
    grouped = by_rule(results)

    bounds = Table(title=f"Boundaries: fewest participants with a toxicity that trigger, after k treated (N = {n})", title_justify="left")
    bounds.add_column("k", justify="right")
    for rule_id in grouped:
        bounds.add_column(rule_id, justify="right")
    table_bounds = boundaries(p, n)
    for k in range(n):
        bounds.add_row(str(k + 1), *(str(table_bounds[r][k]) if table_bounds[r][k] is not None else "-" for r in grouped))
    out.print(bounds)

    table = Table(title=f"Operating characteristics ({results[0].method}, N = {n})", title_justify="left")
    table.add_column("true rate", justify="right")
    for rule_id in grouped:
        if rule_id != ANY_RULE:
            table.add_column(f"{rule_id}\nP(stop)", justify="right")
    table.add_column(f"{ANY_RULE}\nP(stop)", justify="right", style="bold")
    table.add_column(f"{ANY_RULE}\nP(stop before N)", justify="right")
    table.add_column(f"{ANY_RULE}\nE[treated]", justify="right")
    any_rows = grouped[ANY_RULE]
    for i, row in enumerate(any_rows):
        cells = [f"{grouped[r][i].p_stop:.3f}" for r in grouped if r != ANY_RULE]
        table.add_row(f"{row.rate:.0%}", *cells, f"{row.p_stop:.3f}", f"{row.p_stop_early:.3f}", f"{row.expected_treated:.2f}")
    out.print(table)
    comparison = monitor_comparison(p, n)
    if comparison:
        fixed = ", ".join(comparable_fixed_rules(p)) or "none"
        why = Table(title=f"What the Bayesian monitor adds over the fixed rules counting the same events ({fixed})", title_justify="left")
        for column in ("k observed", f"fixed ({fixed})", "BAYES", "verdict"):
            why.add_column(column, justify="right" if column != "verdict" else "left")
        for c in comparison:
            why.add_row(str(c.treated), str(c.fixed_boundary or "-"), str(c.bayes_boundary or "-"),
                        "fires first" if c.fires_first else "adds nothing")
        out.print(why)
        added = Table(title="P(stop) of those fixed rules alone, and with the monitor", title_justify="left")
        for column in ("true rate", "fixed alone", "with BAYES", "added"):
            added.add_column(column, justify="right")
        for rate, alone, both in monitor_added_stopping(p, _rates(rates), n):
            added.add_row(f"{rate:.0%}", f"{alone:.3f}", f"{both:.3f}", f"{both - alone:+.3f}")
        out.print(added)
        if not any(c.fires_first for c in comparison):
            out.print(f"The monitor never triggers on fewer events than {fixed} with N = {n}: it adds nothing here;"
                      " it is kept so that the DSMB sees the posterior rate beside the counts.")
    if plot_file is not None:
        written = plot(results, plot_file, title=f"{p.identification.nct_id}: stopping rules, N = {n}")
        out.print(f"plot written to {written}")


@app.command()
def reports(
    data: Path = typer.Option(..., "--data", help="a data cut (TrialData JSON, as `trialdesk edc export` writes it)"),
    now: str = typer.Option(..., "--now", help="the instant to judge due and overdue at, with its offset (2025-03-01T12:00:00+00:00)"),
    fmt: str = typer.Option("table", "--format", help="table or json"),
    protocol: str | None = typer.Option(None, "--protocol", "-p", help=PROTOCOL_HELP),
    submitted: Path | None = typer.Option(None, "--submitted", help="JSON list of {ae_id, rule_id, submitted_at} already submitted"),
    follow_ups: Path | None = typer.Option(None, "--follow-ups", help="JSON list of {ae_id, received_at}: follow-up information received"),
) -> None:
    """Every SAE and IND safety report the data cut calls for: due, submitted or overdue, with its clock."""
    from trialdesk.safety.reports_cli import run_reports

    if fmt not in ("table", "json"):
        fail(f"--format {fmt!r}: choose table or json")
    run_reports(protocol, data, now, fmt, submitted, follow_ups)

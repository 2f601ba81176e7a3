"""``trialdesk protocol ...``: validate, show, and move protocols to and from ClinicalTrials.gov."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from trialdesk.console import fail, out
from trialdesk.protocol.loader import ProtocolError, choose, load
from trialdesk.protocol.model import Protocol

app = typer.Typer(help="Protocols as data: validate, show, export to and import from ClinicalTrials.gov.", no_args_is_help=True)


def _load(ref: str | None, option: str | None = None) -> Protocol:
    """The protocol named (argument or --protocol), else the only one installed; refuse to guess among several."""
    try:
        return load(choose(option or ref))
    except ProtocolError as exc:
        fail(str(exc))


_REF_HELP = "protocol id, file (.yaml) or folder holding protocol.yaml (default: $TRIALDESK_PROTOCOL, or the only one installed)"
_PROTOCOL_OPTION = typer.Option(None, "--protocol", help=_REF_HELP)


@app.command()
def validate(
    file: str | None = typer.Argument(None, help=_REF_HELP), protocol: str | None = _PROTOCOL_OPTION,
) -> None:
    """Check a protocol (file or folder, with its value sets and forms); exit 1 with file:line field: message for each problem."""
    p = _load(file, protocol)
    out.print(f"[green]ok[/] {p.identification.nct_id} ({p.id} v{p.version}): {len(p.eligibility.inclusions)} inclusion and"
              f" {len(p.eligibility.exclusions)} exclusion criteria, {len(p.schedule.visits)} visits")


@app.command()
def show(ref: str | None = typer.Argument(None, help=_REF_HELP), protocol: str | None = _PROTOCOL_OPTION) -> None:
    """Show a protocol: identity, design, intervention, criteria, schedule and safety rules."""
    p = _load(ref, protocol)
    ident = Table(title=f"{p.identification.nct_id} — {p.identification.brief_title}", show_header=False, title_justify="left")
    ident.add_column(style="bold")
    ident.add_column()
    iv = p.study_intervention
    rows = [
        ("Phase", ", ".join(p.design.phases)),
        ("Status", p.status.overall_status),
        ("Dates", f"start {p.status.start_date.date}, primary completion "
                  f"{p.status.primary_completion_date.date if p.status.primary_completion_date else '-'}, completion "
                  f"{p.status.completion_date.date if p.status.completion_date else '-'}"),
        ("Sponsor", p.sponsorship.lead_sponsor.name),
        ("PI", p.sponsorship.responsible_party.investigator_full_name or "-"),
        ("Conditions", "; ".join(p.conditions)),
        ("Design", f"{p.design.study_type}, {p.design.intervention_model}, {p.design.primary_purpose}, masking {p.design.masking}"),
        ("Enrolment", f"target {p.enrolment.target} (hard cap), stagger {p.enrolment.stagger_days} days"),
        ("Intervention", f"{iv.type}: {iv.name}, {iv.route or '-'}"),
    ]
    spec = iv.dose_spec
    if spec is not None:
        from trialdesk.trial.dose import allowed_text

        rows.append(("Dose", allowed_text(spec)))
    if iv.infusions:
        rows.append(("Infusions", f"{iv.infusions.count}, {iv.infusions.interval_days} days apart (±{iv.infusions.window_days})"))
    rows.append(("Primary outcome", f"{p.outcomes.primary[0].measure} — {p.outcomes.primary[0].time_frame}"))
    rows.extend(("Site", f"{loc.facility}, {loc.city}, {loc.state or ''}, {loc.country}") for loc in p.locations)
    for k, v in rows:
        ident.add_row(k, v)
    out.print(ident)

    crit = Table(title="Eligibility criteria", title_justify="left")
    crit.add_column("id", style="bold")
    crit.add_column("text")
    crit.add_column("form")
    for c in p.eligibility.criteria:
        form = c.computable.kind if c.computable is not None else "[yellow]needs review[/]"
        crit.add_row(c.id, c.text, form)
    out.print(crit)

    sched = Table(title="Visit schedule (day 0 = first infusion)", title_justify="left")
    for col in ("code", "name", "day", "window", "forms"):
        sched.add_column(col)
    for visit in p.schedule.visits:
        sched.add_row(visit.code, visit.name, str(visit.day), f"-{visit.window_before}/+{visit.window_after}", ", ".join(visit.forms))
    out.print(sched)

    rules = Table(title="Stopping rules", title_justify="left")
    for col in ("id", "rule", "action"):
        rules.add_column(col)
    for r in p.safety.stopping_rules:
        rules.add_row(r.id, r.description, r.action)
    out.print(rules)


@app.command("export-ctgov")
def export_ctgov(
    ref: str | None = typer.Argument(None, help=_REF_HELP),
    protocol: str | None = _PROTOCOL_OPTION,
    out_file: Path = typer.Option(..., "--out", help="where to write the API v2 study JSON"),
) -> None:
    """Write a ClinicalTrials.gov API v2 study JSON (protocolSection)."""
    from trialdesk.protocol.ctgov import export_json

    p = _load(ref, protocol)
    _write_atomically(out_file, export_json(p))
    out.print(f"wrote {out_file}")


@app.command("import-ctgov")
def import_ctgov(
    study_json: Path = typer.Argument(..., help="a ClinicalTrials.gov API v2 study JSON"),
    out_file: Path = typer.Option(..., "--out", help="the protocol file (.yaml) to write"),
) -> None:
    """Turn an API v2 study JSON into a protocol file; free-text criteria become numbered
    items marked needs_review until a person encodes them."""
    from trialdesk.protocol.ctgov import CtgovError, import_yaml

    try:
        text = import_yaml(study_json)
    except CtgovError as exc:
        fail(str(exc))
    _write_atomically(out_file, text)
    out.print(f"wrote {out_file}")


def _write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside the target and rename, so a failure leaves no half file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        fail(f"{path}: cannot write ({exc.strerror}); choose another --out")


@app.command("page")
def page(
    ref: str | None = typer.Argument(None, help=_REF_HELP),
    protocol: str | None = _PROTOCOL_OPTION,
    out_file: Path = typer.Option(..., "--out", help="where to write the study page (.html)"),
) -> None:
    """Write the public study page (one self-contained HTML file) from the protocol file."""
    from trialdesk.public.page import render_study_page

    p = _load(ref, protocol)
    _write_atomically(out_file, render_study_page(p))
    out.print(f"wrote {out_file}")


@app.command("escalation")
def escalation(
    ref: str | None = typer.Argument(None, help=_REF_HELP),
    protocol: str | None = _PROTOCOL_OPTION,
    scenario: list[str] = typer.Option(
        [], "--scenario", help="true DLT rates per dose level, comma-separated (repeat for several scenarios)"),
    target: float = typer.Option(0.3, help="BOIN's target DLT rate when the protocol's rule is 3+3 (for the comparison)"),
    trials: int = typer.Option(2000, min=100, help="simulated trials per design and scenario"),
    seed: int = typer.Option(1, help="random seed: the same seed gives the same figures"),
    plot_file: Path | None = typer.Option(None, "--plot", help="write the operating characteristics as a PNG"),
) -> None:
    """Show the protocol's escalation rule and BOIN's decision table, and simulate 3+3 and BOIN's operating
    characteristics (P(selected as MTD), participants treated per dose) under scenarios of true toxicity."""
    from trialdesk.protocol.model import EscalationRule
    from trialdesk.trial.escalation import boin_table, plot, simulate

    p = _load(ref, protocol)
    if p.dose_finding is None:
        fail(f"{p.id}: no dose_finding section (cohorts, DLT definition, escalation rule) in the protocol")
    df = p.dose_finding
    spec = p.study_intervention.dose_spec
    assert spec is not None  # the model requires dose levels with a dose_finding section
    labels = [lv.label or f"{lv.id} {lv.amount:g} {spec.unit}" for lv in spec.levels]
    rule = df.escalation
    boin = rule if rule.design == "boin" else EscalationRule(design="boin", target_toxicity=target, reason="comparison")
    three = rule if rule.design == "3+3" else EscalationRule(design="3+3", reason="comparison")
    out.print(f"[bold]{p.identification.nct_id}[/]: {len(df.cohorts)} cohorts "
              f"({', '.join(f'{c.id} {c.dose_level} ×{c.size}' for c in df.cohorts)}); rule {rule.design}; "
              f"DLT window {df.dlt.window_days} days")
    table = Table(title=f"BOIN decision table, target DLT rate {boin.target_toxicity:.0%}", title_justify="left")
    for col in ("treated at the dose", "escalate if DLTs ≤", "de-escalate if DLTs ≥", "eliminate if DLTs ≥"):
        table.add_column(col, justify="right")
    size = df.cohorts[0].size
    for row in boin_table(boin, size * max(3, len(df.cohorts))):
        if row.n % size == 0:
            table.add_row(str(row.n), _num(row.escalate_max), _num(row.deescalate_min), _num(row.eliminate_min))
    out.print(table)
    scenarios = [[float(x) for x in s.split(",")] for s in scenario] or _default_scenarios(len(labels))
    boin_cohorts = max(3, len(df.cohorts)) * 2
    out.print(f"Simulated sizes: 3+3 in cohorts of 3 until its rule stops (at most 6 a dose); BOIN in cohorts of {size}, "
              f"at most {boin_cohorts} cohorts ({boin_cohorts * size} participants); the protocol plans "
              f"{sum(c.size for c in df.cohorts)}.")
    results = []
    for rates in scenarios:
        if len(rates) != len(labels):
            fail(f"--scenario {','.join(map(str, rates))}: give one true DLT rate per dose level ({len(labels)})")
        oc = [simulate(d, rates, cohort_size=size, max_cohorts=boin_cohorts, trials=trials, seed=seed)
              for d in (three, boin)]
        results.append(oc)
        t = Table(title=f"True DLT rates {', '.join(f'{r:.0%}' for r in rates)} ({trials} trials, seed {seed})", title_justify="left")
        t.add_column("design")
        for lab in labels:
            t.add_column(f"{lab}: P(MTD) / treated", justify="right")
        t.add_column("no MTD", justify="right")
        t.add_column("treated in all (mean)", justify="right")
        for r in oc:
            t.add_row(r.design, *(f"{s:.0%} / {n:.1f}" for s, n in zip(r.selected, r.treated, strict=True)), f"{r.no_mtd:.0%}",
                      f"{sum(r.treated):.1f}")
        out.print(t)
    if plot_file is not None:
        plot(results[0], labels, str(plot_file))
        out.print(f"wrote {plot_file} (first scenario)")


def _num(v: int | None) -> str:
    return "-" if v is None else str(v)


def _default_scenarios(k: int) -> list[list[float]]:
    """Three scenarios: all safe, the MTD in the middle, all toxic."""
    mid = k // 2
    return [[0.05] * k, [0.05 if i < mid else (0.3 if i == mid else 0.55) for i in range(k)], [0.5] * k]

"""A prepared screen (the SQL kept from the previous chart) gives exactly what a fresh
compilation gives, chart after chart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from trialdesk.eligibility import compiler
from trialdesk.eligibility.worksheet import check_fhir
from trialdesk.protocol.loader import load

CHARTS = Path(__file__).resolve().parents[1] / "fixtures" / "fhir" / "bundles"
AS_OF = dt.date(2025, 3, 1)


def _fresh(name: str) -> dict[str, object]:
    compiler._PREPARED.clear()
    return check_fhir(CHARTS / name, load("nct03929120"), AS_OF)[0].to_json()


def test_the_next_chart_checked_with_kept_sql_matches_a_fresh_check() -> None:
    names = ["ssc_ild_new.json", "excl_spo2_86.json", "excl_rituximab_30_days.json", "ipaf.json", "ssc_ild_new.json"]
    fresh = [_fresh(n) for n in names]
    compiler._PREPARED.clear()
    protocol = load("nct03929120")
    kept = [check_fhir(CHARTS / n, protocol, AS_OF)[0].to_json() for n in names]
    assert len(compiler._PREPARED) == 1  # one set of statements served every chart
    assert kept == fresh


def test_a_later_screening_date_prepares_its_own_statements_and_moves_the_window() -> None:
    compiler._PREPARED.clear()
    protocol = load("nct03929120")
    check_fhir(CHARTS / "ssc_ild_new.json", protocol, AS_OF)
    later = check_fhir(CHARTS / "excl_rituximab_30_days.json", protocol, AS_OF + dt.timedelta(days=40))[0].to_json()
    assert len(compiler._PREPARED) == 2
    e2 = next(c for c in later["criteria"] if c["id"] == "E2")
    # the last rituximab dose (2025-01-30) is before the window that opens 2025-02-10
    assert e2["status"] == "not_met"

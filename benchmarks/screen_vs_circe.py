"""trialdesk against OHDSI Circe on the same OMOP CDM (DuckDB), end to end as processes.

    pip install ohdsi-circepy==0.3.0 duckcdm==0.4.7      # or: pip install -e '.[bench]'
    python benchmarks/screen_vs_circe.py --persons 100000 [--reuse /tmp/omop.duckdb] [--repeat 3]

Three commands, each run in a fresh Python process, alternated ``--repeat`` times on the same
DuckDB file (opened read-only by each; Circe's cohort tables go to an in-memory database
the file is attached to), same DuckDB library:

- **trialdesk**: ``trialdesk screen --omop FILE --as-of DATE --out DIR`` — every person's
  status for every criterion, the candidates' evidence, the funnel, the candidates, the
  data-quality report.
- **circepy**: ``ohdsi-circepy`` builds the cohort SQL (OHDSI SQL, with inclusion-rule
  statistics), its SqlRender port translates it to DuckDB, and the statements run.
  Circe gives the cohort and the counts per inclusion rule, not a status per person
  and criterion, and no evidence.
- **duckcdm**: the same cohort expression through duckcdm's port of Circe and SqlRender.

The cohort expression is written below, by hand, from the protocol (``nct03929120``). It
uses the concept ids trialdesk resolves for each value set in this database, so both
read the same codes. It is an approximation. What it covers and what it cannot:

- **Index date**: the screening date, for everyone observed on it (an ``ObservationPeriod``
  entry with a user-defined period from the as-of date to the as-of date). Circe's windows
  count days from there. So "2 calendar months" is 60 days, "6 months" 183 and
  "12 months" 365.
- **I1** age 18 to under 80: Circe's age is the year of the index date minus the year of
  birth, not completed years.
- **I2** female or male: exact.
- **I3**: ILD and (CTD or ANCA vasculitis), with the first ILD record in the last 183 days,
  or ILD and CTD and conventional therapy recorded in the last 90 days. Not expressible:
  IPAF (the investigator's attestation), a therapy course of 183–730 days, and
  "no evidence of improvement".
- **E1** ILD without CTD or ANCA vasculitis: expressible only as "not this", which is
  already part of I3, so it is not repeated. IPAF is not expressible.
- **E2** no rituximab or cyclophosphamide exposure starting in the last 60 days. An
  exposure that started earlier and runs into the window is not seen.
- **E3** no SpO2 below 88 % in the last 30 days. Circe counts any such reading, not the
  latest one, and cannot read the oxygen or exertion context.
- **E4** no acute infection in 30 days, chronic infection in 183 days, malignancy in
  365 days. "Recorded earlier with no end" is not expressible.
- **E5** no mesenchymal stem cell procedure ever.
- **E6** no myocardial infarction, angina or heart failure in the 183 days before the
  screening date. The protocol counts them before the planned first infusion, and counts
  ongoing heart failure.
- **E7** no HIV, hepatitis B or C condition ever. The positive serologies are not read,
  since their qualitative answers are not expressible.
- **E8** no result in 30 days below its range's low (haemoglobin, white cells, neutrophils,
  platelets) or above its high (those and creatinine, AST, ALT), as ``RangeLowRatio`` < 1
  and ``RangeHighRatio`` > 1. It reads any result, not the latest. (Circe's own
  ``Abnormal`` flag cannot be used: both circepy 0.3.0 and duckcdm 0.4.7 write SQL that
  reads ``C.value_as_concept_id`` from a subquery that does not select it, and DuckDB
  refuses it.)
- **E9** no pregnancy or lactation condition or observation in 90 days. Pregnancy test
  answers and hCG values are not read.
- **I4, E10, E11** (attestations): not expressible.

Records that carry a code only in their source value (``*_source_value``, with concept id 0)
are found by trialdesk and not by Circe, which reads concept ids.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

AS_OF = "2024-06-01"

#: (rule name, [(domain, value set, window start in days or None for all time, window end, occurrence, extra)])
#: occurrence "none" = exactly 0, "some" = at least 1
Rule = tuple[str, str, list[tuple[str, str, int | None, int, dict[str, Any]]]]
RULES: list[Rule] = [
    ("E2 rituximab or cyclophosphamide", "none", [("DrugExposure", "rituximab_or_cyclophosphamide", -60, 0, {})]),
    ("E3 SpO2 below 88 %", "none", [("Measurement", "oxygen_saturation", -30, 0, {"ValueAsNumber": {"Value": 88, "Op": "lt"}})]),
    ("E4 infection or malignancy", "none", [
        ("ConditionOccurrence", "acute_infection", -30, 0, {}),
        ("ConditionOccurrence", "active_infection_other", -30, 0, {}),
        ("ConditionOccurrence", "chronic_infection", -183, 0, {}),
        ("ConditionOccurrence", "malignancy", -365, 0, {})]),
    ("E5 mesenchymal stem cells", "none", [("ProcedureOccurrence", "mesenchymal_stem_cell_therapy", None, 0, {})]),
    ("E6 cardiac", "none", [
        ("ConditionOccurrence", "acute_myocardial_infarction", -183, 0, {}),
        ("ConditionOccurrence", "angina", -183, 0, {}),
        ("ConditionOccurrence", "heart_failure", -183, 0, {})]),
    ("E7 HIV, hepatitis B or C", "none", [("ConditionOccurrence", "hiv_hepatitis_b_c", None, 0, {})]),
    ("E8 abnormal blood count, creatinine, AST, ALT", "none", [
        ("Measurement", vs, -30, 0, {"RangeLowRatio": {"Value": 1, "Op": "lt"}})
        for vs in ("hemoglobin", "leukocytes", "neutrophils", "platelets")] + [
        ("Measurement", vs, -30, 0, {"RangeHighRatio": {"Value": 1, "Op": "gt"}})
        for vs in ("hemoglobin", "leukocytes", "neutrophils", "platelets", "creatinine", "ast", "alt")]),
    ("E9 pregnancy or lactation", "none", [
        ("ConditionOccurrence", "pregnancy_or_lactation", -90, 0, {}),
        ("Observation", "pregnancy_or_lactation", -90, 0, {})]),
]


def _window(start: int | None, end: int) -> dict[str, Any]:
    def bound(days: int | None) -> dict[str, Any]:
        return {"Coeff": -1} if days is None else {"Days": abs(days), "Coeff": -1 if days < 0 else 1}
    return {"Start": bound(start), "End": bound(end), "UseEventEnd": False}


def _criterion(domain: str, codeset: int, start: int | None, end: int, extra: dict[str, Any], occurrence: str,
               first: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"CodesetId": codeset, **extra}
    if first:
        body["First"] = True
    return {"Criteria": {domain: body}, "StartWindow": _window(start, end), "RestrictVisit": False, "IgnoreObservationPeriod": True,
            "Occurrence": {"Type": 0 if occurrence == "none" else 2, "Count": 0 if occurrence == "none" else 1}}


def cohort_expression(concepts: dict[str, list[int]], as_of: str) -> dict[str, Any]:
    """The Circe cohort expression (ATLAS JSON) for what Circe can express of the protocol."""
    names = sorted(concepts)
    ids = {name: i for i, name in enumerate(names)}
    concept_sets = [{"id": ids[n], "name": n, "expression": {"items": [
        {"concept": {"CONCEPT_ID": c}, "isExcluded": False, "includeDescendants": False, "includeMapped": False}
        for c in concepts[n]]}} for n in names]

    def group(kind: str, criteria: list[dict[str, Any]], groups: list[dict[str, Any]] | None = None,
              demographic: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {"Type": kind, "CriteriaList": criteria, "DemographicCriteriaList": demographic or [], "Groups": groups or []}

    def some(domain: str, vs: str, start: int | None, end: int = 0, first: bool = False) -> dict[str, Any]:
        return _criterion(domain, ids[vs], start, end, {}, "some", first)

    rules = [
        {"name": "I1 age 18 to under 80", "expression": group("ALL", [], demographic=[
            {"Age": {"Value": 18, "Extent": 79, "Op": "bt"}}])},
        {"name": "I2 female or male", "expression": group("ALL", [], demographic=[
            {"Gender": [{"CONCEPT_ID": 8532}, {"CONCEPT_ID": 8507}]}])},
        {"name": "I3 ILD with CTD or ANCA vasculitis (new), or under conventional therapy", "expression": group("ANY", [], groups=[
            group("ALL", [some("ConditionOccurrence", "ild", -183, first=True)], groups=[
                group("ANY", [some("ConditionOccurrence", "connective_tissue_disease", None),
                              some("ConditionOccurrence", "anca_vasculitis", None)])]),
            group("ALL", [some("ConditionOccurrence", "ild", None), some("ConditionOccurrence", "connective_tissue_disease", None),
                          some("DrugExposure", "conventional_ild_therapy", -90)])])},
    ]
    for name, occurrence, parts in RULES:
        rules.append({"name": name, "expression": group(
            "ALL", [_criterion(d, ids[vs], s, e, x, occurrence) for d, vs, s, e, x in parts])})
    return {
        "ConceptSets": concept_sets,
        "PrimaryCriteria": {
            "CriteriaList": [{"ObservationPeriod": {"UserDefinedPeriod": {"StartDate": as_of, "EndDate": as_of}}}],
            "ObservationWindow": {"PriorDays": 0, "PostDays": 0},
            "PrimaryCriteriaLimit": {"Type": "First"}},
        "QualifiedLimit": {"Type": "First"},
        "ExpressionLimit": {"Type": "First"},
        "InclusionRules": rules,
        "CensoringCriteria": [],
        "CollapseSettings": {"CollapseType": "ERA", "EraPad": 0},
        "CensorWindow": {},
        "cdmVersionRange": ">=5.0.0",
    }


def resolved_concepts(path: Path) -> dict[str, list[int]]:
    """The concept ids trialdesk resolves, in this database, for every value set the rules read."""
    from trialdesk.eligibility import value_sets as vsr
    from trialdesk.protocol.loader import load_value_sets
    from trialdesk.sources.omop import open_omop

    wanted = {vs for _, _, parts in RULES for _, vs, _, _, _ in parts} | {
        "ild", "connective_tissue_disease", "anca_vasculitis", "conventional_ild_therapy"}
    resolution = vsr.resolve_concepts(open_omop(str(path)), load_value_sets(), wanted)
    # a concept set with no concept would make Circe's SQL compare with an empty list; 0 matches nothing real
    return {vs: sorted(resolution.concepts.get(vs, ())) or [0] for vs in sorted(wanted)}


# -- what runs in a child process ---------------------------------------------------------

RESULT_TABLES = ("cohort", "cohort_inclusion", "cohort_inclusion_result", "cohort_inclusion_stats",
                 "cohort_summary_stats", "cohort_censor_stats")


def _circe_child(kind: str, path: str, expression_file: str) -> dict[str, Any]:
    import duckdb

    t0 = time.perf_counter()
    expression = Path(expression_file).read_text()
    if kind == "circepy":
        from circe.api import build_cohort_query, cohort_expression_from_json
        from circe.cohortdefinition import BuildExpressionQueryOptions
        from circe.sqlrender import render, split_sql, translate

        options = BuildExpressionQueryOptions()
        options.cdm_schema = "cdm.main"
        options.vocabulary_schema = "cdm.main"
        options.result_schema = "results"
        options.target_table = "results.cohort"
        options.cohort_id = 1
        options.generate_stats = True
        sql = build_cohort_query(cohort_expression_from_json(expression), options)
        statements = split_sql(translate(render(sql), "duckdb"))
    else:
        from duckcdm.circe import build_cohort_query as duck_query
        from duckcdm.sqlrender import render
        from duckcdm.sqlrender import split_sql as duck_split
        from duckcdm.sqlrender import translate as duck_translate

        sql = duck_query(expression, cdm_schema="cdm.main", vocabulary_schema="cdm.main", result_schema="results",
                         target_table="results.cohort", cohort_id=1, generate_stats=True)
        statements = duck_split(duck_translate(render(sql), "duckdb"))
    generated = time.perf_counter()
    con = duckdb.connect()  # the CDM attached read-only as "cdm"; Circe's tables in this in-memory database
    con.execute(f"ATTACH '{path}' AS cdm (READ_ONLY)")
    con.execute("CREATE SCHEMA results")
    for name, ddl in RESULT_DDL.items():
        con.execute(f"CREATE TABLE results.{name} ({ddl})")
    for stmt in statements:
        if stmt.strip():
            con.execute(stmt)
    persons = con.execute("SELECT count(DISTINCT subject_id) FROM results.cohort").fetchone()
    stats = con.execute("SELECT rule_sequence, person_count FROM results.cohort_inclusion_stats"
                        " WHERE mode_id = 0 ORDER BY rule_sequence").fetchall()
    return {"generate": generated - t0, "run": time.perf_counter() - generated, "persons": persons[0] if persons else 0,
            "rules": [list(r) for r in stats]}


#: the OHDSI results tables Circe writes (column lists as in the OHDSI results DDL)
RESULT_DDL = {
    "cohort": "cohort_definition_id BIGINT, subject_id BIGINT, cohort_start_date DATE, cohort_end_date DATE",
    "cohort_inclusion": "cohort_definition_id BIGINT, design_hash INTEGER, rule_sequence INTEGER, name VARCHAR, description VARCHAR",
    "cohort_inclusion_result": "cohort_definition_id BIGINT, mode_id INTEGER, inclusion_rule_mask BIGINT, person_count BIGINT",
    "cohort_inclusion_stats": "cohort_definition_id BIGINT, rule_sequence INTEGER, mode_id INTEGER, person_count BIGINT, "
                              "gain_count BIGINT, person_total BIGINT",
    "cohort_summary_stats": "cohort_definition_id BIGINT, mode_id INTEGER, base_count BIGINT, final_count BIGINT",
    "cohort_censor_stats": "cohort_definition_id BIGINT, lost_count BIGINT",
}


def child_main(kind: str, spec_json: str) -> None:
    spec = json.loads(spec_json)
    out = _circe_child(kind, spec["path"], spec["expression"])
    print(json.dumps(out))


def run(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} … failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", type=Path, help="an existing synthetic OMOP DuckDB file (kept)")
    parser.add_argument("--as-of", default=AS_OF)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each round runs every command once, in turn")
    parser.add_argument("--only", default="trialdesk,circepy,duckcdm")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trialdesk-vs-circe-", dir="/tmp"))
    try:
        path = args.reuse
        if path is None:
            from trialdesk.sources.synthetic import generate_omop

            path = work / "omop.duckdb"
            generate_omop(path, persons=args.persons, seed=args.seed)
        expression = work / "cohort.json"
        expression.write_text(json.dumps(cohort_expression(resolved_concepts(path), args.as_of), indent=1))
        print(f"cohort expression: {expression.stat().st_size:,} bytes; database {path}")
        kinds = [k.strip() for k in args.only.split(",") if k.strip()]
        times: dict[str, list[float]] = {k: [] for k in kinds}
        details: dict[str, Any] = {}
        for round_ in range(args.repeat):
            for kind in kinds:
                if kind == "trialdesk":
                    out = work / f"out-{round_}"
                    seconds, _ = run([str(Path(sys.executable).with_name("trialdesk")), "screen", "--protocol", "nct03929120",
                                      "--omop", str(path), "--as-of", args.as_of, "--out", str(out)])
                    details[kind] = {"candidates": len((out / "candidates.csv").read_text().splitlines()) - 1}
                    shutil.rmtree(out, ignore_errors=True)
                else:
                    seconds, stdout = run([sys.executable, __file__, "_child", kind,
                                           json.dumps({"path": str(path), "expression": str(expression)})])
                    details[kind] = json.loads(stdout.strip().splitlines()[-1])
                times[kind].append(seconds)
                print(f"round {round_ + 1} {kind}: {seconds:.2f} s", flush=True)
        best = {k: min(v) for k, v in times.items()}
        print("\nbest of", args.repeat, "(end to end as a process, seconds):")
        for k in kinds:
            extra = details.get(k, {})
            note = (f"candidates {extra['candidates']:,}" if k == "trialdesk" else
                    f"SQL generation {extra['generate']:.2f} s, SQL run {extra['run']:.2f} s, cohort {extra['persons']:,} persons, "
                    f"rule counts {[r[1] for r in extra['rules']]}")
            print(f"  {k:10s} {best[k]:7.2f}   every run: {', '.join(f'{x:.2f}' for x in times[k])}   {note}")
        if "trialdesk" in best:
            for k in kinds:
                if k != "trialdesk":
                    print(f"trialdesk / {k} = {best['trialdesk'] / best[k]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child_main(sys.argv[2], sys.argv[3])
    else:
        main()

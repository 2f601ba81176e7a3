"""Views run by local Spark (``--engine spark``): the official SQL-on-FHIR v2 conformance tests,
the OMOP views giving DuckDB's rows, and ``trialdesk fhir view --engine spark``.

One Spark session serves the module; the conformance tests' resources are read once (one
NDJSON file per test file, one cached table) and every test runs its view over its own file's
resources: one Spark job per test."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from tests.sources.test_fhir_views_conformance import LEFT_OUT, SUITE, _same
from trialdesk.cli import app
from trialdesk.sources.fhir_views import ViewError, compile_view, run_view
from trialdesk.sources.fhir_views.omop import VIEWS as OMOP_VIEWS
from trialdesk.sources.fhir_views.reader import InputError, load_resources
from trialdesk.sources.fhir_views.spark import load_resources_spark, run_view_spark

pytestmark = pytest.mark.spark

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fhir"
VIEWS = Path(__file__).resolve().parents[2] / "src" / "trialdesk" / "sources" / "fhir_views" / "omop"
runner = CliRunner()


@pytest.fixture(scope="module")
def session() -> Any:
    from trialdesk.sources.omop import spark_session

    return spark_session()


@pytest.fixture(scope="module")
def suites(session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The temp view of each test file's resources (name by file stem), from one cached table."""
    folder = tmp_path_factory.mktemp("conformance")
    for f in sorted(SUITE.glob("*.json")):
        (folder / f"{f.stem}.ndjson").write_text("".join(json.dumps(r) + "\n" for r in json.loads(f.read_text())["resources"]))
    table = load_resources_spark(session, [folder], "conformance_all").cache()
    table.createOrReplaceTempView("conformance_all")
    names = {}
    for f in sorted(SUITE.glob("*.json")):
        name = f"suite_{f.stem}"
        path = str(folder / f"{f.stem}.ndjson").replace("'", "\\'")
        session.sql(f"SELECT * FROM conformance_all WHERE file = '{path}'").createOrReplaceTempView(name)
        names[f.stem] = name
    yield names
    table.unpersist()


def _cases() -> list[Any]:
    out = []
    for f in sorted(SUITE.glob("*.json")):
        for t in json.loads(f.read_text())["tests"]:
            if (f.name, t["title"]) not in LEFT_OUT:
                out.append(pytest.param(f.stem, t, id=f"{f.stem}: {t['title']}"))
    return out


@pytest.mark.parametrize(("stem", "case"), _cases())
def test_conformance_on_spark(session: Any, suites: dict[str, str], stem: str, case: dict[str, Any]) -> None:
    source = suites[stem]
    if case.get("expectError"):
        with pytest.raises(ViewError):
            run_view_spark(compile_view(case["view"], engine="spark"), session=session, source=source)
        return
    rows = run_view_spark(compile_view(case["view"], engine="spark"), session=session, source=source)
    if "expectCount" in case:
        assert len(rows) == case["expectCount"]
        return
    expected = case["expect"]
    assert len(rows) == len(expected), (rows, expected)
    remaining = list(rows)
    for want in expected:
        match = next((g for g in remaining if _same(g, want)), None)
        assert match is not None, f"expected row {want} not among {remaining}"
        remaining.remove(match)


def test_every_conformance_test_run_on_duckdb_is_run_on_spark() -> None:
    """No test is left out on Spark that DuckDB passes (the ones left out are left out of both)."""
    total = sum(len(json.loads(f.read_text())["tests"]) for f in SUITE.glob("*.json"))
    assert len(_cases()) == total - len(LEFT_OUT) > 100


# --------------------------------------------------------------------------- the OMOP views


#: resources of the two views the test charts have none of
LISTS_AND_MEDICATIONS = [
    {"resourceType": "List", "id": "l1", "status": "current", "mode": "snapshot", "subject": {"reference": "Patient/p"},
     "code": {"coding": [{"system": "http://loinc.org", "code": "10160-0"}]},
     "emptyReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "nilknown"}]}},
    {"resourceType": "List", "id": "l2", "status": "retired", "mode": "changes", "entry": [{"item": {"reference": "Condition/c"}}]},
    {"resourceType": "Medication", "id": "m1", "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                                     "code": "121191"}], "text": "rituximab"}},
    {"resourceType": "Medication", "id": "m2"},
]  # fmt: skip


@pytest.fixture(scope="module")
def omop_inputs(session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[duckdb.DuckDBPyConnection, list[Path]]]:
    """The inputs read by both engines once: DuckDB's table, and Spark's kept as the temp view omop_resources."""
    extra = tmp_path_factory.mktemp("omop") / "extra.ndjson"
    extra.write_text("".join(json.dumps(r) + "\n" for r in LISTS_AND_MEDICATIONS))
    inputs = [FIXTURES / "export_ssc_ild_new", FIXTURES / "export_ra_ild_no_manifest", FIXTURES / "bundles", extra]
    con = duckdb.connect()
    load_resources(con, inputs)
    kept = load_resources_spark(session, inputs, "omop_resources", keep=True)
    yield con, inputs
    kept.unpersist()


@pytest.mark.parametrize("name", sorted(OMOP_VIEWS))
def test_an_omop_view_gives_the_same_rows_on_spark_as_on_duckdb(
    session: Any, omop_inputs: tuple[duckdb.DuckDBPyConnection, list[Path]], name: str
) -> None:
    view = json.loads((VIEWS / OMOP_VIEWS[name]).read_text())
    duck = run_view(compile_view(view, validate=True), con=omop_inputs[0])
    spark = run_view_spark(compile_view(view, validate=True, engine="spark"), session=session, source="omop_resources")
    assert len(duck) >= 2, "the inputs have rows of every view"
    assert spark == duck


def test_resources_kept_give_the_rows_of_resources_read_again(session: Any, omop_inputs: Any) -> None:
    view = compile_view(json.loads((VIEWS / "person.json").read_text()), engine="spark")
    assert run_view_spark(view, omop_inputs[1], session=session) == run_view_spark(view, session=session, source="omop_resources")


def test_a_value_that_fails_its_type_is_named_alike_on_both_engines(session: Any, tmp_path: Path) -> None:
    export = tmp_path / "export.ndjson"
    export.write_text(json.dumps({"resourceType": "Patient", "id": "p", "birthDate": "1970-02-30", "gender": "female"}) + "\n"
                      + json.dumps({"resourceType": "Patient", "id": "q", "birthDate": "1971-03-04", "gender": 7}) + "\n")  # fmt: skip
    view = json.loads((VIEWS / "person.json").read_text())
    duck = run_view(compile_view(view, validate=True), [export])
    spark = run_view_spark(compile_view(view, validate=True, engine="spark"), [export], session=session)
    assert spark == duck
    assert [r["_errors"] for r in spark] == [[{"element": "birthDate", "problem": '"1970-02-30" is not a valid FHIR date'}],
                                             [{"element": "gender", "problem": "7 is not a valid FHIR code"}]]  # fmt: skip


# --------------------------------------------------------------------------- trialdesk fhir view --engine spark


def _view(*args: str) -> Any:
    return runner.invoke(app, ["fhir", "view", *args])


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_fhir_view_on_spark_prints_what_duckdb_prints(session: Any, fmt: str) -> None:
    args = [str(VIEWS / "condition_occurrence.json"), str(FIXTURES / "export_ssc_ild_new"), str(FIXTURES / "bundles" / "ipaf.json"),
            "--format", fmt]  # fmt: skip
    duck, spark = _view(*args), _view(*args, "--engine", "spark")
    assert duck.exit_code == 0 and spark.exit_code == 0, spark.output
    if fmt == "csv":
        d, s = list(csv.reader(io.StringIO(duck.output))), list(csv.reader(io.StringIO(spark.output)))
        # JSON columns hold the same values; Spark's VARIANT writes an object's keys in name order
        codings = d[0].index("codings")
        assert [r[:codings] + r[codings + 1:] for r in s] == [r[:codings] + r[codings + 1:] for r in d]
        assert len(d) == 8
    else:
        assert [json.loads(line) for line in spark.output.splitlines()] == [json.loads(line) for line in duck.output.splitlines()]


def test_fhir_view_on_spark_writes_the_same_parquet(session: Any, tmp_path: Path) -> None:
    import duckdb

    for engine in ("duckdb", "spark"):
        r = _view(str(VIEWS / "observation.json"), str(FIXTURES / "export_ssc_ild_new"), "--format", "parquet",
                  "--out", str(tmp_path / f"{engine}.parquet"), "--engine", engine)  # fmt: skip
        assert r.exit_code == 0, r.output
        assert "rows of view omop_observation" in r.output
    con = duckdb.connect()
    query = "SELECT * EXCLUDE (codings, quantity, value_codings, interpretation_codings, ranges) FROM '{}'"
    assert con.sql(query.format(tmp_path / "spark.parquet")).fetchall() == con.sql(query.format(tmp_path / "duckdb.parquet")).fetchall()
    counts = [con.sql(f"SELECT count(*) FROM '{tmp_path / f}'").fetchone() for f in ("spark.parquet", "duckdb.parquet")]
    assert counts[0] == counts[1] and counts[0] is not None and counts[0][0] > 50


def test_fhir_view_on_spark_names_a_line_that_is_not_json(session: Any, tmp_path: Path) -> None:
    bad = tmp_path / "Patient.ndjson"
    bad.write_text(json.dumps({"resourceType": "Patient", "id": "p"}) + "\n{not json\n")
    r = _view(str(VIEWS / "person.json"), str(bad), "--engine", "spark")
    assert r.exit_code != 0
    assert f"{bad}: not FHIR JSON" in r.output and "{not json" in r.output
    with pytest.raises(InputError, match="not FHIR JSON"):
        run_view_spark(json.loads((VIEWS / "person.json").read_text()), [bad], session=session)


def test_fhir_view_on_spark_names_a_bundle_file_that_is_not_json_as_duckdb_does(session: Any) -> None:
    bad = FIXTURES / "bad" / "not_json.json"
    args = [str(VIEWS / "person.json"), str(bad)]
    duck, spark = _view(*args), _view(*args, "--engine", "spark")
    assert duck.exit_code != 0 and spark.exit_code != 0
    assert f"{bad}: not FHIR JSON" in duck.output and f"{bad}: not FHIR JSON" in spark.output


def test_fhir_view_on_spark_refuses_a_missing_input_as_duckdb_does(session: Any, tmp_path: Path) -> None:
    args = [str(VIEWS / "person.json"), str(tmp_path / "nowhere.ndjson")]
    duck, spark = _view(*args), _view(*args, "--engine", "spark")
    assert duck.exit_code == spark.exit_code != 0
    assert spark.output == duck.output and "no such file or folder" in spark.output


def test_a_path_giving_two_values_in_a_single_column_is_an_error_naming_it_on_spark(session: Any, tmp_path: Path) -> None:
    export = tmp_path / "export.ndjson"
    export.write_text(json.dumps({"resourceType": "Patient", "id": "p", "name": [{"family": "A"}, {"family": "B"}]}) + "\n")
    view = {"resource": "Patient", "name": "names", "select": [{"column": [{"name": "family", "path": "name.family"}]}]}
    with pytest.raises(ViewError, match=r"view names, column family: the path gives more than one value"):
        run_view_spark(view, [export], session=session)


def test_a_gzipped_export_gives_the_same_rows_on_spark(session: Any, tmp_path: Path) -> None:
    import gzip

    for f in sorted((FIXTURES / "export_ssc_ild_new").glob("*.ndjson")):
        (tmp_path / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes()))
    view = json.loads((VIEWS / "condition_occurrence.json").read_text())
    rows = run_view_spark(view, [tmp_path], session=session)
    assert rows == run_view(view, [tmp_path]) == run_view(view, [FIXTURES / "export_ssc_ild_new"])
    assert len(rows) == 4

"""``trialdesk --help`` lists every command without importing what the commands use
(the analysis stack, Django, Spark, the engine), and running a command still works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from trialdesk.cli import COMMANDS, load_command

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = ["scipy", "matplotlib", "pandas", "django", "pyspark", "ibis", "duckdb", "numpy", "pyarrow", "sqlglot"]

PROBE = """
import json, sys
sys.argv = ["trialdesk", *sys.argv[1:]]
from trialdesk.cli import app
try:
    app()
except SystemExit as e:
    code = e.code
else:
    code = 0
heavy = {heavy!r}
print(json.dumps({{"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}}), file=sys.stderr)
"""


def _run(*args: str) -> tuple[str, dict[str, object]]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args], capture_output=True, text=True,
                          env=env, timeout=120)
    return done.stdout, json.loads(done.stderr.strip().splitlines()[-1])


def test_help_lists_every_command_and_loads_none_of_the_heavy_modules() -> None:
    out, probe = _run("--help")
    assert probe == {"code": 0, "loaded": []}
    for name in COMMANDS:
        assert f"│ {name} " in out


def test_importing_the_command_line_loads_none_of_the_heavy_modules() -> None:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = f"import sys, trialdesk.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_a_group_loads_only_what_it_runs() -> None:
    """``trialdesk fhir --help`` shows the group's commands without DuckDB (imported when a view runs)."""
    out, probe = _run("fhir", "--help")
    assert probe == {"code": 0, "loaded": []}
    assert "view" in out


def test_a_command_that_needs_the_engine_still_runs() -> None:
    out, probe = _run("protocol", "validate", "nct03929120")
    assert probe["code"] in (0, None), out
    assert "ok NCT03929120" in out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_listed_help_is_the_commands_own(name: str) -> None:
    """The one line ``trialdesk --help`` shows is the help the command itself gives."""
    module, attr, group, line = COMMANDS[name]
    cmd = load_command(name)
    assert cmd.name == name
    if name == "synth":
        return  # listed as the hospital, the group's own help speaks of the population (set by load_command)
    own = typer.main.get_group(getattr(__import__(module, fromlist=[attr]), attr)) if group else cmd
    assert " ".join((own.help or "").split()).startswith(" ".join(line.split()))

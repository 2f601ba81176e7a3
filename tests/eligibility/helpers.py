"""Small OMOP databases of named people, screened for NCT03929120."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from trialdesk.eligibility.screen import ScreenResult, screen
from trialdesk.protocol.loader import load
from trialdesk.sources.omop import open_omop
from trialdesk.sources.omop_builder import OmopBuilder

AS_OF = dt.date(2024, 6, 1)

NORMAL_LABS = {  # LOINC: (value, unit, low, high)
    "718-7": (13.5, "g/dL", 12.0, 16.0),
    "6690-2": (6.5, "10*3/uL", 4.0, 11.0),
    "751-8": (4.0, "10*3/uL", 1.8, 7.7),
    "777-3": (250.0, "10*3/uL", 150.0, 400.0),
    "2160-0": (0.9, "mg/dL", 0.6, 1.2),
    "1920-8": (25.0, "U/L", 10.0, 40.0),
    "1742-6": (30.0, "U/L", 7.0, 56.0),
}


def person(b: OmopBuilder, pid: int, *, birth: dt.date | tuple[int, int] = dt.date(1965, 3, 10), sex: str | None = "female",
           observed: bool = True, labs: dict[str, tuple[float, str, float | None, float | None]] | None = None,
           labs_on: dt.date = AS_OF - dt.timedelta(days=7), spo2: float | None = 95.0) -> OmopBuilder:
    """A person seen at the clinic for years up to the screening date, with a normal
    screening panel and SpO2, unless told otherwise."""
    b.person(pid, birth=birth, sex=sex)  # type: ignore[arg-type]
    if observed:
        b.observation_period(pid, dt.date(2015, 1, 1), AS_OF)
    for loinc, (value, unit, low, high) in (NORMAL_LABS if labs is None else labs).items():
        b.measurement(pid, labs_on, source_value=loinc, value=value, unit=unit, range_low=low, range_high=high)
    if spo2 is not None:
        b.measurement(pid, labs_on, source_value="59408-5", value=spo2, unit="%")
    return b


def screened(tmp_path: Path, build: Callable[[OmopBuilder], None], as_of: dt.date = AS_OF, **kwargs: object) -> ScreenResult:
    b = OmopBuilder()
    build(b)
    path = tmp_path / "cdm.duckdb"
    b.write(path)
    return screen(open_omop(path), load("nct03929120"), as_of, **kwargs)  # type: ignore[arg-type]


def statuses(result: ScreenResult) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for row in result.person_criteria().to_pylist():
        out.setdefault(row["person_id"], {})[row["criterion_id"]] = row["status"]
    return out

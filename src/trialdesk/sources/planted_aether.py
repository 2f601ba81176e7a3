"""Planted people for NCT02013700 (AETHER): one person at each boundary of its computable criteria, with
the statuses its protocol folder's readings give them. They follow the first trial's planted people
(ids after theirs, below ``FIRST_RANDOM_PERSON_ID``) in every synthetic database, so a screen of either
trial on the same hospital can be checked; ``expected`` names AETHER's criteria only.

Unless a case says otherwise, a planted person is a 70-year-old man (so I6, for women only, is met by
sex) observed for ten years up to the as-of date, with IPF first recorded three months before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from trialdesk.criteria.windows import add_months
from trialdesk.sources.omop_builder import OmopBuilder
from trialdesk.sources.planted import PlantedCase, Status, _Planter, add_years

#: the AETHER protocol file's enrolment.screening_to_first_infusion_days is not set: the package default
LEAD_DAYS = 14


def aether_cases(as_of: dt.date, first_id: int) -> list[PlantedCase]:
    p = _Planter(as_of, first_id, LEAD_DAYS)
    a = as_of

    def ipf(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_months(a, -3), source_value="J84.112")

    def man(name: str, about: str, expected: dict[str, Status],
            birth: dt.date | None = None) -> Callable[[Callable[[OmopBuilder, int], None]], None]:
        return p.case(f"aether_{name}", about, expected, birth=birth or add_years(a, -70), sex="male", panel=False, spo2=False)

    # --- I2 age 40 to 90, both included --------------------------------------------------------------
    man("age_exactly_40", "40th birthday on the screening date, IPF", {"I2": "met", "I3": "met", "I6": "met"},
        birth=add_years(a, -40))(ipf)
    man("age_39_turning_40_tomorrow", "40th birthday the day after screening", {"I2": "not_met"},
        birth=add_years(a, -40) + dt.timedelta(days=1))(ipf)
    man("age_exactly_90", "90th birthday on the screening date", {"I2": "met"}, birth=add_years(a, -90))(ipf)
    man("age_90_turning_91_tomorrow", "91st birthday the day after screening", {"I2": "met"},
        birth=add_years(a, -91) + dt.timedelta(days=1))(ipf)
    man("age_exactly_91", "91st birthday on the screening date", {"I2": "not_met"}, birth=add_years(a, -91))(ipf)

    # --- I3 an IPF diagnosis on or before screening ----------------------------------------------------
    @man("ipf_on_the_screening_date", "IPF first recorded on the screening date", {"I3": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, a, source_value="J84.112")

    @man("no_lung_disease", "no lung disease recorded", {"I3": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        return None

    # --- I6 women: sterile or post-menopausal, attested ------------------------------------------------
    p.case("aether_woman", "a woman of 70 with IPF: sterility or menopause is the investigator's to attest",
           {"I6": "needs_review"}, birth=add_years(a, -70), sex="female", panel=False, spo2=False)(ipf)

    # --- E2 a connective tissue disease excludes ---------------------------------------------------------
    @man("systemic_sclerosis", "IPF and systemic sclerosis (M34.9) recorded", {"E2": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        ipf(b, pid)
        b.condition(pid, add_years(a, -2), source_value="M34.9")

    # --- E4 an antifibrotic in the 28 days up to screening excludes --------------------------------------
    @man("nintedanib_until_28_days_ago", "nintedanib taken until 28 days before screening", {"E4": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        ipf(b, pid)
        b.drug(pid, p.day(-120), p.day(-28), source_value="1592737")

    @man("nintedanib_until_29_days_ago", "nintedanib stopped 29 days before screening: the investigator attests the rest",
         {"E4": "needs_review"})
    def _(b: OmopBuilder, pid: int) -> None:
        ipf(b, pid)
        b.drug(pid, p.day(-120), p.day(-29), source_value="1592737")

    return p.cases

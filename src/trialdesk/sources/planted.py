"""Planted people: one person at each boundary of NCT03929120's criteria, with the
statuses the protocol file's documented readings give them.

Every synthetic database holds them (person ids 1..N; the random population starts at
``FIRST_RANDOM_PERSON_ID``), so the eligibility engine's tests can assert them on a
database of any size. ``expected`` lists only the criteria a case is about. The dates
are computed from the screening (as-of) date with the readings' own rules: windows are
inclusive at both ends, months are calendar months with month-end clamping, E6 counts
back from the planned first infusion (as-of + ``enrolment.screening_to_first_infusion_days``),
E8 reads the latest result in the 30 days up to as-of against the record's own range.

Unless a case says otherwise, a planted person is a 50-year-old woman observed for ten
years up to the as-of date, with a normal CBC and metabolic panel and a normal SpO2 a
week before it and no other record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from trialdesk.criteria.windows import add_months
from trialdesk.sources.omop_builder import OmopBuilder

Status = Literal["met", "not_met", "unknown", "needs_review"]

FIRST_RANDOM_PERSON_ID = 1001
SCREENING_TO_FIRST_INFUSION_DAYS = 14  # enrolment.screening_to_first_infusion_days in nct03929120/protocol.yaml


def add_years(d: dt.date, years: int) -> dt.date:
    return add_months(d, 12 * years)


@dataclass(frozen=True)
class PlantedCase:
    person_id: int
    name: str
    about: str
    expected: dict[str, Status]
    build: Callable[[OmopBuilder], None] = field(repr=False, compare=False)


# the normal panel of a planted person: LOINC, value, unit, low, high
NORMAL_PANEL: tuple[tuple[str, float, str, float, float], ...] = (
    ("718-7", 13.8, "g/dL", 12.0, 15.5),
    ("6690-2", 6.4, "10*3/uL", 4.0, 11.0),
    ("751-8", 3.9, "10*3/uL", 1.5, 8.0),
    ("777-3", 250.0, "10*3/uL", 150.0, 400.0),
    ("2160-0", 0.8, "mg/dL", 0.5, 1.1),
    ("1920-8", 22.0, "U/L", 10.0, 40.0),
    ("1742-6", 20.0, "U/L", 7.0, 40.0),
)


class _Planter:
    """Builds the cases for one as-of date."""

    def __init__(self, as_of: dt.date, first_id: int = 1, lead_days: int = SCREENING_TO_FIRST_INFUSION_DAYS):
        self.as_of = as_of
        self.first_infusion = as_of + dt.timedelta(days=lead_days)
        self.first_id = first_id
        self.cases: list[PlantedCase] = []

    def day(self, offset: int) -> dt.date:
        return self.as_of + dt.timedelta(days=offset)

    def case(self, name: str, about: str, expected: dict[str, Status], *, birth: dt.date | tuple[int, int] | None = None,
             sex: Literal["female", "male"] | None = "female", observed: bool = True, panel: bool = True, spo2: bool = True,
             panel_except: tuple[str, ...] = ()) -> Callable[[Callable[[OmopBuilder, int], None]], None]:
        """Decorator: register a case whose function adds the records specific to it."""
        person_id = self.first_id + len(self.cases)
        as_of = self.as_of

        def register(records: Callable[[OmopBuilder, int], None]) -> None:
            def build(b: OmopBuilder) -> None:
                b.person(person_id, birth if birth is not None else add_years(as_of, -50) - dt.timedelta(days=40), sex=sex)
                if observed:
                    b.observation_period(person_id, add_years(as_of, -10), as_of)
                if panel:
                    for loinc, value, unit, low, high in NORMAL_PANEL:
                        if loinc not in panel_except:
                            b.measurement(person_id, self.day(-7), source_value=loinc, value=value, unit=unit,
                                          range_low=low, range_high=high)
                if spo2:
                    b.measurement(person_id, self.day(-7), source_value="59408-5", value=96.0, unit="%")
                records(b, person_id)

            self.cases.append(PlantedCase(person_id, name, about, expected, build))

        return register


def _nothing(b: OmopBuilder, pid: int) -> None:
    return None


def planted_cases(as_of: dt.date) -> list[PlantedCase]:
    p = _Planter(as_of)
    a = as_of
    fi = p.first_infusion
    two_months = add_months(a, -2)
    six_months = add_months(a, -6)

    # --- I1 age, I2 sex -----------------------------------------------------------------------
    p.case("age_exactly_18_on_as_of", "18th birthday on the screening date", {"I1": "met"}, birth=add_years(a, -18))(_nothing)
    p.case("age_18_tomorrow", "18th birthday the day after screening", {"I1": "not_met"},
           birth=add_years(a, -18) + dt.timedelta(days=1))(_nothing)
    p.case("age_79_turning_80_tomorrow", "80th birthday the day after screening", {"I1": "met"},
           birth=add_years(a, -80) + dt.timedelta(days=1))(_nothing)
    p.case("age_exactly_80_on_as_of", "80th birthday on the screening date", {"I1": "not_met"}, birth=add_years(a, -80))(_nothing)
    born = add_months(a, -18 * 12 - 1)
    p.case("age_18_from_birth_month_only", "born the month before, 18 years ago; no day of birth", {"I1": "met"},
           birth=(born.year, born.month))(_nothing)
    born = add_months(a, -18 * 12 + 1)
    p.case("age_17_from_birth_month_only", "born the month after, 18 years ago; no day of birth", {"I1": "not_met"},
           birth=(born.year, born.month))(_nothing)
    p.case("sex_male", "a man, no pregnancy test: the records alone decide E9", {"I2": "met", "E9": "not_met"},
           sex="male")(_nothing)
    p.case("sex_unknown", "no recorded sex (gender_concept_id 0) and no pregnancy test", {"I2": "unknown", "E9": "unknown"},
           sex=None)(_nothing)

    # --- I3 diagnosis, E1 ILD without CTD --------------------------------------------------------
    @p.case("new_ild_with_ssc", "clean near-eligible candidate: systemic sclerosis for 5 years, ILD first recorded"
            " 2 months ago, SpO2 94 %, normal labs, negative hCG",
            {"I1": "met", "I2": "met", "I3": "met", "I4": "needs_review", "E1": "not_met", "E2": "not_met", "E3": "not_met",
             "E4": "needs_review", "E5": "needs_review", "E6": "needs_review", "E7": "not_met", "E8": "not_met", "E9": "not_met",
             "E10": "needs_review", "E11": "needs_review"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_years(a, -5), source_value="M34.9")
        b.condition(pid, add_years(a, -1), source_value="M34.9")
        b.condition(pid, add_months(a, -2), source_value="M34.81")
        b.condition(pid, p.day(-20), source_value="J84.10")
        b.measurement(pid, p.day(-3), source_value="59408-5", value=94.0, unit="%")
        b.measurement(pid, p.day(-3), source_value="21198-7", value=1.0, unit="[IU]/L", range_high=5.0)

    @p.case("rheumatoid_lung_descendant_only", "ILD recorded only as rheumatoid lung disease (M05.10, a concept under"
            " both RA and ILD) a month ago", {"I3": "met", "E1": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_months(a, -1), source_value="M05.10")

    @p.case("ild_first_exactly_6_months_before", "first ILD record on as-of minus 6 calendar months, with SSc",
            {"I3": "met", "E1": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_years(a, -3), source_value="M34.9")
        b.condition(pid, six_months, source_value="J84.9")
        b.condition(pid, p.day(-10), source_value="J84.9")

    @p.case("ild_first_6_months_and_a_day_before", "first ILD record the day before the 6-month window, with SSc, no therapy",
            {"I3": "not_met", "E1": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_years(a, -3), source_value="M34.9")
        b.condition(pid, six_months - dt.timedelta(days=1), source_value="J84.9")
        b.condition(pid, p.day(-10), source_value="J84.9")

    @p.case("new_ild_with_anca_vasculitis", "GPA for 2 years, ILD first recorded 3 months ago",
            {"I3": "met", "E1": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_years(a, -2), source_value="M31.30")
        b.condition(pid, add_months(a, -3), source_value="J84.89")

    @p.case("new_ild_without_ctd", "ILD first recorded 3 months ago, no CTD or vasculitis: IPAF must be asked",
            {"I3": "needs_review", "E1": "needs_review"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_months(a, -3), source_value="J84.112")

    @p.case("established_ra_ild_on_methotrexate_12_months", "RA, ILD for 2 years, methotrexate fills spanning 365 days:"
            " the investigator must judge 'no improvement'", {"I3": "needs_review", "E1": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_years(a, -6), source_value="M06.9")
        b.condition(pid, add_years(a, -2), source_value="J84.10")
        start = p.day(-400)
        for k in range(5):
            b.drug(pid, start + dt.timedelta(days=90 * k), start + dt.timedelta(days=90 * k + 5 if k == 4 else 90 * k + 89),
                   source_value="6851")

    @p.case("established_ra_ild_on_methotrexate_too_long", "RA, ILD for 4 years, methotrexate spanning 800 days (not < 730)",
            {"I3": "not_met", "E1": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_years(a, -8), source_value="M06.9")
        b.condition(pid, add_years(a, -4), source_value="J84.10")
        b.drug(pid, p.day(-830), p.day(-741), source_value="6851")
        b.drug(pid, p.day(-60), p.day(-30), source_value="6851")

    @p.case("ctd_without_ild", "rheumatoid arthritis only", {"I3": "not_met", "E1": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_years(a, -4), source_value="M06.9")

    # --- E2 rituximab / cyclophosphamide ------------------------------------------------------
    @p.case("rituximab_on_window_start_day", "rituximab infusion on as-of minus 2 calendar months", {"E2": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.drug(pid, two_months, two_months, source_value="121191")

    @p.case("rituximab_day_before_window", "rituximab infusion the day before the 2-month window", {"E2": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        d = two_months - dt.timedelta(days=1)
        b.drug(pid, d, d, source_value="121191")

    @p.case("rituximab_exposure_overlapping_window", "rituximab exposure period starting before the window and ending"
            " inside it", {"E2": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.drug(pid, two_months - dt.timedelta(days=20), two_months + dt.timedelta(days=3), source_value="121191")

    @p.case("rituximab_clinical_drug_concept", "rituximab recorded with a clinical-drug concept (a descendant of the"
            " ingredient) 3 weeks ago", {"E2": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        rtx = b.vocabulary.code("LOCAL", "TD-RX-RITUXIMAB")
        assert rtx is not None
        b.drug(pid, p.day(-21), p.day(-21), concept_id=rtx.concept_id, source_value="121191")

    @p.case("cyclophosphamide_last_month", "cyclophosphamide infusion 30 days ago", {"E2": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.drug(pid, p.day(-30), p.day(-30), source_value="3002")

    # --- E3 SpO2 ------------------------------------------------------------------------------
    @p.case("spo2_87", "latest SpO2 in the 30 days is 87 %", {"E3": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-2), source_value="59408-5", value=87.0, unit="%")

    @p.case("spo2_88", "latest SpO2 in the 30 days is 88 %", {"E3": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-2), source_value="2708-6", value=88.0, unit="%")

    @p.case("spo2_low_then_normal", "SpO2 85 % 10 days ago, 93 % 2 days ago: the latest counts", {"E3": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-10), source_value="59408-5", value=85.0, unit="%")
        b.measurement(pid, p.day(-2), source_value="59408-5", value=93.0, unit="%")

    @p.case("spo2_low_31_days_ago_only", "the only SpO2 (85 %) is 31 days before as-of", {"E3": "unknown"}, spo2=False)
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-31), source_value="59408-5", value=85.0, unit="%")

    @p.case("spo2_on_day_30", "SpO2 86 % exactly 30 days before as-of (window start)", {"E3": "met"}, spo2=False)
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-30), source_value="59408-5", value=86.0, unit="%")

    p.case("no_spo2", "no SpO2 reading at all", {"E3": "unknown"}, spo2=False)(_nothing)

    @p.case("spo2_unit_unconvertible", "the only SpO2 reading (85) is in mm[Hg], which cannot be converted to %",
            {"E3": "unknown"}, spo2=False)
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-2), source_value="59408-5", value=85.0, unit="mm[Hg]")

    # --- E4 active infection or malignancy ----------------------------------------------------
    @p.case("pneumonia_30_days_ago", "pneumonia recorded on the first day of the 30-day window", {"E4": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, p.day(-30), source_value="J18.9")

    @p.case("pneumonia_31_days_ago", "pneumonia recorded the day before the 30-day window: only the investigator's"
            " clinical assessment remains", {"E4": "needs_review"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, p.day(-31), source_value="J18.9")

    @p.case("tuberculosis_5_months_ago", "pulmonary tuberculosis 5 months ago", {"E4": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_months(a, -5), source_value="A15.0")

    @p.case("malignancy_11_months_ago", "lung cancer last recorded 11 months ago", {"E4": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_months(a, -11), source_value="C34.90")

    @p.case("malignancy_13_months_ago", "breast cancer recorded 13 months ago with no end: is it still active?",
            {"E4": "needs_review"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_months(a, -13), source_value="C50.911")

    # --- E5 MSC -------------------------------------------------------------------------------
    @p.case("previous_msc_procedure", "a site-coded mesenchymal stem cell infusion 3 years ago", {"E5": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.procedure(pid, add_years(a, -3), source_value="MSC-INFUSION")

    # --- E6 cardiac events before the planned first infusion ----------------------------------
    @p.case("mi_exactly_6_months_before_first_infusion", "acute MI on planned first infusion minus 6 calendar months",
            {"E6": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_months(fi, -6), source_value="I21.9")

    @p.case("mi_6_months_and_a_day_before_first_infusion", "acute MI the day before the 6-month window; only the"
            " investigators' opinion remains", {"E6": "needs_review"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_months(fi, -6) - dt.timedelta(days=1), source_value="I21.9")

    @p.case("heart_failure_last_month", "heart failure recorded a month ago", {"E6": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_months(a, -1), source_value="I50.9")

    # --- E7 HIV, hepatitis B or C -------------------------------------------------------------
    @p.case("hepatitis_c_history", "chronic hepatitis C recorded 10 years ago", {"E7": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_years(a, -10), source_value="B18.2")

    @p.case("hiv_asymptomatic_status", "asymptomatic HIV status (Z21)", {"E7": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_years(a, -6), source_value="Z21")

    @p.case("hepatitis_b_chronic", "chronic hepatitis B", {"E7": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_years(a, -2), source_value="B18.1")

    # --- E8 labs at screening -----------------------------------------------------------------
    @p.case("alt_exactly_uln", "ALT 40 U/L with range 7-40: at the limit is normal", {"E8": "not_met"}, panel_except=("1742-6",))
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-5), source_value="1742-6", value=40.0, unit="U/L", range_low=7.0, range_high=40.0)

    @p.case("alt_above_uln", "ALT 41 U/L with range 7-40", {"E8": "met"}, panel_except=("1742-6",))
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-5), source_value="1742-6", value=41.0, unit="U/L", range_low=7.0, range_high=40.0)

    @p.case("alt_high_then_normal", "ALT 90 U/L 20 days ago, 25 U/L 3 days ago: the latest counts", {"E8": "not_met"},
            panel_except=("1742-6",))
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-20), source_value="1742-6", value=90.0, unit="U/L", range_low=7.0, range_high=40.0)
        b.measurement(pid, p.day(-3), source_value="1742-6", value=25.0, unit="U/L", range_low=7.0, range_high=40.0)

    @p.case("hemoglobin_below_lln", "haemoglobin 10.5 g/dL with range 12.0-15.5", {"E8": "met"}, panel_except=("718-7",))
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-5), source_value="718-7", value=10.5, unit="g/dL", range_low=12.0, range_high=15.5)

    @p.case("hemoglobin_g_per_l_normal", "haemoglobin 138 g/L with range 120-155 g/L", {"E8": "not_met"}, panel_except=("718-7",))
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-5), source_value="718-7", value=138.0, unit="g/L", range_low=120.0, range_high=155.0)

    @p.case("creatinine_umol_per_l_above_uln", "creatinine 150 umol/L with range 45-97 umol/L", {"E8": "met"},
            panel_except=("2160-0",))
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-5), source_value="2160-0", value=150.0, unit="umol/L", range_low=45.0, range_high=97.0)

    @p.case("platelets_above_uln", "platelets 450 x10^3/uL with range 150-400", {"E8": "met"}, panel_except=("777-3",))
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-5), source_value="777-3", value=450.0, unit="10*3/uL", range_low=150.0, range_high=400.0)

    @p.case("alt_without_reference_range", "ALT 30 U/L with no range on the record, other labs normal", {"E8": "unknown"},
            panel_except=("1742-6",))
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-5), source_value="1742-6", value=30.0, unit="U/L")

    @p.case("labs_only_45_days_ago", "the only panel is 45 days before as-of", {"E8": "unknown"}, panel=False)
    def _(b: OmopBuilder, pid: int) -> None:
        for loinc, value, unit, low, high in NORMAL_PANEL:
            b.measurement(pid, p.day(-45), source_value=loinc, value=value, unit=unit, range_low=low, range_high=high)

    # --- E9 pregnancy or breast feeding -------------------------------------------------------
    @p.case("pregnant", "pregnant state (Z33.1) recorded 30 days ago", {"E9": "met"}, birth=add_years(a, -31))
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, p.day(-30), source_value="Z33.1")

    @p.case("pregnancy_91_days_ago_negative_hcg", "pregnancy recorded 91 days ago, negative hCG 5 days ago",
            {"E9": "not_met"}, birth=add_years(a, -31))
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, p.day(-91), source_value="O09.90")
        b.measurement(pid, p.day(-5), source_value="21198-7", value=1.0, unit="[IU]/L", range_high=5.0)

    @p.case("hcg_positive", "beta-hCG 250 IU/L 3 days ago", {"E9": "met"}, birth=add_years(a, -28))
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-3), source_value="21198-7", value=250.0, unit="[IU]/L", range_high=5.0)

    @p.case("hcg_exactly_5", "beta-hCG exactly 5 IU/L (not above 5)", {"E9": "not_met"}, birth=add_years(a, -28))
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-3), source_value="21198-7", value=5.0, unit="[IU]/L", range_high=5.0)

    @p.case("breast_feeding", "lactating mother (Z39.1, an observation) 20 days ago", {"E9": "met"}, birth=add_years(a, -33))
    def _(b: OmopBuilder, pid: int) -> None:
        b.observation(pid, p.day(-20), source_value="Z39.1")

    # --- observed time ------------------------------------------------------------------------
    p.case("no_observation_period", "a person with no observation period and no records: absence proves nothing",
           {"I1": "met", "E2": "unknown", "E4": "needs_review", "E7": "unknown", "E3": "unknown", "E8": "unknown"},
           observed=False, panel=False, spo2=False)(_nothing)

    @p.case("as_of_outside_observation_period", "observed from 13 to 3 years before as-of only",
            {"I1": "met", "E2": "unknown", "E4": "needs_review", "E7": "unknown"}, observed=False, panel=False, spo2=False)
    def _(b: OmopBuilder, pid: int) -> None:
        b.observation_period(pid, add_years(a, -13), add_years(a, -3))
        b.condition(pid, add_years(a, -4), source_value="I10")

    @p.case("hiv_recorded_before_observation_ended", "observed until 3 years ago, HIV recorded 5 years ago: a record"
            " proves presence even outside current observation", {"E7": "met"}, observed=False, panel=False, spo2=False)
    def _(b: OmopBuilder, pid: int) -> None:
        b.observation_period(pid, add_years(a, -13), add_years(a, -3))
        b.condition(pid, add_years(a, -5), source_value="B20")

    # --- round 2: the clinical context a reviewer found missing (appended: earlier person ids stay) ----------
    @p.case("spo2_91_on_2_l_oxygen", "SpO2 91 % with an inhaled oxygen flow of 2 L/min at the same time: cannot show"
            " the room-air value is 88 % or more", {"E3": "unknown"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-2), source_value="59408-5", value=91.0, unit="%")
        b.measurement(pid, p.day(-2), source_value="3151-8", value=2.0, unit="L/min")

    @p.case("spo2_85_on_oxygen", "SpO2 85 % on 2 L/min oxygen: lower still on room air", {"E3": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-2), source_value="59408-5", value=85.0, unit="%")
        b.measurement(pid, p.day(-2), source_value="3151-8", value=2.0, unit="L/min")

    @p.case("spo2_86_during_walk_test", "SpO2 86 % during a six-minute walk: an exertional nadir cannot exclude",
            {"E3": "unknown"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-2), source_value="59408-5", value=86.0, unit="%")
        b.measurement(pid, p.day(-2), source_value="64098-7", value=310.0, unit="m")

    @p.case("spo2_92_during_walk_test", "SpO2 92 % during a six-minute walk: at rest it is at least as high",
            {"E3": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-2), source_value="59408-5", value=92.0, unit="%")
        b.measurement(pid, p.day(-2), source_value="64098-7", value=410.0, unit="m")

    @p.case("spo2_86_flow_0_room_air", "SpO2 86 % with an oxygen flow of 0 L/min recorded: on room air", {"E3": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-2), source_value="59408-5", value=86.0, unit="%")
        b.measurement(pid, p.day(-2), source_value="3151-8", value=0.0, unit="L/min")

    @p.case("urine_hcg_reported_positive", "qualitative urine hCG reported positive 3 days ago", {"E9": "met"},
            birth=add_years(a, -29))
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-3), source_value="2106-3", value_as_concept_id=9191)

    @p.case("urine_hcg_reported_negative", "qualitative urine hCG reported negative 3 days ago", {"E9": "not_met"},
            birth=add_years(a, -29))
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-3), source_value="2106-3", value_as_concept_id=9189)

    @p.case("hcg_positive_sex_not_recorded", "beta-hCG 250 IU/L, no recorded sex: a positive test excludes whatever"
            " the sex column says", {"E9": "met"}, sex=None)
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, p.day(-3), source_value="21198-7", value=250.0, unit="[IU]/L", range_high=5.0)

    @p.case("pregnancy_status_pregnant", "pregnancy-status observation (82810-3) answered 'Pregnant' 10 days ago",
            {"E9": "met"}, birth=add_years(a, -30))
    def _(b: OmopBuilder, pid: int) -> None:
        b.observation(pid, p.day(-10), source_value="82810-3", value_as_string="Pregnant")

    @p.case("truxima_product_code", "rituximab-abbs (Truxima) recorded by its branded-drug RxNorm code 3 weeks ago",
            {"E2": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.drug(pid, p.day(-21), p.day(-21), source_value="2105831")

    @p.case("rituximab_by_brand_name_only", "an infusion recorded only as the text 'Truxima 500 mg in 50 mL' 3 weeks ago",
            {"E2": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.drug(pid, p.day(-21), p.day(-21), source_value="Truxima 500 mg in 50 mL")

    @p.case("heart_failure_a_year_ago_not_resolved", "heart failure recorded once a year ago, never resolved: still present",
            {"E6": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_months(a, -12), source_value="I50.9")

    @p.case("heart_failure_resolved_before_window", "heart failure a year ago that ended 8 months before the first"
            " infusion: only the investigators' opinion remains", {"E6": "needs_review"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_months(a, -12), source_value="I50.9", end_date=add_months(fi, -8))

    @p.case("old_mi_only", "old myocardial infarction (I25.2) recorded last month: not an acute MI", {"E6": "needs_review"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_months(a, -1), source_value="I25.2")

    @p.case("hbsag_positive", "HBsAg reported positive 4 years ago, no hepatitis diagnosis code", {"E7": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, add_years(a, -4), source_value="5196-1", value_as_concept_id=9191)

    @p.case("isolated_anti_hbc_positive", "anti-HBc positive, HBsAg negative: a history of hepatitis B", {"E7": "met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, add_years(a, -2), source_value="16933-4", value_as_concept_id=9191)
        b.measurement(pid, add_years(a, -2), source_value="5196-1", value_as_concept_id=9189)

    @p.case("hcv_antibody_negative", "HCV antibody reported negative last year", {"E7": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.measurement(pid, add_years(a, -1), source_value="13955-0", value_as_concept_id=9189)

    @p.case("methotrexate_years_ago_for_arthritis", "RA and ILD, methotrexate for 400 days that stopped 2 years ago:"
            " not under therapy now", {"I3": "not_met"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_years(a, -9), source_value="M06.9")
        b.condition(pid, add_years(a, -3), source_value="J84.10")
        b.drug(pid, p.day(-1130), p.day(-730), source_value="6851")

    @p.case("new_ild_with_ipaf_features", "ILD first recorded 3 months ago, no CTD code, anti-Ro (SS-A) positive and"
            " Raynaud's phenomenon: IPAF is the investigator's call, with the features shown",
            {"I3": "needs_review", "E1": "needs_review"})
    def _(b: OmopBuilder, pid: int) -> None:
        b.condition(pid, add_months(a, -3), source_value="J84.112")
        b.measurement(pid, add_months(a, -4), source_value="5352-0", value_as_concept_id=9191)
        b.condition(pid, add_years(a, -2), source_value="I73.0")

    return p.cases

"""Laboratory quantities convert between the units sites report them in, and refuse to guess."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialdesk.terminology.units import (
    UnitConversionError,
    analyte,
    convert,
    convert_or_raise,
    factor_table,
    linear_factor,
    normalise,
)


def test_creatinine_one_mg_per_dl_is_88_42_umol_per_l() -> None:
    assert convert(1.0, "mg/dL", "umol/L", analyte="creatinine") == pytest.approx(88.42, abs=0.005)


def test_creatinine_converts_back_from_umol_per_l_by_its_loinc_code() -> None:
    assert convert(88.42, "umol/L", "mg/dL", analyte="2160-0") == pytest.approx(1.0, abs=1e-4)


def test_mass_to_molar_without_an_analyte_is_not_guessed() -> None:
    assert convert(1.0, "mg/dL", "umol/L") is None
    assert linear_factor("mg/dL", "umol/L") is None


def test_hemoglobin_12_g_per_dl_is_120_g_per_l() -> None:
    assert convert(12, "g/dL", "g/L") == 120


def test_hemoglobin_one_g_per_dl_is_0_6206_mmol_per_l_as_the_monomer() -> None:
    assert convert(1, "g/dL", "mmol/L", analyte="Hgb") == pytest.approx(0.6206, abs=5e-5)
    assert convert(6.2, "mmol/L", "g/dL", analyte="hemoglobin") == pytest.approx(9.99, abs=0.01)


def test_4_5_thousand_per_microlitre_is_4_5_times_10_9_per_litre() -> None:
    assert convert(4.5, "x10E3/uL", "10*9/L") == 4.5


@pytest.mark.parametrize("spelling", ["10^3/uL", "x10E3/uL", "K/uL", "thou/uL", "10*3/uL", "10*3/mm3", "K/mcL", "10^3/mcL"])
def test_thousands_per_microlitre_spellings_equal_10_9_per_litre(spelling: str) -> None:
    assert convert(1.5, spelling, "10*9/L") == 1.5


def test_1500_per_mm3_is_exactly_1_5_times_10_9_per_litre_without_float_noise() -> None:
    assert convert(1500, "/mm3", "10*9/L") == 1.5
    assert convert(1500, "cells/uL", "10*9/L") == 1.5


def test_k_per_microlitre_is_thousands_not_kelvin() -> None:
    assert normalise("K/uL") == "10*3/uL"


@pytest.mark.parametrize(
    ("spelling", "ucum"),
    [
        ("10^3/uL", "10*3/uL"),
        ("x10E3/uL", "10*3/uL"),
        ("thou/uL", "10*3/uL"),
        ("10^9/L", "10*9/L"),
        ("x 10^9 /L", "10*9/L"),
        ("×10⁹/L", "10*9/L"),
        ("cells/uL", "/uL"),
        ("mcL", "uL"),
        ("mcg/dL", "ug/dL"),
        ("µmol/L", "umol/L"),
        ("mg/dl", "mg/dL"),
        ("g/l", "g/L"),
        ("IU/L", "[IU]/L"),
        ("mIU/mL", "m[IU]/mL"),
        ("mmHg", "mm[Hg]"),
        ("°C", "Cel"),
        ("degF", "[degF]"),
        ("percent", "%"),
        ("U/L", "U/L"),
    ],
)
def test_laboratory_spellings_normalise_to_ucum(spelling: str, ucum: str) -> None:
    assert normalise(spelling) == ucum


@pytest.mark.parametrize("unknown", ["furlongs", "", "   ", "abc", "cells per bucket"])
def test_unknown_unit_normalises_to_none(unknown: str) -> None:
    assert normalise(unknown) is None


def test_unknown_unit_does_not_convert() -> None:
    assert convert(1.0, "furlongs", "g/L") is None
    assert linear_factor("g/L", "furlongs") is None


def test_60_u_per_l_is_1_microkatal_per_l() -> None:
    assert convert(60, "U/L", "ukat/L") == 1.0


def test_international_units_of_an_enzyme_are_enzyme_units() -> None:
    assert convert(60, "IU/L", "U/L", analyte="ALT") == 60
    assert convert(60, "IU/L", "ukat/L", analyte="1920-8") == 1.0


def test_international_units_without_an_enzyme_analyte_are_not_enzyme_units() -> None:
    assert convert(60, "IU/L", "U/L") is None


def test_hcg_international_units_per_litre_equal_milli_units_per_millilitre() -> None:
    assert convert(25, "[IU]/L", "m[IU]/mL") == 25


def test_arbitrary_units_never_convert_to_cell_counts() -> None:
    assert convert(5, "[IU]/L", "10*9/L") is None


def test_38_5_celsius_is_101_3_fahrenheit() -> None:
    assert convert(38.5, "Cel", "[degF]") == pytest.approx(101.3)
    assert convert(101.3, "°F", "°C") == pytest.approx(38.5)


def test_temperature_has_no_linear_factor() -> None:
    assert linear_factor("Cel", "[degF]") is None


def test_spo2_fraction_0_95_is_95_percent() -> None:
    assert convert(0.95, "1", "%") == 95
    assert convert(95, "%", "1") == 0.95


def test_incompatible_dimensions_do_not_convert() -> None:
    assert convert(1.0, "mg/dL", "%") is None
    assert convert(1.0, "mg/dL", "%", analyte="creatinine") is None
    assert linear_factor("mg/dL", "%") is None


def test_mass_concentrations_convert() -> None:
    assert convert(1.0, "mg/dL", "mg/L") == 10
    assert convert(1.0, "mg/dL", "g/L") == 0.01
    assert convert(250, "ng/mL", "ug/L") == 250


def test_linear_factor_is_the_multiplier_to_the_target_unit() -> None:
    assert linear_factor("/mm3", "10*9/L") == 0.001
    assert linear_factor("mg/dL", "umol/L", "creatinine") == pytest.approx(88.42, abs=0.005)
    assert linear_factor("g/L", "g/L") == 1


def test_factor_table_lists_each_unit_once_with_none_for_the_unconvertible() -> None:
    table = factor_table(["10*3/uL", "/mm3", "K/uL", "/mm3", "bogus"], "10*9/L")
    assert table == {"10*3/uL": 1.0, "/mm3": 0.001, "K/uL": 1.0, "bogus": None}


def test_an_unconvertible_unit_is_named_in_the_error() -> None:
    with pytest.raises(UnitConversionError, match="'furlongs'"):
        convert_or_raise(1.0, "furlongs", "g/L")
    with pytest.raises(UnitConversionError, match="molar mass"):
        convert_or_raise(1.0, "mg/dL", "umol/L")


def test_analytes_are_found_by_name_abbreviation_or_loinc() -> None:
    alt = analyte("SGPT")
    assert alt is not None and alt.id == "alanine_aminotransferase"
    assert analyte("1742-6") == alt
    assert analyte("not an analyte") is None


def test_a_registry_warmed_up_in_the_background_is_built_once_and_converts_as_usual() -> None:
    import threading

    from trialdesk.terminology import units

    for cached in (units._build_registry, units._quantity, units.normalise, units.linear_factor):
        cached.cache_clear()  # together: a cached quantity belongs to the registry that made it
    units.warm_up()
    results: list[float | None] = []
    readers = [threading.Thread(target=lambda: results.append(convert(1.0, "mg/dL", "umol/L", "creatinine")))
               for _ in range(4)]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    assert results == [pytest.approx(88.42, abs=0.01)] * 4
    assert units._build_registry.cache_info().misses == 1


def test_the_command_line_keeps_answers_about_units_and_nothing_a_chart_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trialdesk import kept
    from trialdesk.terminology import units

    monkeypatch.setattr(units, "_ANSWERS", {})
    monkeypatch.setattr(units, "_KEPT", {"file": None, "new": 0})
    units.normalise.cache_clear()
    units.linear_factor.cache_clear()
    with kept.keeping(tmp_path):
        assert units.normalise("mg/dl") == "mg/dL"
        assert units.normalise("sample of J. Smith") is None  # a text that names no unit: not kept
        assert units.convert(5.2, "mg/dL", "umol/L", "creatinine") == pytest.approx(459.77, abs=0.01)  # a chart's value: not kept
        assert units.linear_factor("mg/dL", "umol/L", "creatinine") == pytest.approx(88.42, abs=0.01)
        # a reference range's end is the laboratory's: its conversion is kept when the caller says so
        assert units.convert(53.0, "umol/L", "mg/dL", "creatinine", keep=True) == pytest.approx(0.5994, abs=0.0001)
    (answers,) = (tmp_path / "units").iterdir()
    text = answers.read_text(encoding="utf-8")
    assert "mg/dl" in text and "88.4173297966" in text and "53.0" in text
    assert "Smith" not in text and "5.2" not in text and "459" not in text
    # read back by a later block (a later process): the same answers, without computing them
    units.normalise.cache_clear()
    monkeypatch.setattr(units, "_ANSWERS", {})
    monkeypatch.setattr(units, "_KEPT", {"file": None, "new": 0})
    monkeypatch.setattr(units, "_normalise", lambda unit: pytest.fail(f"{unit} computed, not read"))
    with kept.keeping(tmp_path):
        assert units.normalise("mg/dl") == "mg/dL"

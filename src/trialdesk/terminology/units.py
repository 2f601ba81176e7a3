"""Laboratory units: spell them as UCUM, and convert quantities between them.

Dimensional conversion is not hand-written here. UCUM codes are parsed by ``ucumvert``
(a UCUM grammar and unit definitions on top of ``pint``) and converted by ``pint``; both
work offline (their definitions ship inside the wheels). Evaluated and chosen because
together they cover every unit the trial meets: mass and substance concentrations,
counts per volume written as ``10*3/uL``, ``/mm3`` or ``10*9/L``, the enzyme unit ``U``
and the katal, percent and the unity ``1``, and Celsius/Fahrenheit as offset units.
``pint`` alone does not read UCUM (``10*3/uL``, ``Cel``, ``[degF]``, ``mm[Hg]``).

What UCUM cannot know lives in ``data/unit_conversions.yaml``:

- **spellings** that laboratories and EHRs use but UCUM does not define (``K/uL``,
  ``x10E3/uL``, ``mcL``, ``IU/L``, ``mmHg``, ``°C``). ``K/uL`` is a valid UCUM code meaning
  kelvin per microlitre, so the spelling table is consulted *before* the UCUM parser.
- **analytes**: the molar mass used for mass <-> amount conversions (creatinine
  mg/dL <-> umol/L, haemoglobin g/dL <-> mmol/L as the monomer), and whether the
  laboratory "IU" of an analyte is the enzyme unit (1 IU/L = 1 U/L for ALT, AST, ...).
  UCUM keeps ``[IU]`` an arbitrary unit, commensurable only with itself, so without an
  enzyme analyte ``[IU]/L`` -> ``U/L`` is refused rather than guessed.

Rules that keep conversions honest:

- an unknown spelling normalises to ``None``; a conversion with an unknown unit, with
  incommensurable dimensions (mg/dL -> %), or between different arbitrary units
  ([IU]/L -> 10*9/L, which pint alone would allow because both are "per litre") is ``None``;
- results are rounded to 12 significant digits so that binary floating-point noise
  (1500 /mm3 -> 1.5000000000000004 10*9/L) cannot move a value across a grading threshold;
- ``linear_factor`` is ``None`` for affine conversions (Cel -> [degF]); use ``convert``.

``analyte`` may be an analyte id, a name or abbreviation (``"ALT"``, ``"Hb"``) or a LOINC
code (``"2160-0"``), case-insensitive; an analyte this module does not know simply
contributes no molar mass.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ruamel.yaml import YAML

__all__ = [
    "Analyte",
    "UnitConversionError",
    "analyte",
    "convert",
    "convert_or_raise",
    "factor_table",
    "is_ucum",
    "linear_factor",
    "normalise",
]

_SIGNIFICANT_DIGITS = 12

# UCUM arbitrary units: commensurable only with the same arbitrary unit (UCUM §4.3 "arbitrary units").
_ARBITRARY_ATOMS = frozenset(
    {
        "[IU]", "[arb'U]", "[USP'U]", "[GPL'U]", "[MPL'U]", "[APL'U]", "[beth'U]", "[anti'Xa'U]",
        "[todd'U]", "[dye'U]", "[smgy'U]", "[bdsk'U]", "[ka'U]", "[knk'U]", "[mclg'U]", "[tb'U]",
        "[CCID_50]", "[TCID_50]", "[EID_50]", "[PFU]", "[FFU]", "[CFU]", "[IR]", "[BAU]", "[AU]",
        "[Amb'a'1'U]", "[PNU]", "[Lf]", "[D'ag'U]", "[FEU]", "[ELU]", "[EU]", "[HPF]", "[LPF]",
    }
)  # fmt: skip


class UnitConversionError(ValueError):
    """A value whose unit cannot be converted to the unit a rule needs."""


@dataclass(frozen=True)
class Analyte:
    id: str
    names: tuple[str, ...]
    loinc: tuple[str, ...]
    molar_mass_g_per_mol: float | None = None
    iu_is_enzyme_unit: bool = False


@dataclass(frozen=True)
class _UnitData:
    spellings: dict[str, str]
    spellings_folded: dict[str, str]
    analytes: dict[str, Analyte]  # keyed by id, lower-case name and LOINC code


@functools.cache
def _data() -> _UnitData:
    text = resources.files("trialdesk.terminology").joinpath("data/unit_conversions.yaml").read_text(encoding="utf-8")
    raw = YAML(typ="safe").load(text)
    spellings = {str(k).strip(): str(v) for k, v in raw["spellings"].items()}
    folded: dict[str, str] = {}
    for spelling, ucum in spellings.items():
        folded.setdefault(spelling.casefold(), ucum)
    analytes: dict[str, Analyte] = {}
    for row in raw["analytes"]:
        mm = row.get("molar_mass_g_per_mol")
        a = Analyte(
            id=str(row["id"]),
            names=tuple(str(n) for n in row.get("names", [])),
            loinc=tuple(str(c) for c in row.get("loinc", [])),
            molar_mass_g_per_mol=float(mm) if mm is not None else None,
            iu_is_enzyme_unit=bool(row.get("iu_is_enzyme_unit", False)),
        )
        for key in (a.id, *a.names, *a.loinc):
            analytes[key.casefold()] = a
    return _UnitData(spellings, folded, analytes)


_REGISTRY_LOCK = threading.Lock()


def _new_lock_in_child() -> None:
    # a process forked while the warm-up thread held the lock would wait on it forever
    global _REGISTRY_LOCK
    _REGISTRY_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)


def _registry() -> Any:
    with _REGISTRY_LOCK:  # built once, even when a warm-up thread is still building it
        return _build_registry()


@functools.cache
def _build_registry() -> Any:
    # Imported lazily: building the registry parses the UCUM grammar (0.5-1.5 s).
    # ucumvert ships no type information; import_module keeps mypy --strict quiet without a per-module override.
    ucumvert = importlib.import_module("ucumvert")
    return ucumvert.PintUcumRegistry()


def warm_up() -> None:
    """Start building the unit registry in a background thread, so that a caller about to
    spend seconds in the database (which releases the GIL) does not pay for it afterwards;
    unless the answers an earlier process kept are at hand (:func:`_kept_answers`): then the
    registry is built only if a unit they do not hold is met."""
    if not _build_registry.cache_info().currsize and not _kept_answers():
        threading.Thread(target=_registry, name="ucum-registry", daemon=True).start()


# --- answers kept between processes (the command line) ----------------------------------
#
# Building the registry is ~1.8 s of CPU in every fresh process (half a fresh ``patient check`` of one chart), for
# the few answers a chart needs: each unit spelling normalised, the factors from the units found to the protocol's.
# Under :func:`trialdesk.kept.keeping` those answers are kept on disk (key: the code's fingerprint, which names
# ucumvert's and pint's versions, and the bytes of unit_conversions.yaml) and read back by the next process, which
# then builds the registry only for an answer it does not hold. Only answers about units are kept, nothing a chart
# holds about a patient: a spelling that names a unit (not a text that names none), a conversion of 0 or 1 (a
# factor) or of a reference range's end (the laboratory's range, ``convert(..., keep=True)``), not of a result. The
# answers are those the functions compute: a float is kept as its shortest repr, which reads back as the same float.

#: answers of :func:`normalise` ("n" + the unit's repr) and :func:`convert` ("c" + the repr of its arguments)
_ANSWERS: dict[str, Any] = {}
#: at most this many answers kept (a batch's ranges in other units than their values add one per distinct value)
KEEP_ANSWERS = 20_000
#: the file the answers were read from (read again if another folder keeps), and how many were added since
_KEPT: dict[str, Any] = {"file": None, "new": 0}


def _answers_file() -> Any:
    """The file of the kept answers, or None when nothing is kept (a library caller, the trial desk, the tests)."""
    from trialdesk import kept

    if kept.folder("units") is None:
        return None
    return kept.key_file("units", _data_bytes(), ".json")


@functools.cache
def _data_bytes() -> bytes:
    return resources.files("trialdesk.terminology").joinpath("data/unit_conversions.yaml").read_bytes()


def _kept_answers() -> bool:
    """While something is kept: read the answers earlier processes kept (once per file); whether any are at hand."""
    path = _answers_file()
    if path is None:
        return False
    if _KEPT["file"] != path:
        _KEPT["file"] = path
        from trialdesk import kept

        kept.at_end(_keep_answers)
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(found, dict):
                for k, v in found.items():
                    _ANSWERS.setdefault(k, v)
        except (OSError, ValueError):
            pass
    return bool(_ANSWERS)


def _answer(key: str, compute: Any, keep: Any = True) -> Any:
    """``compute()``, or, while something is kept, the answer kept for ``key``; a new answer is kept when ``keep``
    holds for it."""
    if _answers_file() is None:
        return compute()
    _kept_answers()
    if key in _ANSWERS:
        return _ANSWERS[key]
    value = compute()
    if len(_ANSWERS) < KEEP_ANSWERS and (keep(value) if callable(keep) else keep):
        _ANSWERS[key] = value
        _KEPT["new"] += 1
    return value


def _keep_answers() -> None:
    path = _answers_file()
    if path is None or not _KEPT["new"]:
        return
    from trialdesk import kept

    kept.write(path, json.dumps(_ANSWERS, sort_keys=True).encode())
    _KEPT["new"] = 0


def analyte(name_or_code: str | None) -> Analyte | None:
    """The analyte named by an id, a name or abbreviation, or a LOINC code; ``None`` if unknown."""
    if not name_or_code:
        return None
    return _data().analytes.get(name_or_code.strip().casefold())


# --- spelling ---------------------------------------------------------------------------

_POWER_OF_TEN = re.compile(r"^(?:x\s*)?10\s*(?:\^|\*|E|e)\s*(\d+)\s*(/.*)?$")
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_LOWER_LITRE = re.compile(r"(?<![A-Za-z\[])([munpfd]?)l(?![A-Za-z\]])")
_MICRO_MC = re.compile(r"(?<![A-Za-z])mc(?=g|L|l|mol|kat)")


def _rewrite(unit: str) -> str:
    """Mechanical respellings shared by many laboratory systems."""
    u = " ".join(unit.split())
    u = u.replace("µ", "u").replace("μ", "u").replace("×", "x")
    u = re.sub(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹]+)", lambda m: "10^" + m.group(1).translate(_SUPERSCRIPTS), u)
    u = _MICRO_MC.sub("u", u)
    u = re.sub(r"\s*/\s*", "/", u)
    u = re.sub(r"^cells?/", "/", u, flags=re.IGNORECASE)
    if m := _POWER_OF_TEN.match(u):
        u = f"10*{m.group(1)}{m.group(2) or ''}"
        u = re.sub(r"^(10\*\d+)/cells?/", r"\1/", u)
    return _LOWER_LITRE.sub(lambda m: f"{m.group(1)}L", u)


def is_ucum(unit: str) -> bool:
    """Whether ``unit`` is a unit code UCUM defines, as written (``mg/dL``, ``%``, ``[IU]/L``,
    ``10*3/uL``); a laboratory spelling that only ``normalise`` knows (``mg/dl``, ``K/uL``) is not."""
    stripped = unit.strip()
    return bool(stripped) and stripped == unit and _parses(stripped)


def _parses(ucum: str) -> bool:
    try:
        _quantity(ucum)
    except Exception:  # the UCUM parser and pint raise many unrelated exception types
        return False
    return True


@functools.lru_cache(maxsize=4096)
def normalise(unit: str) -> str | None:
    """The canonical UCUM code for a unit as a laboratory or EHR spells it; ``None`` if unknown.

    >>> normalise("x10E3/uL"), normalise("K/uL"), normalise("mg/dl"), normalise("furlongs")
    ('10*3/uL', '10*3/uL', 'mg/dL', None)
    """
    # kept only when it names a unit: a text no unit is read from may be anything a chart holds (nothing about a patient is kept)
    return _answer("n" + repr(unit), lambda: _normalise(unit), lambda ucum: ucum is not None)  # type: ignore[no-any-return]


def _normalise(unit: str) -> str | None:
    data = _data()
    stripped = unit.strip()
    if not stripped:
        return None
    for candidate in (stripped, _rewrite(stripped)):
        if candidate in data.spellings:
            return data.spellings[candidate]
    rewritten = _rewrite(stripped)
    if rewritten.casefold() in data.spellings_folded and not _parses(rewritten):
        return data.spellings_folded[rewritten.casefold()]
    if _parses(rewritten):
        return rewritten
    return data.spellings_folded.get(stripped.casefold())


# --- conversion -------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _quantity(ucum: str) -> Any:
    """One of ``ucum`` as a pint Quantity (an annotation alone, ``{ratio}``, is unity)."""
    reg = _registry()
    parsed = reg.from_ucum(ucum)
    if not hasattr(parsed, "units"):
        return reg.Quantity(1, "dimensionless")
    return parsed


def _arbitrary_atoms(ucum: str) -> list[str]:
    atoms = (a.replace("[iU]", "[IU]") for a in re.findall(r"\[[^\]]*\]", ucum))
    return sorted(a for a in atoms if a in _ARBITRARY_ATOMS)


def _signif(x: float, digits: int = _SIGNIFICANT_DIGITS) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def _prepare(from_unit: str, to_unit: str, analyte_name: str | None) -> tuple[str, str, Analyte | None] | None:
    src, dst = normalise(from_unit), normalise(to_unit)
    if src is None or dst is None:
        return None
    a = analyte(analyte_name)
    if a is not None and a.iu_is_enzyme_unit:
        src, dst = (re.sub(r"\[i?IU\]", "U", u) for u in (src, dst))
    if _arbitrary_atoms(src) != _arbitrary_atoms(dst):
        return None
    return src, dst, a


def _convert_ucum(value: float, src: str, dst: str, a: Analyte | None) -> float | None:
    reg = _registry()
    q_src, q_dst = _quantity(src), _quantity(dst)
    quantity = reg.Quantity(value * q_src.magnitude, q_src.units)
    try:
        return float(quantity.to(q_dst.units).magnitude / q_dst.magnitude)
    except Exception:  # pint DimensionalityError / OffsetUnitCalculusError: try a molar conversion
        pass
    if a is None or a.molar_mass_g_per_mol is None:
        return None
    molar_mass = reg.Quantity(a.molar_mass_g_per_mol, "g/mol")
    ratio = (reg.Quantity(1, q_src.units) / reg.Quantity(1, q_dst.units)).dimensionality
    try:
        if ratio == molar_mass.dimensionality:  # mass -> amount of substance
            return float((quantity / molar_mass).to(q_dst.units).magnitude / q_dst.magnitude)
        if ratio == (1 / molar_mass).dimensionality:  # amount of substance -> mass
            return float((quantity * molar_mass).to(q_dst.units).magnitude / q_dst.magnitude)
    except Exception:
        return None
    return None


def convert(value: float, from_unit: str, to_unit: str, analyte: str | None = None, *, keep: bool = False) -> float | None:
    """``value`` in ``from_unit`` expressed in ``to_unit``; ``None`` when it cannot be converted.

    >>> convert(1.0, "mg/dL", "umol/L", analyte="creatinine")
    88.4173297966
    """
    key = "c" + repr((value, from_unit, to_unit, analyte))
    # kept for 0 and 1 (:func:`linear_factor`'s) and where the caller says the value is no patient's (``keep``: a
    # laboratory's reference range); a patient's result is not kept
    return _answer(key, lambda: _convert(value, from_unit, to_unit, analyte), keep or value in (0, 1))  # type: ignore[no-any-return]


def _convert(value: float, from_unit: str, to_unit: str, analyte: str | None = None) -> float | None:
    prepared = _prepare(from_unit, to_unit, analyte)
    if prepared is None:
        return None
    src, dst, a = prepared
    try:
        result = _convert_ucum(float(value), src, dst, a)
    except Exception:
        return None
    return None if result is None else _signif(result)


def convert_or_raise(value: float, from_unit: str, to_unit: str, analyte: str | None = None) -> float:
    """Like :func:`convert`, but a unit that cannot be converted raises :class:`UnitConversionError` naming it."""
    result = convert(value, from_unit, to_unit, analyte)
    if result is not None:
        return result
    for unit in (from_unit, to_unit):
        if normalise(unit) is None:
            raise UnitConversionError(
                f"unit {unit!r} is not a UCUM code or a known laboratory spelling; "
                "record the value in a UCUM unit or add the spelling to terminology/data/unit_conversions.yaml"
            )
    about = f" for {analyte!r}" if analyte else ""
    raise UnitConversionError(
        f"cannot convert {from_unit!r} ({normalise(from_unit)}) to {to_unit!r} ({normalise(to_unit)}){about}: "
        "the dimensions differ (a mass <-> molar conversion needs the analyte's molar mass)"
    )


@functools.lru_cache(maxsize=4096)
def linear_factor(from_unit: str, to_unit: str, analyte: str | None = None) -> float | None:
    """The factor f with ``value_in_to_unit = f * value_in_from_unit``; ``None`` when there is none.

    ``None`` both when the units cannot be converted and when the conversion is affine
    (Cel -> [degF]), so a factor table joined in SQL never holds a wrong multiplier.
    """
    zero = convert(0.0, from_unit, to_unit, analyte)
    if zero is None or zero != 0.0:
        return None
    return convert(1.0, from_unit, to_unit, analyte)


def factor_table(from_units: Iterable[str], to_unit: str, analyte: str | None = None) -> dict[str, float | None]:
    """``linear_factor`` for each distinct unit, ready to become a join table (unit -> factor)."""
    return {u: linear_factor(u, to_unit, analyte) for u in dict.fromkeys(from_units)}

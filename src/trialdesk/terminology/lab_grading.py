"""CTCAE v5.0 grades of laboratory values and vital signs, from a table of rules.

The thresholds are data (``data/ctcae_v5_lab_grading.yaml``), translated from pharmaverse
admiral's CTCAE v5.0 grading specification; the file's header states the evaluation
semantics, which follow admiral's exactly: rules tried in the file's order (grade 4 down to
grade 1), the first that holds wins, both sides rounded to 15 significant digits, a rule
whose reference (ULN, LLN, baseline) is missing does not hold, and ``{ungradable_without: X}``
rows stop with "cannot grade" where admiral returns NA.

:func:`grade_lab` returns a :class:`LabGrade` whose ``grade`` is 1-5 when a CTCAE grade is
reached and 0 when the value was graded and reaches none; it returns ``None`` when the value
cannot be graded (a reference the term needs is missing). Values are converted to the unit
the rules are written in with :mod:`trialdesk.terminology.units`; a unit that cannot be
converted raises :class:`~trialdesk.terminology.units.UnitConversionError` naming it.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from ruamel.yaml import YAML

from trialdesk.terminology import units
from trialdesk.terminology.ctcae import catalogue
from trialdesk.terminology.units import UnitConversionError

__all__ = ["GradingRule", "LabGrade", "LabGradingError", "TermGrading", "grade_lab", "grading_table"]

Reference = Literal["ULN", "LLN", "BASE"]
Context = Literal["rest", "exercise"]

_SIGNIFICANT_DIGITS = 15  # admiral's default signif_dig
_OPERATORS: dict[str, Callable[[float, float], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


class LabGradingError(LookupError):
    """A term or analyte that has no grading rules."""

    def __str__(self) -> str:
        return str(self.args[0])


class GradingRule(BaseModel):
    """One row of a term's rules: a comparison that gives a grade, or a stop when a reference is missing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grade: int | None = Field(default=None, ge=1, le=5)
    op: Literal[">", ">=", "<", "<="] | None = None
    of: Reference | None = None
    factor: float = 1.0
    #: added to factor x reference (Hemoglobin increased: "ULN + 20 g/L")
    offset: float = 0.0
    value: float | None = None
    #: the rule also needs a fall from baseline to at most this percent change (Fibrinogen decreased:
    #: "< LLN and a decrease of >= 75 % from baseline"); without a baseline it does not hold
    pchg_at_most: float | None = None
    baseline_normal: bool = False
    baseline_abnormal: bool = False
    context: Context | None = None
    duration_hours_over: float | None = None
    #: the rule holds only when the reading was taken on supplemental oxygen the participant did not need
    #: at baseline (Hypoxia: "intermittent supplemental oxygen"); with no comparison, that alone gives the grade
    new_oxygen: bool = False
    ungradable_without: Reference | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.ungradable_without is not None:
            if self.grade is not None or self.op is not None:
                raise ValueError("an 'ungradable_without' row takes no grade or comparison")
            return self
        if self.grade is None:
            raise ValueError("a rule needs 'grade'")
        if self.op is None and self.new_oxygen and self.of is None and self.value is None:
            return self  # a condition-only rule: new supplemental oxygen
        if self.op is None:
            raise ValueError("a rule needs 'op' (or is a condition-only 'new_oxygen' rule)")
        if (self.of is None) == (self.value is None):
            raise ValueError("a rule compares with exactly one of 'of' (ULN, LLN, BASE, times 'factor') or 'value'")
        if self.baseline_normal and self.baseline_abnormal:
            raise ValueError("a rule cannot require both 'baseline_normal' and 'baseline_abnormal'")
        return self

    def applies(self, baseline_abnormal: bool, context: Context | None, duration_hours: float | None,
                new_oxygen: bool | None = None) -> bool:
        """Whether the rule's conditions other than the comparison hold."""
        if (self.baseline_normal and baseline_abnormal) or (self.baseline_abnormal and not baseline_abnormal):
            return False
        if self.new_oxygen and not new_oxygen:
            return False
        if self.context is not None and self.context != context:
            return False
        lasted = duration_hours is not None and self.duration_hours_over is not None and duration_hours > self.duration_hours_over
        return self.duration_hours_over is None or lasted

    def describe(self, unit: str) -> str:
        if self.ungradable_without is not None:
            return f"cannot grade without {self.ungradable_without}"
        if self.op is None:
            return "new supplemental oxygen"
        target = f"{self.factor:g} × {self.of}" if self.of is not None else f"{self.value:g} {unit}"
        if self.offset:
            target += f" {'+' if self.offset > 0 else '-'} {abs(self.offset):g} {unit}"
        text = f"value {self.op} {target}"
        if self.pchg_at_most is not None:
            text += f" and a change from baseline of {self.pchg_at_most:g} % or more"
        if self.baseline_normal:
            text += " (baseline normal)"
        if self.baseline_abnormal:
            text += " (baseline abnormal)"
        if self.context is not None:
            text += f" at {self.context}" if self.context == "rest" else f" with {self.context}"
        if self.duration_hours_over is not None:
            text += f" for more than {self.duration_hours_over:g} h"
        if self.new_oxygen:
            text = "new supplemental oxygen" if self.op is None else text + " on new supplemental oxygen"
        return text


class TermGrading(BaseModel):
    """The grading rules of one CTCAE term for one kind of measurement (Hypoxia has SpO2 and PaO2)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    term: str
    direction: Literal["H", "L"]
    unit: str
    analytes: list[str] = Field(min_length=1)
    requires: list[Reference] = []
    default_context: Context | None = None
    rules: list[GradingRule] = Field(min_length=1)


class _GradingFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal["CTCAE v5.0"]
    terms: list[TermGrading]


@dataclass(frozen=True)
class LabGrade:
    """The grade a value reaches, with the evidence: the rule that fired and the numbers it compared."""

    term: str
    meddra_code: str
    grade: int  # 0: graded, no CTCAE grade reached
    rule: str
    value: float  # in `unit`, the unit the rules are written in
    unit: str
    grade_text: str | None  # the CTCAE v5.0 text of the grade; None for grade 0


@functools.cache
def grading_table() -> tuple[TermGrading, ...]:
    """The shipped grading rules, checked against the CTCAE catalogue and the unit data."""
    path = "data/ctcae_v5_lab_grading.yaml"
    text = resources.files("trialdesk.terminology").joinpath(path).read_text(encoding="utf-8")
    try:
        table = _GradingFile.model_validate(YAML(typ="safe").load(text))
    except ValidationError as exc:
        raise ValueError(f"terminology/{path} is not a valid grading table:\n{exc}") from exc
    ctcae = catalogue()
    for t in table.terms:
        term = ctcae.term(t.term)  # UnknownTermError names a misspelt term
        for rule in t.rules:
            if rule.grade is not None:
                ctcae.validate_grade(term, rule.grade)
        if units.normalise(t.unit) is None:
            raise ValueError(f"terminology/{path}: term {t.term!r} has unit {t.unit!r}, which is not UCUM")
        unknown = [a for a in t.analytes if units.analyte(a) is None]
        if unknown:
            raise ValueError(f"terminology/{path}: term {t.term!r} names analytes {unknown} missing from unit_conversions.yaml")
    return tuple(table.terms)


def _candidates(term_or_analyte: str) -> list[TermGrading]:
    table = grading_table()
    key = term_or_analyte.strip().casefold()
    by_term = [t for t in table if t.term.casefold() == key]
    if by_term:
        return by_term
    analyte = units.analyte(term_or_analyte)
    by_analyte = [t for t in table if analyte is not None and analyte.id in t.analytes]
    if by_analyte:
        return by_analyte
    names = sorted({t.term for t in table})
    raise LabGradingError(
        f"no CTCAE v5.0 grading rules for {term_or_analyte!r}; give one of the terms {names}, "
        "or an analyte name or LOINC code listed in terminology/data/unit_conversions.yaml"
    )


def _signif(x: float) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, _SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(x))))


def _num(x: float) -> str:
    return format(x, ".10g")


@dataclass(frozen=True)
class _Measurement:
    """The value twice: as given (for comparisons with its own range and baseline) and in the rules' unit."""

    value: float
    unit: str
    value_in_rule_unit: float
    refs: dict[Reference, float | None]  # in `unit`
    baseline_abnormal: bool


def _evaluate(grading: TermGrading, m: _Measurement, context: Context | None, duration_hours: float | None,
              new_oxygen: bool | None = None) -> LabGrade | None:
    if any(m.refs[r] is None for r in grading.requires):
        return None
    context = context or grading.default_context
    term = catalogue().term(grading.term)
    for rule in grading.rules:
        if rule.ungradable_without is not None:
            if m.refs[rule.ungradable_without] is None:
                return None
            continue
        if not rule.applies(m.baseline_abnormal, context, duration_hours, new_oxygen):
            continue
        if rule.op is None:  # condition-only (new supplemental oxygen): the condition gives the grade
            assert rule.grade is not None
            evidence = f"{grading.term} grade {rule.grade}: {_num(m.value)} {m.unit} [{rule.describe(grading.unit)}]"
            return LabGrade(grading.term, term.meddra_code, rule.grade, evidence, m.value_in_rule_unit, grading.unit,
                            term.grades[rule.grade])
        # A multiple of the value's own range or baseline is compared in the unit they share, so that a
        # conversion's rounding can never move "exactly 3 x ULN" across the boundary; a constant
        # threshold is compared in the unit the rule is written in.
        if rule.of is not None:
            ref = m.refs[rule.of]
            if ref is None:  # R: a comparison with NA is not TRUE
                continue
            value, unit, threshold = m.value, m.unit, rule.factor * ref
            if rule.offset:  # an offset is written in the rule's unit: compare there
                ref_in_rule_unit = m.value_in_rule_unit / m.value * ref if m.value else None
                if ref_in_rule_unit is None:
                    continue
                value, unit, threshold = m.value_in_rule_unit, grading.unit, rule.factor * ref_in_rule_unit + rule.offset
            against = f"{rule.factor:g} × {rule.of}{f' + {rule.offset:g}' if rule.offset else ''} = {_num(_signif(threshold))} {unit}"
        else:
            assert rule.value is not None  # guaranteed by GradingRule._one_kind
            value, unit, threshold = m.value_in_rule_unit, grading.unit, rule.value
            against = f"{_num(threshold)} {unit}"
        assert rule.op is not None and rule.grade is not None
        if rule.pchg_at_most is not None:
            base = m.refs["BASE"]
            if not base or (m.value - base) / base * 100 > rule.pchg_at_most:
                continue
        if _OPERATORS[rule.op](_signif(value), _signif(threshold)):
            rule_text = rule.describe(grading.unit)
            evidence = f"{grading.term} grade {rule.grade}: {_num(value)} {unit} {rule.op} {against} [{rule_text}]"
            return LabGrade(
                grading.term, term.meddra_code, rule.grade, evidence, m.value_in_rule_unit, grading.unit, term.grades[rule.grade]
            )
    ranges = ", ".join(f"{name} {_num(ref)}" for name, ref in m.refs.items() if ref is not None)
    evidence = f"{grading.term}: {_num(m.value)} {m.unit} reaches no CTCAE v5.0 grade"
    if ranges:
        evidence += f" ({ranges} {m.unit})"
    return LabGrade(grading.term, term.meddra_code, 0, evidence, m.value_in_rule_unit, grading.unit, None)


def grade_lab(
    term_or_analyte: str,
    value: float,
    unit: str,
    lln: float | None = None,
    uln: float | None = None,
    baseline: float | None = None,
    baseline_lln: float | None = None,
    baseline_uln: float | None = None,
    *,
    baseline_unit: str | None = None,
    context: Context | None = None,
    duration_hours: float | None = None,
    new_oxygen: bool | None = None,
) -> LabGrade | None:
    """Grade ``value`` (in ``unit``) against CTCAE v5.0.

    ``term_or_analyte`` is a CTCAE term ("Alanine aminotransferase increased") or an analyte name,
    abbreviation or LOINC code ("ALT", "1742-6"). ``lln``/``uln`` are the value's normal range, in
    ``unit``; ``baseline`` and its range are in ``baseline_unit`` (default ``unit``). The baseline is
    abnormal when it lies outside its own range on the term's side (above ULN for an increase);
    without ``baseline_uln``/``baseline_lln`` the value's range is used. ``context`` ("rest" or
    "exercise") and ``duration_hours`` (how long the value has lasted) serve Hypoxia and Fever;
    ``new_oxygen`` (the reading was on supplemental oxygen the participant did not need at baseline)
    serves Hypoxia.

    Returns the :class:`LabGrade` (grade 0 when no CTCAE grade is reached), or ``None`` when the
    value cannot be graded. Where several rule sets apply (an analyte graded in both directions),
    the highest grade wins, and "cannot grade" wins over grade 0.
    """
    candidates = _candidates(term_or_analyte)
    convertible = [g for g in candidates if units.convert(1.0, unit, g.unit, analyte=g.analytes[0]) is not None]
    if not convertible:
        wanted = " or ".join(sorted({g.unit for g in candidates}))
        raise UnitConversionError(
            f"cannot grade {candidates[0].term!r} from a value in {unit!r}: it cannot be converted to {wanted} "
            "(check the unit, or add its spelling to terminology/data/unit_conversions.yaml)"
        )
    if value is None or math.isnan(value):
        return None
    b_unit = baseline_unit or unit
    if baseline is not None and units.convert(1.0, b_unit, unit, analyte=convertible[0].analytes[0]) is None:
        raise UnitConversionError(f"cannot compare a baseline in {b_unit!r} with a value in {unit!r}: the units do not convert")

    def same_unit(x: float | None) -> float | None:
        if x is None or b_unit == unit:
            return x
        return units.convert_or_raise(x, b_unit, unit, analyte=convertible[0].analytes[0])

    refs: dict[Reference, float | None] = {"ULN": uln, "LLN": lln, "BASE": same_unit(baseline)}
    base, b_uln, b_lln = refs["BASE"], same_unit(baseline_uln), same_unit(baseline_lln)
    b_uln = uln if b_uln is None else b_uln
    b_lln = lln if b_lln is None else b_lln
    results: list[LabGrade | None] = []
    for grading in convertible:
        if grading.direction == "H":
            baseline_abnormal = base is not None and b_uln is not None and base > b_uln
        else:
            baseline_abnormal = base is not None and b_lln is not None and base < b_lln
        converted = units.convert_or_raise(value, unit, grading.unit, analyte=grading.analytes[0])
        measurement = _Measurement(value, units.normalise(unit) or unit, converted, refs, baseline_abnormal)
        results.append(_evaluate(grading, measurement, context, duration_hours, new_oxygen))
    graded = [r for r in results if r is not None]
    if any(r.grade > 0 for r in graded):
        return max(graded, key=lambda r: r.grade)
    if len(graded) < len(results):
        return None
    return graded[0]

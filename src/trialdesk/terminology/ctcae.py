"""CTCAE v5.0: the 837 adverse-event terms, their grades, and a search that finds them as people say them.

The table is NCI's own (``data/ctcae_v5.csv``, provenance in ``data/README.md``); a grade shown
as ``-`` there does not exist for the term and is refused by :meth:`Ctcae.validate_grade`.
Search matches the term's words by prefix as the user types, and a small list of everyday
and clinical phrases (``data/ctcae_synonyms.yaml``: "heart attack" -> Myocardial infarction).
The MedDRA LLT codes belong to ICH/MSSO and are shipped as NCI ships them.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources

from ruamel.yaml import YAML

__all__ = ["VERSION", "Ctcae", "CtcaeTerm", "GradeError", "UnknownTermError", "catalogue"]

VERSION = "CTCAE v5.0"
GRADES = (1, 2, 3, 4, 5)
_NOT_AVAILABLE = "-"


class GradeError(ValueError):
    """A grade the term does not define (a ``-`` in the CTCAE table), or no CTCAE grade at all."""

    def __init__(self, term: str, grade: object, allowed: tuple[int, ...]) -> None:
        allowed_text = ", ".join(str(g) for g in allowed)
        if isinstance(grade, int) and not isinstance(grade, bool) and grade in GRADES:
            message = f'{VERSION} defines no grade {grade} for "{term}"; allowed grades: {allowed_text}'
        else:
            message = f'{grade!r} is not a {VERSION} grade (1 to 5) for "{term}"; allowed grades: {allowed_text}'
        super().__init__(message)
        self.term = term
        self.grade = grade
        self.allowed = allowed


class UnknownTermError(LookupError):
    """A name or MedDRA code that is not a CTCAE v5.0 term."""

    def __init__(self, name_or_code: str, suggestions: list[str]) -> None:
        hint = f"; did you mean: {', '.join(repr(s) for s in suggestions)}?" if suggestions else "; search the catalogue by words"
        super().__init__(f"{name_or_code!r} is not a {VERSION} term or MedDRA code{hint}")
        self.name_or_code = name_or_code
        self.suggestions = suggestions

    def __str__(self) -> str:  # LookupError would quote the message again
        return str(self.args[0])


@dataclass(frozen=True)
class CtcaeTerm:
    meddra_code: str
    soc: str
    term: str
    grades: Mapping[int, str | None] = field(hash=False)
    definition: str | None
    navigational_note: str | None = None
    change: str | None = None

    @property
    def allowed_grades(self) -> tuple[int, ...]:
        return tuple(g for g in GRADES if self.grades.get(g) is not None)

    def grade_definition(self, grade: int) -> str:
        """The text of ``grade`` for this term; :class:`GradeError` when the term does not define it."""
        text = self.grades.get(grade) if isinstance(grade, int) and not isinstance(grade, bool) else None
        if text is None:
            raise GradeError(self.term, grade, self.allowed_grades)
        return text


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.casefold())


def _phrase(text: str) -> str:
    return " ".join(_words(text))


def _prefix_match(query: list[str], words: list[str]) -> bool:
    return bool(query) and all(any(w.startswith(q) for w in words) for q in query)


class Ctcae:
    """The CTCAE v5.0 catalogue: look a term up by name or MedDRA code, search it, validate a grade."""

    def __init__(self, terms: Iterable[CtcaeTerm], synonyms: Mapping[str, str] | None = None) -> None:
        self.terms: tuple[CtcaeTerm, ...] = tuple(terms)
        self._by_name = {_phrase(t.term): t for t in self.terms}
        self._by_code = {t.meddra_code: t for t in self.terms}
        self._synonyms: list[tuple[str, CtcaeTerm]] = []
        for phrase, target in (synonyms or {}).items():
            term = self._by_name.get(_phrase(target))
            if term is None:
                raise ValueError(f"synonym {phrase!r}: {target!r} is not a {VERSION} term; correct ctcae_synonyms.yaml")
            self._synonyms.append((_phrase(phrase), term))
        self._term_words = {t.meddra_code: _words(t.term) for t in self.terms}
        self._definition_words = {t.meddra_code: _words(t.definition or "") for t in self.terms}

    @classmethod
    def load(cls) -> Ctcae:
        """The catalogue shipped with trialdesk (``terminology/data``)."""
        data = resources.files("trialdesk.terminology").joinpath("data")
        rows = csv.DictReader(io.StringIO(data.joinpath("ctcae_v5.csv").read_text(encoding="utf-8-sig")))
        terms = [_term_from_row(row, line) for line, row in enumerate(rows, start=2)]
        synonyms = YAML(typ="safe").load(data.joinpath("ctcae_synonyms.yaml").read_text(encoding="utf-8"))["synonyms"]
        return cls(terms, {str(k): str(v) for k, v in synonyms.items()})

    def __len__(self) -> int:
        return len(self.terms)

    def __iter__(self) -> Iterator[CtcaeTerm]:
        return iter(self.terms)

    def __contains__(self, name_or_code: object) -> bool:
        return isinstance(name_or_code, str) and self.get(name_or_code) is not None

    @property
    def socs(self) -> list[str]:
        """The MedDRA system organ classes, in the table's order."""
        return list(dict.fromkeys(t.soc for t in self.terms))

    def get(self, name_or_code: str) -> CtcaeTerm | None:
        key = name_or_code.strip()
        return self._by_code.get(key) or self._by_name.get(_phrase(key))

    def term(self, name_or_code: str) -> CtcaeTerm:
        """The term with this exact name (any case) or MedDRA LLT code; :class:`UnknownTermError` otherwise."""
        found = self.get(name_or_code)
        if found is None:
            names = [t.term for t in self.terms]
            suggestions = difflib.get_close_matches(name_or_code.strip(), names, n=3, cutoff=0.6)
            suggestions += [t.term for t in self.search(name_or_code, limit=3) if t.term not in suggestions]
            raise UnknownTermError(name_or_code, suggestions[:3])
        return found

    def search(self, text: str, limit: int = 20) -> list[CtcaeTerm]:
        """Terms matching ``text``, best first.

        Ranking: exact name or MedDRA code; exact synonym; name starting with the text; every
        word of the text a whole word of the name, then of a synonym; every word a prefix of a
        word of the name, then of a synonym; every word a prefix of a word of the definition.
        Ties go to the shorter term name.
        """
        query = _words(text)
        if not query:
            return []
        phrase = " ".join(query)
        scores: dict[str, int] = {}

        def hit(term: CtcaeTerm, score: int) -> None:
            scores[term.meddra_code] = max(score, scores.get(term.meddra_code, 0))

        for t in self.terms:
            name = _phrase(t.term)
            words = self._term_words[t.meddra_code]
            if phrase in (name, t.meddra_code):
                hit(t, 100)
            elif name.startswith(phrase):
                hit(t, 80)
            elif all(q in words for q in query):
                hit(t, 65)
            elif _prefix_match(query, words):
                hit(t, 60)
            elif _prefix_match(query, self._definition_words[t.meddra_code]):
                hit(t, 10)
        for synonym, t in self._synonyms:
            if synonym == phrase:
                hit(t, 95)
            elif all(q in synonym.split() for q in query):
                hit(t, 62)
            elif synonym.startswith(phrase) or _prefix_match(query, synonym.split()):
                hit(t, 55)
        ranked = sorted(scores, key=lambda code: (-scores[code], len(self._by_code[code].term), self._by_code[code].term))
        return [self._by_code[code] for code in ranked[:limit]]

    def validate_grade(self, term: str | CtcaeTerm, grade: int) -> str:
        """The grade's definition if ``term`` defines ``grade``; :class:`GradeError` naming the allowed grades if not."""
        resolved = term if isinstance(term, CtcaeTerm) else self.term(term)
        return resolved.grade_definition(grade)


def _term_from_row(row: Mapping[str, str | None], line: int) -> CtcaeTerm:
    def cell(column: str) -> str | None:
        value = (row.get(column) or "").strip()
        return None if value in ("", _NOT_AVAILABLE) else value

    code, soc, name = cell("MedDRA Code"), cell("MedDRA SOC"), cell("CTCAE Term")
    if code is None or soc is None or name is None:
        raise ValueError(f"ctcae_v5.csv line {line}: MedDRA Code, MedDRA SOC and CTCAE Term are required")
    return CtcaeTerm(
        meddra_code=code,
        soc=soc,
        term=name,
        grades={g: cell(f"Grade {g}") for g in GRADES},
        definition=cell("Definition"),
        navigational_note=cell("Navigational Note"),
        change=cell("CTCAE v5.0 Change"),
    )


@functools.cache
def catalogue() -> Ctcae:
    """The shipped CTCAE v5.0 catalogue, loaded once."""
    return Ctcae.load()

"""MedDRA coding of adverse events for SDTM: what the CTCAE table gives, and what a licensed MedDRA
distribution adds.

CTCAE v5.0 terms are MedDRA lowest level terms (LLT): ``terminology/data/ctcae_v5.csv`` gives each
term's LLT code and its system organ class (SOC). The SOC *code* is in the same table: each SOC's
"<SOC> - Other, specify" row is coded with the SOC's own MedDRA code (Blood and lymphatic system
disorders, 10005329; one such row per SOC, 26 SOCs). Without a MedDRA distribution that is all the
export can say: AELLT/AELLTCD, AESOC/AESOCCD, AEBODSYS/AEBDSYCD from the table, and AEDECOD holds
the CTCAE term (not a preferred term); the define and the reviewer's guide say so and the command
prints a warning.

MedDRA itself is licensed, so trialdesk ships none of it. A licensed user gives the ``MedAscii``
folder of their distribution (``--meddra DIR``); two of its ``$``-separated files are read:

- ``llt.asc``: ``llt_code$llt_name$pt_code$llt_whoart_code$llt_harts_code$llt_costart_sym$
  llt_icd9_code$llt_icd9cm_code$llt_icd10_code$llt_currency$llt_jart_code$``
- ``mdhier.asc``: ``pt_code$hlt_code$hlgt_code$soc_code$pt_name$hlt_name$hlgt_name$soc_name$
  soc_abbrev$null_field$pt_soc_code$primary_soc_fg$``

(column layouts checked with the search tool against several independent readers of the MedDRA
ASCII distribution: SQL table definitions, a SAS import and Python/R loaders.) A PT may sit under
several SOCs; the row with ``primary_soc_fg`` ``Y`` is its primary path, which AEBODSYS reports.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

OTHER_SPECIFY = " - Other, specify"


class MeddraError(ValueError):
    pass


@dataclass(frozen=True)
class Coding:
    """The MedDRA hierarchy of one adverse event term (codes as integers, None where unknown)."""

    llt: str
    llt_code: int | None
    decod: str  # the preferred term, or the CTCAE term without MedDRA
    pt_code: int | None
    hlt: str | None
    hlt_code: int | None
    hlgt: str | None
    hlgt_code: int | None
    soc: str
    soc_code: int | None


@functools.cache
def _ctcae() -> tuple[dict[int, tuple[str, str]], dict[str, int]]:
    """LLT code -> (CTCAE term, SOC) and SOC -> SOC code, from the shipped CTCAE v5.0 table."""
    text = resources.files("trialdesk.terminology").joinpath("data/ctcae_v5.csv").read_text(encoding="utf-8-sig")
    terms: dict[int, tuple[str, str]] = {}
    socs: dict[str, int] = {}
    for row in csv.DictReader(io.StringIO(text)):
        code, soc, term = int(row["MedDRA Code"]), row["MedDRA SOC"].strip(), row["CTCAE Term"].strip()
        terms[code] = (term, soc)
        if term.endswith(OTHER_SPECIFY):
            socs[soc] = code
    return terms, socs


def soc_code(soc: str) -> int | None:
    """The MedDRA code of a system organ class, from the CTCAE table's "Other, specify" rows."""
    return _ctcae()[1].get(soc)


def ctcae_coding(term: str, llt_code: int, soc: str) -> Coding:
    """What the CTCAE table gives: the LLT and the SOC; AEDECOD is the CTCAE term itself."""
    known = _ctcae()[0].get(llt_code)
    name = known[0] if known else term
    return Coding(llt=name, llt_code=llt_code, decod=name, pt_code=None, hlt=None, hlt_code=None, hlgt=None, hlgt_code=None,
                  soc=soc, soc_code=soc_code(soc))


@dataclass(frozen=True)
class _Path:
    pt_name: str
    hlt_code: int
    hlt_name: str
    hlgt_code: int
    hlgt_name: str
    soc_code: int
    soc_name: str


class MedDRA:
    """A licensed MedDRA distribution read from its ASCII files."""

    def __init__(self, llts: dict[int, tuple[str, int]], primary: dict[int, _Path], version: str | None = None) -> None:
        self.llts = llts
        self.primary = primary
        self.version = version

    @classmethod
    def load(cls, directory: Path) -> MedDRA:
        llt_file, hier_file = directory / "llt.asc", directory / "mdhier.asc"
        for f in (llt_file, hier_file):
            if not f.is_file():
                raise MeddraError(f"{f}: not found; --meddra names the MedAscii folder of a MedDRA distribution (llt.asc, mdhier.asc)")
        llts: dict[int, tuple[str, int]] = {}
        for line_no, fields in _rows(llt_file, 11):
            try:
                llts[int(fields[0])] = (fields[1], int(fields[2]))
            except ValueError:
                raise MeddraError(f"{llt_file}, line {line_no}: llt_code and pt_code must be numbers; is this llt.asc?") from None
        primary: dict[int, _Path] = {}
        for line_no, h in _rows(hier_file, 12):
            try:
                pt, hlt, hlgt, soc = (int(x) for x in h[:4])
            except ValueError:
                raise MeddraError(f"{hier_file}, line {line_no}: the first four fields must be codes; is this mdhier.asc?") from None
            if h[11].strip().upper() == "Y":
                primary[pt] = _Path(h[4], hlt, h[5], hlgt, h[6], soc, h[7])
        version = None
        release_file = directory / "meddra_release.asc"
        if release_file.is_file():
            version = release_file.read_text(encoding="utf-8", errors="replace").split("$")[0].strip() or None
        return cls(llts, primary, version)

    def coding(self, term: str, llt_code: int) -> Coding | None:
        """The full hierarchy of an LLT code, or None when this distribution does not have it."""
        if llt_code not in self.llts:
            return None
        llt_name, pt = self.llts[llt_code]
        path = self.primary.get(pt)
        if path is None:
            return None
        return Coding(llt=llt_name, llt_code=llt_code, decod=path.pt_name, pt_code=pt, hlt=path.hlt_name, hlt_code=path.hlt_code,
                      hlgt=path.hlgt_name, hlgt_code=path.hlgt_code, soc=path.soc_name, soc_code=path.soc_code)


def _rows(path: Path, at_least: int) -> list[tuple[int, list[str]]]:
    out = []
    for line_no, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        fields = raw.split("$")
        if len(fields) < at_least:
            raise MeddraError(f"{path}, line {line_no}: {len(fields)} '$'-separated fields, expected at least {at_least};"
                              " is this a MedDRA ASCII file?")
        out.append((line_no, fields))
    return out

"""A synthetic OMOP CDM v5.4 population, realistic enough to benchmark the screen and to
give a plausible funnel: demographics, observation periods, tens of background records
per person, connective tissue diseases, ILD and vasculitis at plausible rates with their
treatments, SpO2 readings, labs with reference ranges (some abnormal, some in other
units, a few in units nobody can convert), infections, cancer, cardiac events, HIV and
hepatitis, pregnancy. What it contains is data (``data/synthetic_population.yaml``);
this module only draws from it.

Everything is drawn with NumPy, chunk by chunk (``CHUNK_PERSONS`` people, each chunk
from its own seeded generator, so the same seed gives the same database), and appended
to DuckDB as Arrow tables. The planted people of :mod:`trialdesk.sources.planted` are
always written first, with person ids below ``FIRST_RANDOM_PERSON_ID``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from ruamel.yaml import YAML

from trialdesk.sources.omop_builder import ALL_TABLES, EHR, OmopBuilder, append, write_tables
from trialdesk.sources.planted import FIRST_RANDOM_PERSON_ID, PlantedCase, planted_cases
from trialdesk.sources.planted_aether import aether_cases
from trialdesk.sources.vocabulary import Vocabulary, arrow_schema, data_dir, default_vocabulary

__all__ = ["CHUNK_PERSONS", "FIRST_RANDOM_PERSON_ID", "GenerationSummary", "PlantedCase", "aether_cases", "all_planted_cases",
           "generate_omop", "planted_cases"]

CHUNK_PERSONS = 100_000
EPOCH = dt.date(1970, 1, 1)
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class GenerationSummary:
    path: Path
    persons: int
    planted: int
    rows: dict[str, int]
    seconds: float


@cache
def population_config() -> dict[str, Any]:
    config: dict[str, Any] = YAML(typ="safe").load((data_dir() / "synthetic_population.yaml").read_text(encoding="utf-8"))
    return config


def _days(d: dt.date) -> int:
    return (d - EPOCH).days


def _dates(days: Ints) -> pa.Array:
    return pa.array(days.astype("datetime64[D]"), type=pa.date32())


class _Codes:
    """A weighted list of source codes with their standard and source concept ids."""

    def __init__(self, vocab: Vocabulary, vocabularies: tuple[str, ...], weights: dict[str, Any]):
        self.codes = [str(c) for c in weights]
        raw = [w[0] if isinstance(w, list) else w for w in weights.values()]
        self.p = np.asarray(raw, dtype=float) / float(np.sum(raw))
        self.extra = [w[1] if isinstance(w, list) else 0 for w in weights.values()]
        std, src = [], []
        for code in self.codes:
            concept = next((c for v in vocabularies if (c := vocab.code(v, code)) is not None), None)
            if concept is None:
                raise ValueError(f"synthetic_population.yaml: code {code!r} is not in data/concepts.csv; add it there")
            standard = vocab.standard(concept)
            std.append(standard.concept_id if standard is not None else 0)
            src.append(concept.concept_id)
        self.std = np.asarray(std, dtype=np.int32)
        self.src = np.asarray(src, dtype=np.int32)
        self.strings = pa.array(self.codes, type=pa.string())

    def draw(self, rng: np.random.Generator, n: int) -> Ints:
        return rng.choice(len(self.codes), size=n, p=self.p).astype(np.int64)

    def text(self, idx: Ints) -> pa.Array:
        return pc.take(self.strings, pa.array(idx))


def _uniform_day(rng: np.random.Generator, lo: Ints, hi: Ints) -> Ints:
    """A day uniformly in [lo, hi] (inclusive), element-wise."""
    span = np.maximum(hi - lo + 1, 1)
    out: Ints = lo + np.floor(rng.random(len(lo)) * span).astype(np.int64)
    return out


def _table(name: str, n: int, columns: dict[str, Any]) -> pa.Table:
    schema = arrow_schema(name)
    arrays = []
    for f in schema:
        v = columns.get(f.name)
        if v is None:
            arrays.append(pa.nulls(n, type=f.type))
        elif isinstance(v, pa.Array | pa.ChunkedArray):
            arrays.append(v.cast(f.type))
        else:
            arrays.append(pa.array(v, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


class _Population:
    """Draws one chunk of people and their records."""

    def __init__(self, vocab: Vocabulary, as_of: dt.date):
        self.cfg = population_config()
        self.vocab = vocab
        self.as_of = _days(as_of)
        bg = self.cfg["background"]
        self.conditions = _Codes(vocab, ("ICD10CM",), bg["conditions"])
        self.drugs = _Codes(vocab, ("RxNorm",), bg["drugs"])
        self.procedures = _Codes(vocab, ("SNOMED",), bg["procedures"])
        self.observations = _Codes(vocab, ("SNOMED",), bg["observations"])
        self.diseases = [(d, _Codes(vocab, ("ICD10CM",), d["codes"])) for d in self.cfg["diseases"]]
        self.therapies = [(t, _Codes(vocab, ("RxNorm",), t["ingredients"])) for t in self.cfg["therapies"]]
        self.clinical_drug = {c.parents[0]: c.concept_id for c in vocab.concepts if c.concept_class_id == "Clinical Drug" and c.parents}
        self.labs = self.cfg["labs"]
        self.lab_codes = _Codes(vocab, ("LOINC",), {lab["loinc"]: 1 for lab in self.labs})
        self.spo2 = _Codes(vocab, ("LOINC",), self.cfg["spo2"]["codes"])
        self.hcg = _Codes(vocab, ("LOINC",), self.cfg["hcg"]["codes"])
        self.group_code = {g: _Codes(vocab, ("ICD10CM",), {code: 1}) for g, code in
                           next(d for d in self.cfg["diseases"] if d["id"] == "ild").get("group_codes", {}).items()}

    # -- one chunk -----------------------------------------------------------------------
    def chunk(self, rng: np.random.Generator, first_person_id: int, n: int, ids: dict[str, int]) -> dict[str, pa.Table]:
        """``n`` people from ``first_person_id`` and their records; ``ids`` holds the next record id per table."""
        people = self._people(rng, first_person_id, n)
        self._pid: Ints = people["pid"]
        events: dict[str, list[dict[str, Any]]] = {t: [] for t in ("condition", "drug", "measurement", "observation")}
        self._background(rng, people, events)
        groups = self._diseases(rng, people, events)
        self._therapies(rng, people, groups, events)
        self._spo2(rng, people, groups, events)
        self._labs(rng, people, events)
        return {
            "person": people["table"],
            "observation_period": self._observation_periods(people, ids),
            "death": self._deaths(rng, people),
            "visit_occurrence": self._visits(rng, people, ids),
            "procedure_occurrence": self._procedures(rng, people, ids),
            "condition_occurrence": self._assemble("condition_occurrence", events["condition"], ids),
            "drug_exposure": self._assemble("drug_exposure", events["drug"], ids),
            "measurement": self._assemble("measurement", events["measurement"], ids),
            "observation": self._assemble("observation", events["observation"], ids),
        }

    def _people(self, rng: np.random.Generator, first_id: int, n: int) -> dict[str, Any]:
        d = self.cfg["demographics"]
        pid = np.arange(first_id, first_id + n, dtype=np.int64)
        u = rng.random(n)
        female = u < d["female"]
        unknown_sex = rng.random(n) < d["sex_unknown"]
        bands = np.asarray(d["age_bands"], dtype=float)
        band = rng.choice(len(bands), size=n, p=bands[:, 2] / bands[:, 2].sum())
        age_years = bands[band, 0] + rng.random(n) * (bands[band, 1] - bands[band, 0])
        birth = self.as_of - np.floor(age_years * 365.2425).astype(np.int64)
        birth_dates = birth.astype("datetime64[D]")
        year = birth_dates.astype("datetime64[Y]").astype(np.int64) + 1970
        month = birth_dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
        day = (birth_dates - birth_dates.astype("datetime64[M]")).astype(np.int64) + 1
        month_only = rng.random(n) < d["birth_year_month_only"]
        race_keys = list(d["race"])
        race = rng.choice(len(race_keys), size=n, p=np.asarray(list(d["race"].values())) / sum(d["race"].values()))
        race_ids = np.asarray([{"white": 8527, "black": 8516, "asian": 8515}.get(k, 0) for k in race_keys])[race]
        race_src = pc.take(pa.array([k.capitalize() if k != "unknown" else None for k in race_keys], type=pa.string()), pa.array(race))
        eth_keys = list(d["ethnicity"])
        eth = rng.choice(len(eth_keys), size=n, p=np.asarray(list(d["ethnicity"].values())) / sum(d["ethnicity"].values()))
        eth_ids = np.asarray([{"hispanic": 38003563, "not_hispanic": 38003564}.get(k, 0) for k in eth_keys])[eth]
        eth_src = pc.take(pa.array([{"hispanic": "Hispanic", "not_hispanic": "Not Hispanic"}.get(k) for k in eth_keys],
                                   type=pa.string()), pa.array(eth))
        gender_id = np.where(unknown_sex, 0, np.where(female, 8532, 8507))
        gender_src = pc.take(pa.array(["F", "M", None], type=pa.string()),
                             pa.array(np.where(unknown_sex, 2, np.where(female, 0, 1))))
        birth_ts = pa.array((birth * 86_400_000_000).astype("datetime64[us]"), type=pa.timestamp("us"))
        birth_ts = pc.if_else(pa.array(month_only), pa.nulls(n, pa.timestamp("us")), birth_ts)
        table = _table("person", n, {
            "person_id": pid, "gender_concept_id": gender_id, "year_of_birth": year, "month_of_birth": month,
            "day_of_birth": pa.array(np.where(month_only, 0, day), mask=month_only), "birth_datetime": birth_ts,
            "race_concept_id": race_ids, "ethnicity_concept_id": eth_ids,
            "person_source_value": pc.binary_join_element_wise("MRN", pc.utf8_lpad(pc.cast(pa.array(pid), pa.string()), 8, "0"), ""),
            "gender_source_value": gender_src, "gender_source_concept_id": np.zeros(n, np.int32), "race_source_value": race_src,
            "race_source_concept_id": np.zeros(n, np.int32), "ethnicity_source_value": eth_src,
            "ethnicity_source_concept_id": np.zeros(n, np.int32),
        })
        # observation periods
        o = self.cfg["observation_periods"]
        kind = rng.random(n)
        none = kind < o["none"]
        ended = (kind >= o["none"]) & (kind < o["none"] + o["ended"])
        lo_y, hi_y = o["ended_years"]
        end = np.where(ended, self.as_of - np.floor((lo_y + rng.random(n) * (hi_y - lo_y)) * 365.25).astype(np.int64), self.as_of)
        lo_l, hi_l = o["length_years"]
        length = np.floor((lo_l + rng.random(n) * (hi_l - lo_l)) * 365.25).astype(np.int64)
        start = np.maximum(end - length, birth)
        end = np.maximum(end, start)
        age = (self.as_of - birth) / 365.2425
        obs_years = (end - start) / 365.25
        scale = np.clip(obs_years / 8.0, 0.1, 2.5) * (0.5 + np.clip(age, 0, 95) / 90.0)
        scale = np.where(none, 0.0, scale)
        return {"n": n, "pid": pid, "female": female & ~unknown_sex, "age": age, "birth": birth, "has_obs": ~none,
                "active": ~none & ~ended, "ended": ended, "start": start, "end": end, "scale": scale, "table": table}

    def _observation_periods(self, people: dict[str, Any], ids: dict[str, int]) -> pa.Table:
        idx = np.flatnonzero(people["has_obs"])
        return _table("observation_period", len(idx), {
            "observation_period_id": self._ids(ids, "observation_period", len(idx)), "person_id": people["pid"][idx],
            "observation_period_start_date": _dates(people["start"][idx]), "observation_period_end_date": _dates(people["end"][idx]),
            "period_type_concept_id": np.full(len(idx), EHR, np.int32),
        })

    def _deaths(self, rng: np.random.Generator, people: dict[str, Any]) -> pa.Table:
        idx = np.flatnonzero(people["ended"] & (rng.random(people["n"]) < self.cfg["observation_periods"]["death_among_ended"]))
        return _table("death", len(idx), {"person_id": people["pid"][idx], "death_date": _dates(people["end"][idx]),
                                          "death_type_concept_id": np.full(len(idx), EHR, np.int32)})

    def _per_person(self, rng: np.random.Generator, people: dict[str, Any], mean: float) -> Ints:
        """Person index of each record, with Poisson counts scaled per person."""
        counts = rng.poisson(mean * people["scale"])
        return np.repeat(np.arange(people["n"]), counts)

    def _when(self, rng: np.random.Generator, people: dict[str, Any], who: Ints) -> Ints:
        return _uniform_day(rng, people["start"][who], people["end"][who])

    def _visits(self, rng: np.random.Generator, people: dict[str, Any], ids: dict[str, int]) -> pa.Table:
        who = self._per_person(rng, people, self.cfg["records_per_person"]["visits"])
        n = len(who)
        start = self._when(rng, people, who)
        kind = rng.choice(3, size=n, p=[0.8, 0.1, 0.1])
        stay = np.where(kind == 1, rng.integers(1, 8, n), 0)
        return _table("visit_occurrence", n, {
            "visit_occurrence_id": self._ids(ids, "visit_occurrence", n), "person_id": people["pid"][who],
            "visit_concept_id": np.asarray([9202, 9201, 9203], np.int32)[kind], "visit_start_date": _dates(start),
            "visit_end_date": _dates(np.minimum(start + stay, people["end"][who])), "visit_type_concept_id": np.full(n, EHR, np.int32),
            "visit_source_value": pc.take(pa.array(["OP", "IP", "ER"]), pa.array(kind)), "visit_source_concept_id": np.zeros(n, np.int32),
        })

    def _procedures(self, rng: np.random.Generator, people: dict[str, Any], ids: dict[str, int]) -> pa.Table:
        who = self._per_person(rng, people, self.cfg["records_per_person"]["procedures"])
        n = len(who)
        k = self.procedures.draw(rng, n)
        return _table("procedure_occurrence", n, {
            "procedure_occurrence_id": self._ids(ids, "procedure_occurrence", n), "person_id": people["pid"][who],
            "procedure_concept_id": self.procedures.std[k], "procedure_date": _dates(self._when(rng, people, who)),
            "procedure_type_concept_id": np.full(n, EHR, np.int32), "modifier_concept_id": np.zeros(n, np.int32),
            "procedure_source_value": self.procedures.text(k), "procedure_source_concept_id": self.procedures.src[k],
        })

    # -- events collected by domain, assembled once -------------------------------------------
    def _condition(self, events: dict[str, list[dict[str, Any]]], people: dict[str, Any], who: Ints, day: Ints,
                   codes: _Codes, k: Ints) -> None:
        events["condition"].append({"who": who, "day": day, "std": codes.std[k], "src": codes.src[k], "text": codes.text(k)})

    def _drug(self, events: dict[str, list[dict[str, Any]]], who: Ints, start: Ints, end: Ints, std: Any, src: Any,
              text: pa.Array) -> None:
        events["drug"].append({"who": who, "day": start, "end": end, "std": std, "src": src, "text": text})

    def _background(self, rng: np.random.Generator, people: dict[str, Any], events: dict[str, list[dict[str, Any]]]) -> None:
        per = self.cfg["records_per_person"]
        who = self._per_person(rng, people, per["conditions"])
        k = self.conditions.draw(rng, len(who))
        self._condition(events, people, who, self._when(rng, people, who), self.conditions, k)
        who = self._per_person(rng, people, per["drugs"])
        k = self.drugs.draw(rng, len(who))
        start = self._when(rng, people, who)
        supply = np.asarray(self.drugs.extra, dtype=np.int64)[k]
        self._drug(events, who, start, start + supply - 1, self.drugs.std[k], self.drugs.src[k], self.drugs.text(k))
        who = self._per_person(rng, people, per["observations"])
        k = self.observations.draw(rng, len(who))
        events["observation"].append({"who": who, "day": self._when(rng, people, who), "std": self.observations.std[k],
                                      "src": self.observations.src[k], "text": self.observations.text(k)})

    def _diseases(self, rng: np.random.Generator, people: dict[str, Any], events: dict[str, list[dict[str, Any]]]) -> dict[str, Ints]:
        """Draw each diagnosis; return the first diagnosis day per person of each disease and group (-1: none)."""
        n, age = people["n"], people["age"]
        first: dict[str, Ints] = {}
        for d, codes in self.diseases:
            p = np.full(n, float(d["prevalence"]))
            p = np.where(people["female"], p * d.get("female_factor", 1.0), p)
            p = np.where(age >= 60, p * d.get("age_factor", 1.0), p)
            for disease, q in d.get("given", {}).items():
                p = np.where(first[disease] >= 0, np.maximum(p, q), p)
            ok = people["has_obs"] & (age >= d.get("min_age", 0)) & (age < d.get("max_age", 200))
            if d.get("sex") == "female":
                ok &= people["female"]
            who = np.flatnonzero(ok & (rng.random(n) < p))
            lo = people["start"][who]
            for g in d.get("after", []):
                if g in first:
                    lo = np.maximum(lo, first[g][who])
            day0 = _uniform_day(rng, lo, people["end"][who])
            lo_r, hi_r = d["repeats"]
            reps = rng.integers(lo_r, hi_r + 1, len(who))
            rec = np.repeat(np.arange(len(who)), reps)
            is_first = np.ones(len(rec), bool)
            is_first[1:] = rec[1:] != rec[:-1]
            follow_hi = np.minimum(day0[rec] + 30, people["end"][who][rec]) if d.get("single_episode") else people["end"][who][rec]
            day = np.where(is_first, day0[rec], _uniform_day(rng, day0[rec], follow_hi))
            k = codes.draw(rng, len(rec))
            self._condition(events, people, who[rec], day, codes, k)
            # lung involvement of a CTD: half the ILD records carry the CTD-specific code
            for disease, gcodes in self.group_code.items() if d["id"] == "ild" else ():
                mine = (first[disease][who[rec]] >= 0) & (rng.random(len(rec)) < 0.5)
                sel = np.flatnonzero(mine)
                if len(sel):
                    self._condition(events, people, who[rec][sel], day[sel], gcodes, np.zeros(len(sel), np.int64))
            f = np.full(n, -1, np.int64)
            f[who] = day0
            first[d["id"]] = f
            if "group" in d:
                g = first.get(d["group"], np.full(n, -1, np.int64))
                first[d["group"]] = np.where((g < 0) | ((f >= 0) & (f < g)), np.where(f >= 0, f, g), g)
        first["ild_with_ctd"] = np.where((first["ild"] >= 0) & (first["ctd"] >= 0), first["ild"], -1)
        self._lactation(rng, people, first["pregnancy"], events)
        return first

    def _lactation(self, rng: np.random.Generator, people: dict[str, Any], pregnancy: Ints,
                   events: dict[str, list[dict[str, Any]]]) -> None:
        who = np.flatnonzero((pregnancy >= 0) & (rng.random(people["n"]) < self.cfg["lactation"]["share_of_pregnant"]))
        codes = _Codes(self.vocab, ("ICD10CM",), {"Z39.1": 1})
        day = np.minimum(pregnancy[who] + rng.integers(200, 400, len(who)), people["end"][who])
        k = np.zeros(len(who), np.int64)
        events["observation"].append({"who": who, "day": day, "std": codes.std[k], "src": codes.src[k], "text": codes.text(k)})

    def _therapies(self, rng: np.random.Generator, people: dict[str, Any], first: dict[str, Ints],
                   events: dict[str, list[dict[str, Any]]]) -> None:
        n = people["n"]
        for t, codes in self.therapies:
            since = np.full(n, -1, np.int64)
            for g in t["groups"]:
                since = np.where((since < 0) | ((first[g] >= 0) & (first[g] < since)), first[g], since)
            who = np.flatnonzero((since >= 0) & (rng.random(n) < t["share"]))
            if not len(who):
                continue
            k = codes.draw(rng, len(who))
            start = _uniform_day(rng, since[who], people["end"][who])
            if "infusions" in t:
                offsets = np.asarray(t["infusions"], np.int64)
                cycles = rng.integers(t["cycles"][0], t["cycles"][1] + 1, len(who))
                rec = np.repeat(np.arange(len(who)), cycles * len(offsets))
                pos = np.arange(len(rec)) - np.repeat(np.cumsum(cycles * len(offsets)) - cycles * len(offsets), cycles * len(offsets))
                day = start[rec] + (pos // len(offsets)) * t["cycle_days"] + offsets[pos % len(offsets)]
                day_end = day
            else:
                course = rng.integers(t["course_days"][0], t["course_days"][1] + 1, len(who))
                fills = np.maximum(1, -(-course // t["fill_days"]))
                rec = np.repeat(np.arange(len(who)), fills)
                pos = np.arange(len(rec)) - np.repeat(np.cumsum(fills) - fills, fills)
                day = start[rec] + pos * t["fill_days"]
                day_end = day + t["fill_days"] - 1
            keep = day <= people["end"][who][rec]
            rec, day, day_end = rec[keep], day[keep], day_end[keep]
            kk = k[rec]
            ingredient = codes.std[kk]
            clinical = np.asarray([self.clinical_drug.get(int(c), int(c)) for c in codes.std], np.int32)[kk]
            std = np.where(rng.random(len(rec)) < self.cfg["clinical_drug_share"], clinical, ingredient)
            self._drug(events, who[rec], day, day_end, std, codes.src[kk], codes.text(kk))

    def _spo2(self, rng: np.random.Generator, people: dict[str, Any], first: dict[str, Ints],
              events: dict[str, list[dict[str, Any]]]) -> None:
        s = self.cfg["spo2"]
        n = people["n"]
        ild = np.flatnonzero(first["ild"] >= 0)
        lo_r, hi_r = s["ild_readings"]
        rec = np.repeat(ild, rng.integers(lo_r, hi_r + 1, len(ild)))
        ild_days = _uniform_day(rng, first["ild"][rec], people["end"][rec])
        recent_ild = ild[people["active"][ild] & (rng.random(len(ild)) < s["ild_recent"])]
        recent_all = np.flatnonzero(people["active"] & (rng.random(n) < self.cfg["recent_spo2"]))
        who = np.concatenate([rec, recent_ild, recent_all])
        day = np.concatenate([ild_days, self.as_of - rng.integers(0, 31, len(recent_ild) + len(recent_all))])
        has_ild = first["ild"][who] >= 0
        mean = np.where(has_ild, s["ild"][0], s["normal"][0])
        sd = np.where(has_ild, s["ild"][1], s["normal"][1])
        value = np.clip(np.round(rng.normal(mean, sd)), 70, 100)
        k = self.spo2.draw(rng, len(who))
        events["measurement"].append({"who": who, "day": day, "std": self.spo2.std[k], "src": self.spo2.src[k],
                                      "text": self.spo2.text(k), "value": value, "unit": np.zeros(len(who), np.int64),
                                      "units": ["%"], "low": None, "high": None})

    def _labs(self, rng: np.random.Generator, people: dict[str, Any], events: dict[str, list[dict[str, Any]]]) -> None:
        cfg, labs = self.cfg, self.labs
        n = people["n"]
        panel_who = self._per_person(rng, people, cfg["records_per_person"]["lab_panels"])
        panel_day = self._when(rng, people, panel_who)
        recent = np.flatnonzero(people["active"] & (rng.random(n) < cfg["recent_lab_panel"]))
        panel_who = np.concatenate([panel_who, recent])
        panel_day = np.concatenate([panel_day, self.as_of - rng.integers(0, 31, len(recent))])
        nl = len(labs)
        who = np.repeat(panel_who, nl)
        day = np.repeat(panel_day, nl)
        lab = np.tile(np.arange(nl), len(panel_who))
        keep = rng.random(len(who)) < cfg["lab_inclusion"]
        who, day, lab = who[keep], day[keep], lab[keep]
        m = len(who)
        female = people["female"][who]
        low = np.where(female, np.asarray([x["female"][0] for x in labs])[lab], np.asarray([x["male"][0] for x in labs])[lab])
        high = np.where(female, np.asarray([x["female"][1] for x in labs])[lab], np.asarray([x["male"][1] for x in labs])[lab])
        high_only = np.asarray([bool(x.get("high_only")) for x in labs])[lab]
        value = low + (high - low) * np.clip(rng.normal(0.5, 0.18, m), 0.02, 0.98)
        abnormal = rng.random(m) < cfg["lab_abnormal"]
        above = high_only | (rng.random(m) < 0.5)
        value = np.where(abnormal & above, high * (1.05 + rng.random(m) * 1.5), value)
        value = np.where(abnormal & ~above, low * (0.5 + rng.random(m) * 0.45), value)
        decimals = np.asarray([x["decimals"] for x in labs])[lab]
        # units: primary, alternative (converted value and range), or one nobody can convert
        units = [x["unit"] for x in labs] + [x["alternative"]["unit"] for x in labs if "alternative" in x]
        units += list(cfg["unconvertible_units"])
        unit_index = {u: i for i, u in enumerate(dict.fromkeys(units))}
        unit = np.asarray([unit_index[x["unit"]] for x in labs])[lab]
        for i, x in enumerate(labs):
            alt = x.get("alternative")
            if not alt:
                continue
            sel = (lab == i) & (rng.random(m) < alt["share"])
            value = np.where(sel, value * alt["factor"], value)
            low = np.where(sel, low * alt["factor"], low)
            high = np.where(sel, high * alt["factor"], high)
            decimals = np.where(sel, np.maximum(0, decimals - round(float(np.log10(alt["factor"])))), decimals)
            unit = np.where(sel, unit_index[alt["unit"]], unit)
        scale = 10.0 ** decimals
        value = np.round(value * scale) / scale
        odd = rng.random(m) < cfg["unconvertible_share"]
        odd_units = np.asarray([unit_index[u] for u in cfg["unconvertible_units"]])
        unit = np.where(odd, odd_units[rng.integers(0, len(odd_units), m)], unit)
        no_range = rng.random(m) < cfg["lab_no_range"]
        events["measurement"].append({"who": who, "day": day, "std": self.lab_codes.std[lab], "src": self.lab_codes.src[lab],
                                      "text": self.lab_codes.text(lab), "value": value, "unit": unit, "units": list(unit_index),
                                      "low": np.where(no_range, np.nan, np.round(low * scale) / scale),
                                      "high": np.where(no_range, np.nan, np.round(high * scale) / scale)})
        # a pregnancy test for some women of child-bearing age with a recent panel
        h = cfg["hcg"]
        age = people["age"][recent]
        who = recent[people["female"][recent] & (age >= 18) & (age < 50) & (rng.random(len(recent)) < h["share_recent"])]
        positive = rng.random(len(who)) < h["positive"]
        value = np.where(positive, np.round(50 + rng.random(len(who)) * 5000), np.round(rng.random(len(who)) * 4.5, 1))
        k = self.hcg.draw(rng, len(who))
        events["measurement"].append({"who": who, "day": self.as_of - rng.integers(0, 14, len(who)), "std": self.hcg.std[k],
                                      "src": self.hcg.src[k], "text": self.hcg.text(k), "value": value,
                                      "unit": np.zeros(len(who), np.int64), "units": ["[IU]/L"], "low": None,
                                      "high": np.full(len(who), 5.0)})

    def _assemble(self, table: str, parts: list[dict[str, Any]], ids: dict[str, int]) -> pa.Table:
        who = np.concatenate([p["who"] for p in parts]) if parts else np.zeros(0, np.int64)
        n = len(who)
        pid = self._pid[who]
        day = _dates(np.concatenate([p["day"] for p in parts]) if parts else np.zeros(0, np.int64))
        std = np.concatenate([np.asarray(p["std"], np.int32) for p in parts]) if parts else np.zeros(0, np.int32)
        src = np.concatenate([np.asarray(p["src"], np.int32) for p in parts]) if parts else np.zeros(0, np.int32)
        text = pa.concat_arrays([p["text"] for p in parts]) if parts else pa.array([], pa.string())
        id_col = arrow_schema(table).names[0]
        cols: dict[str, Any] = {id_col: self._ids(ids, table, n), "person_id": pid}
        ehr = np.full(n, EHR, np.int32)
        if table == "condition_occurrence":
            cols.update({"condition_concept_id": std, "condition_start_date": day, "condition_type_concept_id": ehr,
                         "condition_status_concept_id": np.zeros(n, np.int32), "condition_source_value": text,
                         "condition_source_concept_id": src})
        elif table == "drug_exposure":
            end = np.concatenate([p["end"] for p in parts])
            start = np.concatenate([p["day"] for p in parts])
            cols.update({"drug_concept_id": std, "drug_exposure_start_date": day, "drug_exposure_end_date": _dates(end),
                         "drug_type_concept_id": ehr, "days_supply": end - start + 1, "route_concept_id": np.zeros(n, np.int32),
                         "drug_source_value": text, "drug_source_concept_id": src})
        elif table == "observation":
            cols.update({"observation_concept_id": std, "observation_date": day, "observation_type_concept_id": ehr,
                         "observation_source_value": text, "observation_source_concept_id": src})
        else:
            value = np.concatenate([p["value"] for p in parts])
            low = np.concatenate([p["low"] if p["low"] is not None else np.full(len(p["who"]), np.nan) for p in parts])
            high = np.concatenate([p["high"] if p["high"] is not None else np.full(len(p["who"]), np.nan) for p in parts])
            unit_text = pa.concat_arrays([pc.take(pa.array(p["units"], pa.string()), pa.array(p["unit"])) for p in parts])
            unit_ids = pa.concat_arrays([pa.array(np.asarray([self.vocab.unit_concept_id(u) for u in p["units"]], np.int32)[p["unit"]])
                                         for p in parts])
            cols.update({"measurement_concept_id": std, "measurement_date": day, "measurement_type_concept_id": ehr,
                         "value_as_number": value, "unit_concept_id": unit_ids,
                         "range_low": pa.array(low, from_pandas=True), "range_high": pa.array(high, from_pandas=True),
                         "measurement_source_value": text, "measurement_source_concept_id": src, "unit_source_value": unit_text})
        return _table(table, n, cols)

    @staticmethod
    def _ids(ids: dict[str, int], table: str, n: int) -> Ints:
        first = ids.get(table, 1)
        ids[table] = first + n
        return np.arange(first, first + n, dtype=np.int64)


def all_planted_cases(as_of: dt.date) -> list[PlantedCase]:
    """The planted people of every installed trial: the first trial's (ids 1..), then AETHER's after them."""
    first = planted_cases(as_of)
    return first + aether_cases(as_of, len(first) + 1)


def generate_omop(path: str | os.PathLike[str], persons: int, seed: int, as_of: dt.date = dt.date(2024, 6, 1),
                  progress: Progress | None = None, chunk_persons: int = CHUNK_PERSONS) -> GenerationSummary:
    """Write a synthetic OMOP CDM v5.4 DuckDB file: the planted people, then ``persons``
    random people (ids from ``FIRST_RANDOM_PERSON_ID``). The file is written under a
    temporary name and renamed when complete, replacing ``path`` if it exists."""
    if persons < 0:
        raise ValueError(f"persons must be 0 or more, got {persons}")
    t0 = time.perf_counter()
    path = Path(path)
    vocab = default_vocabulary()
    builder = OmopBuilder(vocab, source_name=f"trialdesk synthetic population (seed {seed}, as of {as_of})", release_date=as_of)
    cases = all_planted_cases(as_of)
    for case in cases:
        case.build(builder)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    rows: dict[str, int] = dict.fromkeys(ALL_TABLES, 0)
    try:
        con = duckdb.connect(str(tmp))
        try:
            con.execute("SET preserve_insertion_order = false")
            first = builder.tables()
            write_tables(con, first)
            for name, t in first.items():
                rows[name] += t.num_rows
            ids = builder.next_ids()
            population = _Population(vocab, as_of)
            for k, offset in enumerate(range(0, persons, chunk_persons)):
                n = min(chunk_persons, persons - offset)
                rng = np.random.default_rng([seed, k])
                for name, table in population.chunk(rng, FIRST_RANDOM_PERSON_ID + offset, n, ids).items():
                    append(con, name, table)
                    rows[name] += table.num_rows
                if progress is not None:
                    progress(offset + n, persons)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".wal").unlink(missing_ok=True)
    return GenerationSummary(path, persons, len(cases), rows, time.perf_counter() - t0)

"""A protocol sees the shared value-set libraries it names (``value_set_libraries``) and its own folder's
``value_sets/``, nothing else: the first trial's serology is not AETHER's, and a set used without naming its
library is refused at load, saying where to add it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trialdesk.protocol.loader import ProtocolError, load, protocol_value_sets, resolve


def _aether_copy(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "aether"
    shutil.copytree(resolve("nct02013700").parent, folder)
    path = folder / "protocol.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return folder


def test_each_protocol_sees_its_named_libraries_and_its_own_sets_only() -> None:
    aether = protocol_value_sets("nct02013700")
    assert {"ipf", "antifibrotics", "connective_tissue_disease"} <= set(aether)  # its own, and the ctd_ild library's
    assert "anti_scl70" not in aether and "supplemental_oxygen" not in aether  # the first trial's serology and context
    first = protocol_value_sets("nct03929120")
    assert {"anti_scl70", "supplemental_oxygen", "connective_tissue_disease"} <= set(first) and "ipf" not in first
    assert load("nct03929120").value_set_libraries == ["ctd_ild", "clinical_context", "serology", "answers", "ipaf"]


def test_a_set_used_without_naming_its_library_is_refused_at_load(tmp_path: Path) -> None:
    folder = _aether_copy(tmp_path, "value_set_libraries: [ctd_ild]", "value_set_libraries: []")
    with pytest.raises(ProtocolError) as err:
        load(str(folder))
    message = str(err.value)
    assert "value set 'connective_tissue_disease' is not defined" in message
    assert "a library named in value_set_libraries" in message and "value_sets/" in message


def test_an_unknown_library_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    folder = _aether_copy(tmp_path, "value_set_libraries: [ctd_ild]", "value_set_libraries: [ctd_ild, lung_fibrosis]")
    with pytest.raises(ProtocolError) as err:
        protocol_value_sets(str(folder))
    message = str(err.value)
    assert "protocol.yaml:" in message and "no value-set library 'lung_fibrosis'" in message and "ctd_ild" in message

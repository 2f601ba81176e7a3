"""A protocol read and checked, kept on disk between processes (see :mod:`trialdesk.kept`).

Reading a protocol's YAML with its line numbers and checking its units against UCUM took
two to five seconds of a fresh ``trialdesk patient check``. The key is the bytes of every
file the reading used (the protocol, its folder's value sets and forms, the library's value
sets and forms) with the code's fingerprint; a protocol with problems is never kept.
"""

from __future__ import annotations

import pickle
from importlib import resources
from pathlib import Path

from trialdesk import kept
from trialdesk.protocol.loader import load, locate, protocol_value_sets
from trialdesk.protocol.model import Protocol
from trialdesk.terminology.value_set import ValueSet, library_dir


def _inputs(ref: str | Path) -> list[Path]:
    files = locate(ref)
    paths = {files.protocol.resolve(), *(p.resolve() for p in library_dir().glob("*.yaml")),
             Path(str(resources.files("trialdesk.protocol") / "forms.yaml")).resolve()}
    if files.value_sets is not None:
        paths |= {p.resolve() for p in files.value_sets.glob("*.yaml")}
    if files.forms is not None:
        paths.add(files.forms.resolve())
    return sorted(paths)


def load_kept(ref: str | Path) -> tuple[Protocol, dict[str, ValueSet]]:
    """``load(ref)`` and the value sets it may use (``protocol_value_sets(ref)``: the library's with the protocol
    folder's own over them), kept while
    :func:`trialdesk.kept.keeping` is on; raises :class:`ProtocolError` as ``load`` does."""
    inputs = _inputs(ref)
    path = kept.key_file("protocol", b"".join(str(p).encode() + b"\0" + p.read_bytes() + b"\0" for p in inputs), ".pickle")
    if path is not None and path.is_file():
        try:
            protocol, value_sets = pickle.loads(path.read_bytes())  # our own file, written below by this code
            if isinstance(protocol, Protocol) and isinstance(value_sets, dict):
                return protocol, value_sets
        except Exception:  # a damaged or foreign file is read afresh and written again
            pass
    protocol, value_sets = load(ref), protocol_value_sets(ref)
    if path is not None:
        kept.write(path, pickle.dumps((protocol, value_sets)))
    return protocol, value_sets

"""A screen's SQL kept on disk between processes (see :mod:`trialdesk.kept`).

Compiling a protocol's criteria to SQL (Ibis building and compiling the statements) was
most of a fresh ``trialdesk patient check``: several seconds, the same for every chart of
the same shape. The key is the one the in-process cache uses (the backend, every table's
columns and types, the protocol, the value sets, the screening dates), with the code's
fingerprint: the statements kept are those this code would compile.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from trialdesk import kept

if TYPE_CHECKING:
    from trialdesk.eligibility.compiler import Prepared


def load(key: tuple[Any, ...]) -> Prepared | None:
    from trialdesk.eligibility.compiler import Prepared

    path = kept.key_file("screen-sql", repr(key).encode(), ".json")
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != repr(key):
            return None
        return Prepared(distinct_sql={str(k): str(v) for k, v in data["distinct_sql"].items()},
                        aggregate_sql={str(k): (str(v[0]), str(v[1])) for k, v in data["aggregate_sql"].items()},
                        status_sql=str(data["status_sql"]),
                        unavailable={int(k): str(v) for k, v in data["unavailable"].items()},
                        evidence_sql={k == "restricted": ([(str(a), str(b)) for a, b in v[0]], str(v[1]))
                                      for k, v in data["evidence_sql"].items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def save(key: tuple[Any, ...], prepared: Prepared) -> None:
    path = kept.key_file("screen-sql", repr(key).encode(), ".json")
    if path is None or not prepared.status_sql:
        return
    data = {"key": repr(key), "distinct_sql": prepared.distinct_sql, "aggregate_sql": prepared.aggregate_sql,
            "status_sql": prepared.status_sql, "unavailable": {str(k): v for k, v in prepared.unavailable.items()},
            "evidence_sql": {("restricted" if k else "all"): v for k, v in prepared.evidence_sql.items()}}
    kept.write(path, json.dumps(data).encode())

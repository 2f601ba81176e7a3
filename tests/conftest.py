from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEED = SHARED / "seed" / "000_0df2fa15144651cc.txt"
PROTOCOL_FILE = REPO / "src" / "trialdesk" / "protocols" / "nct03929120.yaml"


@pytest.fixture(scope="session")
def protocol():  # type: ignore[no-untyped-def]
    from trialdesk.protocol.loader import load

    return load("nct03929120")

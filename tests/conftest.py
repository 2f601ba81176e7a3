from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the project's shared reference folder sits beside the repository; a checkout elsewhere
# (a git worktree, a CI clone) names it with TRIALDESK_SHARED
SHARED = Path(os.environ.get("TRIALDESK_SHARED") or REPO.parent / "shared")
SEED = SHARED / "seed" / "000_0df2fa15144651cc.txt"
PROTOCOL_FILE = REPO / "src" / "trialdesk" / "protocols" / "nct03929120.yaml"


@pytest.fixture(scope="session")
def protocol():  # type: ignore[no-untyped-def]
    from trialdesk.protocol.loader import load

    return load("nct03929120")

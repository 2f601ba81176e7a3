from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the project's shared reference folder (the registry record the protocol is checked against)
# sits beside the repository; a checkout elsewhere (a git worktree, a CI clone) names it with
# TRIALDESK_SHARED, or finds it where this workplace keeps it
_CANDIDATES = [Path(p) for p in (os.environ.get("TRIALDESK_SHARED"),) if p] + [REPO.parent / "shared", Path("/work/shared")]
SHARED = next((p for p in _CANDIDATES if (p / "seed").is_dir()), _CANDIDATES[0])
SEED = SHARED / "seed" / "000_0df2fa15144651cc.txt"
PROTOCOL_FILE = REPO / "src" / "trialdesk" / "protocols" / "nct03929120" / "protocol.yaml"
# Two protocols are installed, so a command without --protocol asks which (tests/protocol/test_protocol_folder.py and
# tests/eligibility/test_aether_check.py hold that, with the variable unset); the rest of the suite names the first
# trial the way a site does, through the environment variable.
os.environ.setdefault("TRIALDESK_PROTOCOL", "nct03929120")


@pytest.fixture(scope="session")
def protocol():  # type: ignore[no-untyped-def]
    from trialdesk.protocol.loader import load

    return load("nct03929120")


@pytest.fixture(autouse=True, scope="session")
def _screen_sql_kept_apart(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The command line keeps screens' SQL in a cache folder; the tests' own, not the user's."""
    os.environ["TRIALDESK_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))

from __future__ import annotations

import pytest

from tests.analysis.fixtures import trial_data
from trialdesk.trial.records import TrialData


@pytest.fixture(scope="session")
def data() -> TrialData:
    return trial_data()

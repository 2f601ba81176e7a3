from __future__ import annotations

import pytest

from tests.analysis.fixtures import trial_data
from trialdesk.trial.records import TrialData


@pytest.fixture(scope="session")
def data() -> TrialData:
    return trial_data()


@pytest.fixture(scope="session")
def disclosed(protocol):  # type: ignore[no-untyped-def]
    """The protocol with its results disclosure complete (the real file leaves e-mail, phone and documents to the sponsor)."""
    import datetime as dt

    from trialdesk.protocol.model import ResultsDisclosure

    d = protocol.results_disclosure
    full = ResultsDisclosure.model_validate({
        **d.model_dump(), "point_of_contact": {**d.point_of_contact.model_dump(), "email": "results@example.org", "phone": "904-555-0100"},
        "documents": [{"type": "protocol", "date": dt.date(2019, 6, 3), "filename": "Prot_000.pdf"},
                      {"type": "sap", "date": dt.date(2019, 6, 3), "filename": "SAP_001.pdf"}]})
    return protocol.model_copy(update={"results_disclosure": full})

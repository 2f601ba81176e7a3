"""Settings for benchmarks/api_load.py: the trial desk's own, with its URLs plus one minimal
view (benchmarks/api_load_urls.py)."""

from trialdesk.edc.settings import *  # noqa: F403

ROOT_URLCONF = "api_load_urls"

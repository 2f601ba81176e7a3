"""The trial desk: a thin Django shell around the clinical core that persists, authorises,
audits and shows. Clinical rules are called from :mod:`trialdesk.trial`, never re-written here."""

SETTINGS_MODULE = "trialdesk.edc.settings"


def setup() -> None:
    """Configure Django for use outside ``manage.py`` (the CLI, scripts)."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    import django

    django.setup()

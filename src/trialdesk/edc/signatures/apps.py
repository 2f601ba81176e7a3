from django.apps import AppConfig


class SignaturesConfig(AppConfig):
    name = "trialdesk.edc.signatures"
    label = "signatures"
    verbose_name = "Electronic signatures"

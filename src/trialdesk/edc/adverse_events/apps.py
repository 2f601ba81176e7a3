from django.apps import AppConfig


class AdverseEventsConfig(AppConfig):
    name = "trialdesk.edc.adverse_events"
    label = "adverse_events"
    verbose_name = "Adverse events and safety"

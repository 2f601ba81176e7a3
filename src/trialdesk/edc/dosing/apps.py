from django.apps import AppConfig


class DosingConfig(AppConfig):
    name = "trialdesk.edc.dosing"
    label = "dosing"
    verbose_name = "Infusions"

from django.apps import AppConfig


class LabsConfig(AppConfig):
    name = "trialdesk.edc.labs"
    label = "labs"
    verbose_name = "Laboratory reference ranges"

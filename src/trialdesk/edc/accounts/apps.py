from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "trialdesk.edc.accounts"
    label = "accounts"
    verbose_name = "Accounts"

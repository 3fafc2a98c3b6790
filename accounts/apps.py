from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "账号"

    def ready(self) -> None:
        # Receivers connect once the app registry is ready (Django's place for it, not a cycle).
        from . import signals  # noqa: F401, PLC0415  (connects the audit log of logins)

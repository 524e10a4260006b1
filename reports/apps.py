from django.apps import AppConfig


class ReportsConfig(AppConfig):
    """The pages people read the portal through: dashboard, audit log, notifications."""

    name = "reports"
    default_auto_field = "django.db.models.BigAutoField"

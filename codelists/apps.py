from __future__ import annotations

from django.apps import AppConfig


class CodelistsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "codelists"
    verbose_name = "Code lists and PIN master"

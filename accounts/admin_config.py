"""django.contrib.admin with the portal's admin site (see admin_site.py).

Kept apart from admin_site.py: INSTALLED_APPS imports this module before any model may be imported,
and the site class is named by a string for that reason.
"""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    default_site = "accounts.admin_site.PortalAdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscovers every app's admin module
        from django.contrib import admin
        from django.contrib.auth.models import Group

        # Roles, not Django's groups, decide what a user may do; authenticators are reset on the portal's
        # user page ("Reset two-factor", audited). Editing either here would bypass the portal's rules.
        for model in (Group, *_otp_device_models()):
            if admin.site.is_registered(model):
                admin.site.unregister(model)


def _otp_device_models() -> list[type]:
    from django.apps import apps

    return [
        model
        for model in apps.get_models()
        if model._meta.app_label.startswith("otp_") or model._meta.app_label == "otp"
    ]

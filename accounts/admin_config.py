"""django.contrib.admin with the portal's admin site (see admin_site.py).

Kept apart from admin_site.py: INSTALLED_APPS imports this module before any model may be imported,
and the site class is named by a string for that reason.
"""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    default_site = "accounts.admin_site.PortalAdminSite"

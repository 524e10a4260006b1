"""The API's URLs, included by ckycportal.urls under api/v1/ (by name, so the project layer never imports
the API's code)."""

from __future__ import annotations

from .endpoints import api

app_name = "api"
urlpatterns = api.urls[0]

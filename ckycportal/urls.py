from django.contrib import admin
from django.urls import include, path

from .health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("api.urls")),  # the API for the bank's systems: JSON only, bearer tokens
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("uploads.urls")),  # batches/ and settings/institution/
    path("settings/", include("institutions.urls")),
    path("settings/api-clients/", include("api.client_urls")),
    path("", include("reports.urls")),  # the dashboard (the home page) and reports/
    path("data/", include("bulkdata.urls")),
    path("codes/", include("codelists.urls")),
    path("registry/", include("registry.urls")),
    path("", include("records.urls")),
]

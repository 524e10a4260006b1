from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from .health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("api.urls")),  # the API for the bank's systems: JSON only, bearer tokens
    path("accounts/", include("accounts.urls")),
    # Only the auth views the portal uses: no self-service password reset (an administrator sets passwords
    # on the portal's user page or with `manage.py create_portal_user`), so a mailbox never opens an account.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
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

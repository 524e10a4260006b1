from django.urls import path

from . import views

app_name = "uploads"
urlpatterns = [
    path("batches/", views.batch_list, name="list"),
    path("batches/send-now/", views.send_now, name="send_now"),
    path("batches/progress.json", views.progress, name="progress"),
    path("batches/<int:pk>/", views.batch_detail, name="detail"),
    path("batches/<int:pk>/retry/", views.batch_retry_now, name="retry_now"),
    path("batches/<int:pk>/cancel/", views.batch_cancel, name="cancel"),
    path("batches/<int:pk>/resolve/", views.batch_resolve, name="resolve"),
    # The institution's settings sit beside its branches and users (settings/), but changing them
    # re-dates records and resumes sending: see uploads.institution.
    path("settings/institution/", views.institution_settings, name="institution_settings"),
    # Four eyes on the KwikID connection and the CERSAI codes: a pending change, decided by POST only.
    path(
        "settings/institution/changes/<int:pk>/approve/",
        views.settings_change_approve,
        name="institution_change_approve",
    ),
    path(
        "settings/institution/changes/<int:pk>/reject/",
        views.settings_change_reject,
        name="institution_change_reject",
    ),
    path(
        "settings/institution/changes/<int:pk>/withdraw/",
        views.settings_change_withdraw,
        name="institution_change_withdraw",
    ),
    path("settings/institution/single-admin/", views.settings_single_admin, name="institution_single_admin"),
]

from django.urls import path

from . import views

app_name = "bulkdata"
urlpatterns = [
    path("imports/", views.import_start, name="import_start"),
    path("imports/template.csv", views.template_csv, name="template_csv"),
    path("imports/template.xlsx", views.template_xlsx, name="template_xlsx"),
    path("imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("imports/<int:pk>/progress.json", views.import_progress, name="import_progress"),
    path("imports/<int:pk>/confirm/", views.import_confirm, name="import_confirm"),
    path("imports/<int:pk>/retry/", views.import_retry, name="import_retry"),
    path("imports/<int:pk>/discard/", views.import_discard, name="import_discard"),
    path("imports/<int:pk>/errors/", views.import_errors, name="import_errors"),
    path("exports/records.csv", views.export_records_csv, name="export_records_csv"),
    path("exports/records.xlsx", views.export_records_xlsx, name="export_records_xlsx"),
    # Personal data in clear: POST only, behind the second factor, audited.
    path(
        "exports/records-unmasked.csv", views.export_records_unmasked_csv, name="export_records_unmasked_csv"
    ),
    path(
        "exports/records-unmasked.xlsx",
        views.export_records_unmasked_xlsx,
        name="export_records_unmasked_xlsx",
    ),
    path("exports/batches.csv", views.export_batches_csv, name="export_batches_csv"),
    path("exports/batches.xlsx", views.export_batches_xlsx, name="export_batches_xlsx"),
]

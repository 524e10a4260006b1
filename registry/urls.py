from django.urls import path

from . import views

app_name = "registry"
urlpatterns = [
    path("", views.reconciliation, name="reconciliation"),
    path("export.csv", views.reconciliation_export_csv, name="export_csv"),
    path("export.xlsx", views.reconciliation_export_xlsx, name="export_xlsx"),
    path("check/<slug:key>/", views.check_bucket, name="check_bucket"),
    path("records/<int:pk>/check/", views.check_record, name="check_record"),
]

from django.apps import AppConfig


class BulkdataConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "bulkdata"
    verbose_name = "Bulk import and export"

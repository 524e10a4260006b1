from django.urls import path

from . import views

app_name = "reports"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("reports/audit/", views.audit_log, name="audit_log"),
    path("reports/audit/export.csv", views.audit_export, name="audit_export"),
    path("reports/notifications/", views.notification_list, name="notifications"),
    path("reports/notifications/read-all/", views.notifications_read_all, name="notifications_read_all"),
    path("reports/notifications/<int:pk>/read/", views.notification_read, name="notification_read"),
]

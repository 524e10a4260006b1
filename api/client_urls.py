from django.urls import path

from . import views

app_name = "api_clients"
urlpatterns = [
    path("", views.client_list, name="list"),
    path("new/", views.client_create, name="create"),
    path("<int:pk>/", views.client_detail, name="detail"),
    path("<int:pk>/rotate/", views.client_rotate, name="rotate"),
    path("<int:pk>/revoke/", views.client_revoke, name="revoke"),
    path("<int:pk>/webhook-secret/", views.client_webhook_secret, name="webhook_secret"),
    path("<int:pk>/deliveries/<int:delivery_id>/redeliver/", views.delivery_redeliver, name="redeliver"),
]

from django.urls import path

from . import views

app_name = "uploads"
urlpatterns = [
    path("", views.batch_list, name="list"),
    path("send-now/", views.send_now, name="send_now"),
    path("progress.json", views.progress, name="progress"),
    path("<int:pk>/", views.batch_detail, name="detail"),
    path("<int:pk>/retry/", views.batch_retry_now, name="retry_now"),
    path("<int:pk>/cancel/", views.batch_cancel, name="cancel"),
    path("<int:pk>/resolve/", views.batch_resolve, name="resolve"),
]

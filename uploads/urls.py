from django.urls import path

from . import views

app_name = "uploads"
urlpatterns = [
    path("", views.batch_list, name="list"),
    path("send-now/", views.send_now, name="send_now"),
    path("<int:pk>/", views.batch_detail, name="detail"),
]

from django.urls import path

from . import views

app_name = "codelists"
urlpatterns = [
    path("", views.code_reference, name="reference"),
]

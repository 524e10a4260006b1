from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("two-factor/enrol/", views.otp_enrol, name="otp_enrol"),
    path("two-factor/replace/", views.otp_replace, name="otp_replace"),
    path("two-factor/verify/", views.otp_verify, name="otp_verify"),
]

from django.urls import path

from . import views

app_name = "institutions"
urlpatterns = [
    path("branches/", views.branch_list, name="branch_list"),
    path("branches/new/", views.branch_create, name="branch_create"),
    path("branches/<int:pk>/", views.branch_edit, name="branch_edit"),
    path("branches/<int:pk>/active/", views.branch_set_active, name="branch_set_active"),
    path("users/", views.user_list, name="user_list"),
    path("users/new/", views.user_create, name="user_create"),
    path("users/<int:pk>/", views.user_edit, name="user_edit"),
    path("users/<int:pk>/active/", views.user_set_active, name="user_set_active"),
    path("users/<int:pk>/password/", views.user_password, name="user_password"),
    path("users/<int:pk>/two-factor/", views.user_two_factor, name="user_two_factor"),
]

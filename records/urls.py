from django.urls import path

from . import views

app_name = "records"
urlpatterns = [
    path("records/", views.record_list, name="list"),
    path("records/new/", views.record_create, name="create"),
    path("records/review/", views.review_queue, name="review_queue"),
    path("records/review/decide/", views.review_bulk, name="review_bulk"),
    path("records/<int:pk>/", views.record_detail, name="detail"),
    path("records/<int:pk>/edit/", views.record_edit, name="edit"),
    path("records/<int:pk>/reveal/", views.record_reveal, name="reveal"),
    path("records/<int:pk>/submit/", views.record_submit, name="submit"),
    path("records/<int:pk>/withdraw/", views.record_withdraw, name="withdraw"),
    path("records/<int:pk>/approve/", views.record_approve, name="approve"),
    path("records/<int:pk>/return/", views.record_return, name="return"),
]

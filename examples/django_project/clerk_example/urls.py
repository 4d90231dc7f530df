"""URLs of the example project."""

from __future__ import annotations

from django.urls import path

from clerk_example import views

urlpatterns = [
    path("health/", views.health),
    path("me/", views.me),
    path("sessions/", views.my_sessions),
    path("sessions/<str:session_id>/revoke/", views.revoke_session),
]

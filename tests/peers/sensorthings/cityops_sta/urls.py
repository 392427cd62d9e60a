"""The peer's only routes: the SensorThings v1.1 API under /sensorthings/v1.1/."""

from django.urls import include, path

urlpatterns = [
    path("sensorthings/", include("sensorthings.versions.v1_1.urls")),
]

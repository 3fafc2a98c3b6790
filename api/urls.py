"""The JSON API and the page where people manage their keys for it."""

from django.urls import path

from . import views
from .v1 import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("me/api-keys/", views.api_keys, name="api-keys"),
    path("me/api-keys/<int:pk>/revoke/", views.api_key_revoke, name="api-key-revoke"),
]

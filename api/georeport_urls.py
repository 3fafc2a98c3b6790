"""Open311 GeoReport v2, mounted at ``/open311/v2/`` (see ``api.georeport``)."""

from django.urls import path, register_converter

from . import georeport


class FormatConverter:
    """The response format the specification puts in the path (``requests.json``, ``.xml``).

    Any short word matches, so that ``requests.csv`` gets the interface's own machine-readable
    404 (``georeport.open311_view``) rather than the site's HTML page."""

    regex = "[a-z0-9]{1,10}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(FormatConverter, "open311fmt")

app_name = "open311"
urlpatterns = [
    path("discovery.<open311fmt:fmt>", georeport.discovery, name="discovery"),
    path("services.<open311fmt:fmt>", georeport.service_list, name="services"),
    path(
        "services/<slug:code>.<open311fmt:fmt>",
        georeport.service_definition,
        name="service-definition",
    ),
    # The PyPI ``open311`` client asks for ``service/<code>``.
    path("service/<slug:code>.<open311fmt:fmt>", georeport.service_definition),
    path("requests.<open311fmt:fmt>", georeport.requests, name="requests"),
    path("requests/<str:request_id>.<open311fmt:fmt>", georeport.request_detail, name="request"),
    # The Swagger description names the single request ``request/<id>``.
    path("request/<str:request_id>.<open311fmt:fmt>", georeport.request_detail),
]

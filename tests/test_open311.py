"""Open311 GeoReport v2 (``/open311/v2/``): contract, visibility, filters, filing, refusals, and a
round trip with the PyPI ``open311`` client.

Contract: every JSON answer is validated with ``jsonschema`` against the GeoReport v2 schemas of
``open311/schema-validation``, copied into ``tests/open311_schemas/`` (CI runs from a clean clone;
licence note there). ``requests.json`` refers to ``request.json`` by a relative ``$ref``, so the
files are put in a ``referencing`` Registry under one base URI. The answer to a POST has no schema
file of its own: it is checked against the Swagger file's ``RequestResponse`` definition. Our error
lists and ``discovery`` have no schema upstream; small local schemas below say what we promise.
``jsonschema`` ships no checker for the ``date-time`` and ``uri`` formats without extra packages,
so the two are registered here (RFC 3339; an absolute http(s) URL).

The ``open311`` client (PyPI 1.1, the only release) is Python 2 code. On Python 3.11, exactly:

1. ``import open311`` fails: ``open311/__init__.py`` does ``from open311 import Open311``, which in
   Python 3 is an absolute import of the package itself (ImportError, "partially initialized
   module 'open311'").
2. ``open311/open311.py`` does ``from api import API`` and ``from api.api import urlopen,
   urlencode`` — meant as implicit relative imports of its own ``open311/api/`` package. In
   Python 3 they are absolute: inside this project they find OUR ``api`` app (ImportError: cannot
   import name 'API' from 'api'), elsewhere nothing (ModuleNotFoundError). ``open311/api/__init__.py``
   has the same ``from api import API``.
3. ``open311/api/api.py`` does ``from xml2dict import xml2dict``, and ``xml2dict/__init__.py`` and
   ``xml2dict/xml2dict.py`` do ``from object_dict import object_dict``: same problem
   (ModuleNotFoundError: No module named 'object_dict').
4. ``XML2Dict._parse_node`` calls ``Element.getchildren()``, removed in Python 3.9
   (AttributeError), so every XML answer fails to parse; ``service_list()`` always asks for
   ``services.xml`` and ``service_requests()`` indexes ``['service_requests']['request']``, the XML
   shape — so with Python 3 only ``format="json"`` and the methods that return the decoded JSON
   as is (``post_service_request``, ``get_service_request``, ``service_definition``) are usable.
5. ``post_service_request`` passes the form body to ``urlopen`` as ``str``; Python 3 wants bytes
   (TypeError: POST data should be bytes…). It also sends ``api_key`` and ``jurisdiction_id`` in
   the query string (the server accepts both places).
6. ``service_definition`` asks for ``service/<code>.<fmt>`` (singular); the specification says
   ``services/<code>``; the server answers both.

The shim (``load_open311_client``) changes none of the package's code: it loads the package's own
files under private module names with importlib, maps the names they import (``object_dict``,
``xml2dict``, ``api``, ``api.api``) to those modules only while they execute (``sys.modules`` is
restored afterwards, so our ``api`` app is untouched), and replaces the ``urlopen`` the client
module imported with one that encodes a ``str`` body as UTF-8. Its own ``Open311`` class then does
the round trip against the live server.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import jsonschema
import pytest
from django.core.cache import cache
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from accounts.models import User
from api.tokens import create_token, revoke_token
from supervision import services
from supervision.models import Issue, IssueEvent, Photo, Project

from .factories import image_file

SCHEMAS = Path(__file__).parent / "open311_schemas"
BASE = "https://open311.test/georeport-v2/"
V2 = "/open311/v2"
CATEGORIES = Issue.Category.values


# --- schemas -------------------------------------------------------------------------------------


def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        if path.name == "swagger.json":
            continue
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((BASE + path.name, Resource(contents, specification=DRAFT7)))
    return Registry().with_resources(resources)


REGISTRY = _registry()
SWAGGER = json.loads((SCHEMAS / "swagger.json").read_text(encoding="utf-8"))

FORMATS = jsonschema.FormatChecker()
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@FORMATS.checks("date-time")
def _is_datetime(value) -> bool:
    if not isinstance(value, str):
        return True
    return bool(RFC3339.match(value)) and datetime.fromisoformat(value) is not None


@FORMATS.checks("uri")
def _is_uri(value) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


# Ours: the answer to a POST (Swagger's RequestResponse), error lists, discovery.
LOCAL_SCHEMAS = {
    "post-response": {
        "type": "array",
        "minItems": 1,
        "items": {
            **SWAGGER["definitions"]["RequestResponse"],
            "required": ["service_request_id"],
        },
    },
    "errors": {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": ["code", "description"],
            "properties": {
                "code": {"type": "integer", "minimum": 400, "maximum": 499},
                "description": {"type": "string", "pattern": r"^[\w\[\]-]+: \S"},
            },
        },
    },
    "discovery": {
        "type": "object",
        "required": ["changeset", "contact", "key_service", "endpoints"],
        "properties": {
            "changeset": {"type": "string", "format": "date-time"},
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["specification", "url", "changeset", "type", "formats"],
                    "properties": {
                        "url": {"type": "string", "format": "uri"},
                        "formats": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
}


def validate(data, name: str):
    """``data`` against a schema file (``requests.json``…) or one of ``LOCAL_SCHEMAS``."""
    schema = LOCAL_SCHEMAS.get(name) or {"$ref": BASE + name}
    jsonschema.Draft7Validator(schema, registry=REGISTRY, format_checker=FORMATS).validate(data)
    return data


def test_schemas_catch_a_wrong_answer():
    """The validation has teeth: the $ref to request.json is followed, formats are checked."""
    good = {
        "service_request_id": "1",
        "status": "open",
        "service_code": "quality",
        "requested_datetime": "2023-04-19T14:37:38+08:00",
    }
    validate([good], "requests.json")
    for bad in (
        {**good, "status": "submitted"},
        {**good, "requested_datetime": "yesterday"},
        {**good, "media_url": "/photos/1/"},
        {k: v for k, v in good.items() if k != "service_code"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate([bad], "requests.json")


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Token ids repeat between tests (rolled back), and the per-minute count lives in the cache.
    cache.clear()
    yield
    cache.clear()


def get_json(client, path: str, schema: str | None, /, **params):
    response = client.get(V2 + path, params)
    assert response.status_code == 200, response.content.decode()
    assert response["Content-Type"].startswith("application/json")
    data = response.json()
    if schema:
        validate(data, schema)
    return data


def get_xml(client, path: str, /, **params) -> ET.Element:
    response = client.get(V2 + path, params)
    assert response.status_code == 200, response.content.decode()
    assert response["Content-Type"].startswith("text/xml")
    return ET.fromstring(response.content)


def xml_record(element: ET.Element) -> dict:
    """A flat XML element as a dict of strings ('' for an empty element)."""
    return {child.tag: child.text or "" for child in element}


def as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _xml_errors(response) -> list[dict]:
    root = ET.fromstring(response.content)
    assert root.tag == "errors"
    return [
        {"code": int(e.findtext("code")), "description": e.findtext("description")}
        for e in root.findall("error")
    ]


def assert_error(response, status: int, field: str) -> None:
    """A refusal: the status, and a machine-readable list naming the field."""
    assert response.status_code == status, response.content.decode()
    if response["Content-Type"].startswith("text/xml"):
        errors = _xml_errors(response)
    else:
        errors = response.json()
    validate(errors, "errors")
    assert all(error["code"] == status for error in errors)
    assert any(error["description"].startswith(f"{field}: ") for error in errors), errors


def key_for(user) -> str:
    return create_token(user, "open311 test")[1]


def post(client, fmt: str = "json", query: dict | None = None, **fields):
    """File a request; a photo comes along unless the test gives its own or files an opinion
    (every other issue needs one, as on the page)."""
    if "media" not in fields and fields.get("service_code") != "opinion":
        fields["media"] = image_file()
    url = f"{V2}/requests.{fmt}"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return client.post(url, fields)


def identity_strings(*users: User) -> list[str]:
    out = []
    for user in users:
        out += [user.username, user.display_name, user.mobile or "", user.email or ""]
        supervisor = getattr(user, "supervisor", None)
        if supervisor is not None:
            out.append(supervisor.certificate_number)
    return [s for s in out if s]


# --- discovery and services ----------------------------------------------------------------------


def test_discovery_in_both_formats(client, db):
    data = get_json(client, "/discovery.json", "discovery")
    endpoint = data["endpoints"][0]
    assert endpoint["url"] == "http://testserver/open311/v2"
    assert set(endpoint["formats"]) == {"application/json", "text/xml"}
    root = get_xml(client, "/discovery.xml")
    assert root.tag == "discovery"
    assert root.findtext("changeset") == data["changeset"]
    assert root.findtext("endpoints/endpoint/url") == endpoint["url"]
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == endpoint[
        "formats"
    ]


def test_services_are_our_categories_in_both_formats(client, db):
    data = get_json(client, "/services.json", "services.json")
    assert [s["service_code"] for s in data] == CATEGORIES
    assert all(s["metadata"] is True and s["type"] == "realtime" for s in data)
    # The spec's prose wants a comma-separated string; clients split it, so never null.
    assert all(isinstance(s["keywords"], str) and s["keywords"] for s in data)
    assert dict(Issue.Category.choices)["safety"] == next(
        s["service_name"] for s in data if s["service_code"] == "safety"
    )
    root = get_xml(client, "/services.xml")
    assert root.tag == "services"
    rows = [xml_record(e) for e in root.findall("service")]
    assert rows == [{k: as_text(v) for k, v in s.items()} for s in data]


@pytest.mark.parametrize("code", CATEGORIES)
def test_service_definition_for_every_category(client, db, code):
    data = get_json(client, f"/services/{code}.json", "service-definition.json")
    attributes = {a["code"]: a for a in data["attributes"]}
    assert {"project", "title", "urgency", "building", "unit", "location"} <= set(attributes)
    assert [v["key"] for v in attributes["urgency"]["values"]] == Issue.Urgency.values
    # Without a key there is no list of 2,000 projects: the project is an id.
    assert attributes["project"]["datatype"] == "string"
    if code == "opinion":
        assert attributes["building"]["required"] and attributes["households"]["required"]
        assert attributes["households"]["datatype"] == "number"
        assert "area" in attributes
    else:
        assert not attributes["building"]["required"] and "households" not in attributes
    # The singular path the open311 client asks for, and the XML form, say the same.
    assert get_json(client, f"/service/{code}.json", "service-definition.json") == data
    root = get_xml(client, f"/services/{code}.xml")
    assert root.tag == "service_definition" and root.findtext("service_code") == code
    xml_attributes = root.findall("attributes/attribute")
    assert [a.findtext("code") for a in xml_attributes] == list(attributes)
    urgency = next(a for a in xml_attributes if a.findtext("code") == "urgency")
    assert [v.findtext("key") for v in urgency.findall("values/value")] == Issue.Urgency.values
    assert urgency.findtext("required") == "false"


def test_service_definition_lists_a_supervisors_own_projects(client, world):
    world.alice.supervisor.projects.add(world.other_project)
    data = get_json(
        client, "/services/quality.json", "service-definition.json", api_key=key_for(world.alice)
    )
    project = next(a for a in data["attributes"] if a["code"] == "project")
    assert project["datatype"] == "singlevaluelist" and project["required"] is True
    assert {v["key"] for v in project["values"]} == {
        str(world.project.pk),
        str(world.other_project.pk),
    }


def test_unknown_service_code_is_404_naming_it(client, db):
    assert_error(client.get(f"{V2}/services/parking.json"), 404, "service_code")
    assert_error(client.get(f"{V2}/services/parking.xml"), 404, "service_code")


# --- reading requests ----------------------------------------------------------------------------


def _public(issue: Issue) -> Issue:
    Issue.objects.filter(pk=issue.pk).update(is_public=True)
    issue.refresh_from_db()
    return issue


def test_anonymous_reads_public_issues_only(client, world):
    hidden = world.submit(title="不公开的问题")
    shown = _public(world.submit(title="公开的问题", description="公开问题的详细描述"))
    data = get_json(client, "/requests.json", "requests.json")
    assert [r["service_request_id"] for r in data] == [str(shown.pk)]
    # The public reads the title, as on the public project page; not the reporter's full text.
    assert data[0]["description"] == "公开的问题"
    assert_error(client.get(f"{V2}/requests/{hidden.pk}.json"), 404, "service_request_id")
    assert_error(client.get(f"{V2}/requests/{hidden.pk}.xml"), 404, "service_request_id")
    one = get_json(client, f"/requests/{shown.pk}.json", "requests.json")
    assert one == data
    validate(one[0], "request.json")
    # By id, too: a hidden id is simply not there.
    data = get_json(
        client, "/requests.json", "requests.json", service_request_id=f"{hidden.pk},{shown.pk}"
    )
    assert [r["service_request_id"] for r in data] == [str(shown.pk)]


def test_a_key_reads_what_its_user_may_see(client, world):
    """A supervisor's client reads back its own (not yet public) request; a department's key
    sees its own department's issues; neither ever sees who reported."""
    mine = world.submit(description="三楼楼道灯不亮")
    theirs = world.submit(reporter=world.bob, project=world.other_project)
    data = get_json(client, "/requests.json", "requests.json", api_key=key_for(world.alice))
    assert {r["service_request_id"] for r in data} == {str(mine.pk), str(theirs.pk)}
    row = next(r for r in data if r["service_request_id"] == str(mine.pk))
    assert row["description"] == "三楼楼道灯不亮"
    staff = get_json(client, "/requests.json", "requests.json", api_key=key_for(world.other_staff))
    assert [r["service_request_id"] for r in staff] == [str(theirs.pk)]
    detail = get_json(
        client, f"/requests/{mine.pk}.json", "requests.json", api_key=key_for(world.handler)
    )
    assert detail[0]["agency_responsible"] == world.office.name


def test_a_bad_key_on_a_read_is_refused_not_ignored(client, world):
    assert_error(client.get(f"{V2}/requests.json", {"api_key": "qzjd_nope"}), 401, "api_key")


def test_reporter_identity_never_appears(client, world):
    world.alice.display_name = "王丽华"
    world.alice.mobile = "13812345678"
    world.alice.email = "lihua@example.com"
    world.alice.save()
    issue = _public(world.submit(photos=[image_file()]))
    services.comment_on_issue(issue, actor=world.handler, text="已联系施工单位")
    key = key_for(world.bob)
    bodies = []
    for path in (
        "/requests.json",
        "/requests.xml",
        f"/requests/{issue.pk}.json",
        f"/requests/{issue.pk}.xml",
    ):
        for params in ({}, {"api_key": key}):
            response = client.get(V2 + path, params)
            assert response.status_code == 200
            bodies.append(response.content.decode())
    created = post(
        client,
        api_key=key_for(world.alice),
        service_code="quality",
        description="外墙空鼓",
    )
    assert created.status_code == 201
    bodies.append(created.content.decode())
    assert str(issue.pk) in bodies[0]
    for body in bodies:
        for secret in identity_strings(world.alice) + ["reporter", "account_id"]:
            assert secret not in body


@pytest.mark.parametrize(
    "status,open311_status",
    [
        (Issue.Status.SUBMITTED, "open"),
        (Issue.Status.ACCEPTED, "open"),
        (Issue.Status.IN_PROGRESS, "open"),
        (Issue.Status.RECTIFIED, "open"),
        (Issue.Status.ANSWERED, "open"),
        (Issue.Status.CLOSED, "closed"),
        (Issue.Status.REJECTED, "closed"),
        (Issue.Status.WITHDRAWN, "closed"),
    ],
)
def test_our_states_map_to_open_and_closed_with_notes(client, world, status, open311_status):
    issue = _public(world.issue_in(status))
    (row,) = get_json(client, f"/requests/{issue.pk}.json", "requests.json")
    assert row["status"] == open311_status
    assert row["status_notes"].startswith(str(Issue.Status(status).label))
    assert row["service_notice"] == f"编号 {issue.reference}"
    assert row["service_code"] == "quality" and row["service_name"] == "质量"
    assert row["agency_responsible"] == world.office.name
    assert row["address"].startswith(world.project.neighbourhood.name)
    if status in (Issue.Status.ACCEPTED, Issue.Status.IN_PROGRESS):
        assert row["expected_datetime"] is not None
        assert "整改期限" in row["status_notes"]
    if status == Issue.Status.CLOSED:
        assert "满意" in row["status_notes"]
        assert row["updated_datetime"] == timezone.localtime(issue.closed_at).isoformat(
            timespec="seconds"
        )
    (xml_row,) = get_xml(client, "/requests.xml", service_request_id=str(issue.pk)).findall(
        "request"
    )
    assert xml_record(xml_row) == {k: as_text(v) for k, v in row.items()}


def test_media_url_is_a_public_photo_address_only_for_public_issues(
    client, world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # photo files are written on commit
        issue = world.submit(photos=[image_file()])
    key = key_for(world.alice)
    (row,) = get_json(client, f"/requests/{issue.pk}.json", "requests.json", api_key=key)
    assert row["media_url"] is None  # the photo view would refuse an anonymous client
    _public(issue)
    (row,) = get_json(client, f"/requests/{issue.pk}.json", "requests.json")
    photo = Photo.objects.get(issue=issue)
    assert row["media_url"] == f"http://testserver/photos/{photo.pk}/"
    client.logout()
    response = client.get(urlsplit(row["media_url"]).path)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"


def test_filters(client, world):
    quality = _public(world.submit(category="quality"))
    safety = _public(world.issue_in(Issue.Status.CLOSED, category="safety"))
    old = _public(world.submit(category="quality", title="旧问题"))
    long_ago = timezone.now() - timedelta(days=120)
    Issue.objects.filter(pk=old.pk).update(created_at=long_ago)

    def ids(**params) -> list[str]:
        return [
            r["service_request_id"]
            for r in get_json(client, "/requests.json", "requests.json", **params)
        ]

    # Default window: the last 90 days, newest first.
    assert ids() == [str(safety.pk), str(quality.pk)]
    assert ids(service_code="quality") == [str(quality.pk)]
    assert ids(service_code="quality,safety") == [str(safety.pk), str(quality.pk)]
    assert ids(status="closed") == [str(safety.pk)]
    assert ids(status="open") == [str(quality.pk)]
    assert ids(status="open,closed") == [str(safety.pk), str(quality.pk)]
    day = timezone.localdate(long_ago)
    assert ids(start_date=(day - timedelta(days=1)).isoformat()) == [
        str(safety.pk),
        str(quality.pk),
        str(old.pk),
    ]
    assert ids(start_date=day.isoformat(), end_date=day.isoformat()) == [str(old.pk)]
    end = timezone.localtime(long_ago) + timedelta(days=1)
    assert ids(end_date=end.isoformat()) == [str(old.pk)]
    assert ids(start_date=timezone.localtime(long_ago).isoformat(), end_date=end.isoformat()) == [
        str(old.pk)
    ]
    # Ids override every other argument (the specification), the date window included.
    assert ids(service_request_id=f"{old.pk},{quality.pk}", status="closed") == [
        str(quality.pk),
        str(old.pk),
    ]
    # jurisdiction_id is accepted and ignored (one jurisdiction).
    assert ids(jurisdiction_id="ruian.gov.cn", service_code="safety") == [str(safety.pk)]


@pytest.mark.parametrize(
    "params,field",
    [
        ({"start_date": "last tuesday"}, "start_date"),
        ({"end_date": "2023-13-45"}, "end_date"),
        ({"start_date": "1900-01-01"}, "start_date"),
        ({"start_date": "2023-05-01", "end_date": "2023-04-01"}, "end_date"),
        ({"status": "pending"}, "status"),
        ({"status": "open,"}, None),  # a trailing comma is harmless
        ({"service_code": "parking"}, "service_code"),
        ({"service_request_id": "abc"}, "service_request_id"),
        ({"service_request_id": "1,-2"}, "service_request_id"),
        ({"page": "2"}, "page"),
        ({"attribute[urgency]": "urgent"}, "attribute[urgency]"),
    ],
)
def test_bad_filters_are_400_naming_the_field(client, db, params, field):
    response = client.get(f"{V2}/requests.json", params)
    if field is None:
        assert response.status_code == 200
        return
    assert_error(response, 400, field)
    assert_error(client.get(f"{V2}/requests.xml", params), 400, field)


def test_a_repeated_filter_is_refused(client, db):
    response = client.get(f"{V2}/requests.json?status=open&status=closed")
    assert_error(response, 400, "status")


def test_reading_many_requests_takes_a_few_queries(client, world, django_assert_max_num_queries):
    for n in range(15):
        issue = world.submit(title=f"问题 {n}", photos=[image_file()])
        _public(issue)
    key = key_for(world.alice)
    with django_assert_max_num_queries(4):
        data = get_json(client, "/requests.json", "requests.json")
    assert len(data) == 15 and all(r["media_url"] for r in data)
    with django_assert_max_num_queries(7):  # + the key, its last use, and the rate count
        get_json(client, "/requests.json", "requests.json", api_key=key)


def test_results_are_bounded(client, world, monkeypatch):
    from api import georeport

    monkeypatch.setattr(georeport, "MAX_RESULTS", 3)
    for n in range(5):
        _public(world.submit(title=f"问题 {n}"))
    assert len(get_json(client, "/requests.json", "requests.json")) == 3


# --- filing --------------------------------------------------------------------------------------


def test_a_supervisor_files_a_request(client, world):
    before = Issue.objects.count()
    response = post(
        client,
        query={"api_key": key_for(world.alice), "jurisdiction_id": "ruian"},
        service_code="safety",
        description="脚手架没有安全网\n靠近小区主路",
        lat="27.7801234",
        long="120.6543219",
        address_string="兴业大厦 5 幢北侧",
        media_url="https://photos.example.com/p/1.jpg",
        **{
            "attribute[urgency]": "urgent",
            "attribute[building]": "5 幢",
            "attribute[location]": "北面外墙",
        },
    )
    assert response.status_code == 201, response.content.decode()
    (answer,) = validate(response.json(), "post-response")
    assert Issue.objects.count() == before + 1
    issue = Issue.objects.get(pk=int(answer["service_request_id"]))
    assert issue.reference in answer["service_notice"]
    assert issue.reporter == world.alice and issue.project == world.project
    assert issue.category == "safety" and issue.urgency == "urgent"
    assert issue.title == "脚手架没有安全网"
    assert issue.building == "5 幢" and issue.location == "北面外墙"
    assert str(issue.latitude) == "27.780123" and str(issue.longitude) == "120.654322"
    # Recorded as text, never fetched.
    assert "兴业大厦 5 幢北侧" in issue.description
    assert "https://photos.example.com/p/1.jpg" in issue.description
    assert issue.department == world.office
    event = IssueEvent.objects.get(issue=issue)
    assert event.kind == IssueEvent.Kind.SUBMITTED and event.actor == world.alice
    # XML answer, and a photo through the one photo intake.
    response = client.post(
        f"{V2}/requests.xml",
        {
            "api_key": key_for(world.alice),
            "service_code": "quality",
            "description": "墙面开裂",
            "media": image_file(),
        },
    )
    assert response.status_code == 201, response.content.decode()
    root = ET.fromstring(response.content)
    assert root.tag == "service_requests"
    new_id = root.findtext("request/service_request_id")
    assert Photo.objects.filter(issue_id=int(new_id)).count() == 1


def test_an_opinion_needs_building_and_households(client, world):
    key = key_for(world.alice)
    response = post(client, api_key=key, service_code="opinion", description="希望加装电梯")
    assert_error(response, 400, "attribute[building]")
    assert_error(response, 400, "attribute[households]")
    response = post(
        client,
        api_key=key,
        service_code="opinion",
        description="希望加装电梯",
        **{
            "attribute[building]": "3 幢",
            "attribute[households]": "12",
            "attribute[area]": "building",
        },
    )
    assert response.status_code == 201
    issue = Issue.objects.get(pk=int(response.json()[0]["service_request_id"]))
    assert (issue.households, issue.area, issue.building) == (12, "building", "3 幢")


def test_a_supervisor_of_several_projects_names_one(client, world):
    world.alice.supervisor.projects.add(world.other_project)
    key = key_for(world.alice)
    response = post(client, api_key=key, service_code="quality", description="墙面开裂")
    assert_error(response, 400, "attribute[project]")
    assert str(world.other_project.pk) in response.json()[0]["description"]
    response = post(
        client,
        api_key=key,
        service_code="quality",
        description="墙面开裂",
        **{"attribute[project]": str(world.other_project.pk)},
    )
    assert response.status_code == 201
    assert Issue.objects.get().project == world.other_project


def _bad_posts(world) -> list:
    """(name, how to make the request, status, field)."""
    good = {"service_code": "quality", "description": "墙面开裂"}

    def key(user=None):
        return key_for(user or world.alice)

    def dismissed():
        raw = key()
        supervisor = world.alice.supervisor
        supervisor.is_active = False
        supervisor.dismissed_on = timezone.localdate()
        supervisor.save()
        return raw

    def revoked():
        token, raw = create_token(world.alice, "x")
        revoke_token(token)
        return raw

    return [
        ("no key", lambda: good, 401, "api_key"),
        ("unknown key", lambda: {**good, "api_key": "qzjd_" + "x" * 43}, 401, "api_key"),
        ("revoked key", lambda: {**good, "api_key": revoked()}, 401, "api_key"),
        ("dismissed supervisor", lambda: {**good, "api_key": dismissed()}, 401, "api_key"),
        ("staff key", lambda: {**good, "api_key": key(world.handler)}, 403, "api_key"),
        ("bureau key", lambda: {**good, "api_key": key(world.bureau)}, 403, "api_key"),
        ("no service_code", lambda: {"description": "x", "api_key": key()}, 400, "service_code"),
        (
            "unknown service_code",
            lambda: {**good, "service_code": "parking", "api_key": key()},
            400,
            "service_code",
        ),
        (
            "no description",
            lambda: {**good, "description": " ", "api_key": key()},
            400,
            "description",
        ),
        (
            "description too long",
            lambda: {**good, "description": "长" * 2001, "api_key": key()},
            400,
            "description",
        ),
        (
            "lat out of range",
            lambda: {**good, "lat": "91", "long": "120", "api_key": key()},
            400,
            "lat",
        ),
        (
            "lat not a number",
            lambda: {**good, "lat": "北纬", "long": "120", "api_key": key()},
            400,
            "lat",
        ),
        ("lat NaN", lambda: {**good, "lat": "NaN", "long": "120", "api_key": key()}, 400, "lat"),
        (
            "long out of range",
            lambda: {**good, "lat": "27", "long": "-181", "api_key": key()},
            400,
            "long",
        ),
        ("lat without long", lambda: {**good, "lat": "27.7", "api_key": key()}, 400, "long"),
        ("unknown field", lambda: {**good, "colour": "red", "api_key": key()}, 400, "colour"),
        (
            "unknown attribute",
            lambda: {**good, "attribute[colour]": "red", "api_key": key()},
            400,
            "attribute[colour]",
        ),
        (
            "opinion attribute on quality",
            lambda: {**good, "attribute[households]": "3", "api_key": key()},
            400,
            "attribute[households]",
        ),
        (
            "bad urgency",
            lambda: {**good, "attribute[urgency]": "very", "api_key": key()},
            400,
            "attribute[urgency]",
        ),
        (
            "title too long",
            lambda: {**good, "attribute[title]": "长" * 101, "api_key": key()},
            400,
            "attribute[title]",
        ),
        (
            "project not an id",
            lambda: {**good, "attribute[project]": "兴业", "api_key": key()},
            400,
            "attribute[project]",
        ),
        (
            "no such project",
            lambda: {**good, "attribute[project]": "987654", "api_key": key()},
            400,
            "attribute[project]",
        ),
        (
            "a project not watched",
            lambda: {**good, "attribute[project]": str(world.other_project.pk), "api_key": key()},
            403,
            "attribute[project]",
        ),
        (
            "media_url not http",
            lambda: {**good, "media_url": "file:///etc/passwd", "api_key": key()},
            400,
            "media_url",
        ),
        (
            "media_url not a url",
            lambda: {**good, "media_url": "javascript:alert(1)", "api_key": key()},
            400,
            "media_url",
        ),
        (
            "address too long",
            lambda: {**good, "address_string": "路" * 201, "api_key": key()},
            400,
            "address_string",
        ),
        (
            "media not an image",
            lambda: {**good, "media": _text_file(), "api_key": key()},
            400,
            "media",
        ),
        (
            "another file field",
            lambda: {**good, "photo": image_file(), "api_key": key()},
            400,
            "photo",
        ),
    ]


def _text_file():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("x.jpg", b"not a photo", content_type="image/jpeg")


def test_every_bad_post_is_a_4xx_naming_the_field_and_creates_nothing(client, world):
    for name, make, status, field in _bad_posts(world):
        cache.clear()
        supervisor = world.alice.supervisor
        supervisor.is_active, supervisor.dismissed_on = True, None
        supervisor.save()
        data = make()
        for fmt in ("json", "xml"):
            response = client.post(f"{V2}/requests.{fmt}", data)
            try:
                assert_error(response, status, field)
            except AssertionError as error:
                raise AssertionError(f"{name} ({fmt}): {error}") from None
            for upload in data.values():
                if hasattr(upload, "seek"):
                    upload.seek(0)
        assert not Issue.objects.exists(), name


def test_malformed_bodies_and_methods(client, world):
    key = key_for(world.alice)
    url = f"{V2}/requests.json?api_key={key}"
    response = client.post(url, '{"service_code": "quality"}', content_type="application/json")
    assert_error(response, 415, "Content-Type")
    response = client.post(url, b"--x\r\nbroken", content_type="multipart/form-data; boundary=x")
    assert response.status_code == 400
    # A multipart body without a boundary: RejectNulMiddleware reads the form before any view,
    # so Django's own 400 answers (not our error list). Still a 4xx, never a 500.
    response = client.post(url, b"garbage", content_type="multipart/form-data")
    assert response.status_code == 400
    response = client.put(url, "service_code=quality")
    assert_error(response, 405, "method")
    assert "POST" in response["Allow"]
    assert_error(client.post(f"{V2}/services.json"), 405, "method")
    assert_error(client.get(f"{V2}/requests.csv"), 404, "format")
    assert_error(client.get(f"{V2}/services/quality.html"), 404, "format")
    assert_error(client.get(f"{V2}/requests/abc.json"), 404, "service_request_id")
    assert_error(client.get(f"{V2}/requests/99999999999999.xml"), 404, "service_request_id")
    response = client.post(
        f"{V2}/requests.json",
        {"api_key": key, "service_code": "quality", "description": "a", "lat": ["1", "2"]},
    )
    assert_error(response, 400, "lat")
    assert not Issue.objects.exists()


def test_posting_is_rate_limited_per_key(client, world, settings):
    settings.API_RATE_LIMIT = 2
    key = key_for(world.alice)
    for _n in range(2):
        response = post(client, api_key=key, service_code="quality", description="墙面开裂")
        assert response.status_code == 201
    response = post(client, api_key=key, service_code="quality", description="墙面开裂")
    assert_error(response, 429, "api_key")
    assert response["Retry-After"] == "60"
    assert Issue.objects.count() == 2
    # Another key is counted apart.
    response = post(client, api_key=key_for(world.alice), service_code="quality", description="x")
    assert response.status_code == 201


def test_a_post_needs_no_csrf_token_and_ignores_the_session(world):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(world.alice)
    # A logged-in browser without a key files nothing: the interface authenticates by key only.
    response = post(client, service_code="quality", description="墙面开裂")
    assert_error(response, 401, "api_key")
    response = post(client, api_key=key_for(world.alice), service_code="quality", description="x")
    assert response.status_code == 201


# --- with the demo data: the issue page, the feed, and the open311 client ------------------------


def _jiandu06() -> tuple[User, Project]:
    user = User.objects.select_related("supervisor").get(username="jiandu06")
    assert services.is_serving_supervisor(user)
    return user, user.supervisor.projects.order_by("pk").first()


def test_a_filed_request_shows_on_the_issue_page_and_in_the_feed(client, demo):
    user, project = _jiandu06()
    response = post(
        client,
        api_key=key_for(user),
        service_code="civilised",
        description="夜间施工噪音扰民\n晚上十点后仍在切割",
        **{"attribute[project]": str(project.pk), "attribute[building]": "2 幢"},
    )
    assert response.status_code == 201, response.content.decode()
    (answer,) = validate(response.json(), "post-response")
    issue = Issue.objects.get(pk=int(answer["service_request_id"]))
    client.force_login(user)
    page = client.get(f"/issues/{issue.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "夜间施工噪音扰民" in html and 'data-status="submitted"' in html
    feed = client.get("/feed/").content.decode()
    assert issue.reference in feed
    # The anonymous Open311 reader does not see it until the bureau makes it public.
    client.logout()
    assert_error(client.get(f"{V2}/requests/{issue.pk}.json"), 404, "service_request_id")
    # The demo's public issues are readable, and every one validates.
    public = get_json(client, "/requests.json", "requests.json", start_date="2000-01-01")
    assert public and all(
        Issue.objects.get(pk=int(r["service_request_id"])).is_public for r in public
    )
    assert "jiandu" not in json.dumps(public, ensure_ascii=False)


# The open311 package, loaded through the shim the module docstring describes.

PACKAGE = Path(importlib.util.find_spec("open311").submodule_search_locations[0])


def _load(name: str, path: Path, *, package: bool = False):
    spec = importlib.util.spec_from_file_location(
        name,
        path / "__init__.py" if package else path,
        submodule_search_locations=[str(path)] if package else None,
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_open311_client():
    """The package's own ``Open311`` class, runnable on Python 3 (see the module docstring)."""
    with mock.patch.dict(sys.modules):
        object_dict = _load("_open311_object_dict", PACKAGE / "api/xml2dict/object_dict.py")
        sys.modules["object_dict"] = object_dict
        xml2dict = _load("_open311_xml2dict", PACKAGE / "api/xml2dict", package=True)
        sys.modules["xml2dict"] = xml2dict
        api_module = _load("_open311_api", PACKAGE / "api/api.py")
        sys.modules["api"] = api_module  # its ``from api import API``: the module has API
        sys.modules["api.api"] = api_module
        client = _load("_open311_client", PACKAGE / "open311.py")
    real_urlopen = client.urlopen

    def urlopen(url, data=None, *args, **kwargs):
        if isinstance(data, str):
            data = data.encode("utf-8")
        return real_urlopen(url, data, *args, **kwargs)

    client.urlopen = urlopen
    return client.Open311


def test_the_open311_package_does_not_import_on_python_3():
    """What the shim is for (when a release that imports on Python 3 appears, drop the shim)."""
    import api as our_api

    with pytest.raises(ImportError, match="partially initialized module 'open311'"):
        importlib.import_module("open311")
    with pytest.raises(ImportError, match="cannot import name 'API' from 'api'"):
        _load("_open311_unshimmed", PACKAGE / "open311.py")
    sys.modules.pop("_open311_unshimmed", None)
    assert sys.modules["api"] is our_api
    element = ET.fromstring("<a><b/></a>")
    assert not hasattr(element, "getchildren")  # what its xml2dict calls


def test_round_trip_with_the_open311_client(demo, live_server):
    """``post_service_request`` files through the real HTTP interface; ``get_service_request``
    reads it back with the same key (it is not public yet); ``service_definition`` uses the
    singular path."""
    import api as our_api

    Open311 = load_open311_client()
    assert sys.modules["api"] is our_api  # the shim left our app alone
    user, project = _jiandu06()
    key = key_for(user)
    # No trailing slash: post_service_request joins ``endpoint + "/requests"`` as is.
    client = Open311(endpoint=f"{live_server.url}{V2}", format="json", api_key=key)

    definition = client.service_definition("safety")
    validate(definition, "service-definition.json")

    # The package posts form-encoded fields only, no file: a residents' opinion is the kind of
    # issue that needs no photo.
    answer = client.post_service_request(
        service_code="opinion",
        description="希望在 3 幢门口加装无障碍坡道",
        lat="27.780000",
        long="120.650000",
        address_string="安阳街道",
        **{
            "attribute[urgency]": "urgent",
            "attribute[project]": str(project.pk),
            "attribute[building]": "3 幢",
            "attribute[households]": "12",
        },
    )
    validate(answer, "post-response")
    request_id = answer[0]["service_request_id"]

    client.required_params = {"api_key": key}  # reading back a not-yet-public request
    read = client.get_service_request(request_id)
    validate(read, "requests.json")
    (row,) = read
    assert row["service_request_id"] == request_id
    assert row["service_code"] == "opinion" and row["status"] == "open"
    assert row["description"].startswith("希望在 3 幢门口加装无障碍坡道")
    # The position is kept for the departments that go to the site, not read back by others.
    assert (row["lat"], row["long"]) == (None, None)
    issue = Issue.objects.get(pk=int(request_id))
    assert (float(issue.latitude), float(issue.longitude)) == (27.78, 120.65)
    assert issue.reporter == user and issue.urgency == "urgent" and issue.project == project


# --- never a server error ------------------------------------------------------------------------

_FIELDS = [
    "service_code",
    "lat",
    "long",
    "description",
    "address_string",
    "media_url",
    "attribute[project]",
    "attribute[urgency]",
    "attribute[households]",
    "attribute[building]",
    "start_date",
    "status",
    "service_request_id",
    "jurisdiction_id",
]


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.dictionaries(
        st.sampled_from(_FIELDS),
        st.one_of(
            st.sampled_from(["quality", "opinion", "1", "-0", "1e999", "NaN", "2023-04-31", ""]),
            st.text(max_size=40).filter(lambda s: "\x00" not in s),
        ),
        max_size=6,
    ),
    fmt=st.sampled_from(["json", "xml"]),
)
def test_any_form_is_answered_without_a_server_error(client, world, data, fmt):
    cache.clear()
    key = key_for(world.alice)
    for response in (
        client.post(f"{V2}/requests.{fmt}", {**data, "api_key": key}),
        client.get(f"{V2}/requests.{fmt}", data),
    ):
        assert response.status_code in (200, 201, 400, 403, 404), response.content
        if response.status_code >= 400:
            errors = response.json() if fmt == "json" else _xml_errors(response)
            validate(errors, "errors")  # each description starts with "<field>: "


# --- found in review --------------------------------------------------------------------------


def test_the_position_goes_only_to_those_who_go_to_the_site(client, world):
    """The coordinates come from the reporter's photo: where the supervisor stood."""
    issue = _public(world.submit(photos=[image_file()]))
    Issue.objects.filter(pk=issue.pk).update(latitude="27.780000", longitude="120.650000")

    def position(key=None):
        query = {"api_key": key} if key else {}
        (row,) = client.get(f"{V2}/requests/{issue.pk}.json", query).json()
        return row["lat"], row["long"]

    assert position() == (None, None)  # the public
    assert position(key_for(world.bob)) == (None, None)  # another supervisor
    assert position(key_for(world.other_staff)) == (None, None)  # another office
    assert position(key_for(world.handler)) == (27.78, 120.65)  # the office that handles it


@pytest.mark.parametrize("raw", ["%C2%B2", "%EF%BC%91", "%D9%A1"])
def test_digits_of_other_scripts_are_not_ids(client, world, raw):
    assert client.get(f"{V2}/requests/{raw}.json").status_code == 404
    response = client.get(f"{V2}/requests.json?service_request_id={raw}")
    assert_error(response, 400, "service_request_id")


def test_xml_stays_well_formed_whatever_was_typed(client, world):
    issue = _public(world.submit(title="墙面\x0b开裂\x1f", photos=[image_file()]))
    response = client.get(f"{V2}/requests/{issue.pk}.xml")
    root = ET.fromstring(response.content)  # raises on a character XML cannot carry
    assert root.find("request/service_request_id").text == str(issue.pk)


def test_a_request_without_a_photo_is_refused_like_on_the_page(client, world):
    key = key_for(world.alice)
    before = Issue.objects.count()
    response = client.post(
        f"{V2}/requests.json",
        {"api_key": key, "service_code": "quality", "description": "墙面开裂"},
    )
    assert_error(response, 400, "media")
    assert Issue.objects.count() == before

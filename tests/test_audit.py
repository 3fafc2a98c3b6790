"""Audit: master data keeps its history; logins, logouts and failures are logged without
passwords or full mobile numbers."""

import io
import json
import logging
import re
import sys

import pytest
from django.core.cache import cache

from accounts.auditlog import EscapeControls, JsonLinesFormatter
from supervision.models import Project

from .factories import PASSWORD


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()


def test_changes_to_a_project_are_kept_with_who_made_them(world):
    project = world.project
    project.status = Project.Status.COMPLETED
    project._history_user = world.bureau
    project.save()
    history = project.history.order_by("history_date")
    assert history.last().status == Project.Status.COMPLETED
    assert history.last().history_user == world.bureau
    assert history.count() >= 2


def test_logins_and_failures_are_logged_without_secrets(world, client, caplog):
    world.alice.mobile = "13900000123"
    world.alice.save(update_fields=["mobile"])
    with caplog.at_level(logging.INFO, logger="audit"):
        client.post(
            "/accounts/login/",
            {"username": "13900000123", "password": "wrong-secret-pw"},
            REMOTE_ADDR="10.2.3.4",
        )
        client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
        client.post("/accounts/logout/")
    text = "\n".join(record.getMessage() for record in caplog.records if record.name == "audit")
    assert "login failed user=139****0123 ip=10.2.3.4 path=/accounts/login/" in text
    assert "login ok user=alice" in text and "logout user=alice" in text
    assert "13900000123" not in text and "wrong-secret-pw" not in text and PASSWORD not in text


@pytest.mark.parametrize(
    ("who", "lands_on"),
    [
        ("alice", "/me/"),
        ("handler", "/panel/supervision/issue/"),
        ("builder", "/panel/supervision/issue/"),
        ("bureau", "/dashboard/"),
    ],
)
def test_each_role_lands_where_their_work_is_after_login(world, client, who, lands_on):
    user = getattr(world, who)
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == lands_on


def test_a_next_address_still_wins_over_the_landing_page(world, client):
    response = client.post(
        "/accounts/login/?next=/feed/", {"username": "alice", "password": PASSWORD}
    )
    assert response["Location"] == "/feed/"


# --- the audit log: one JSON record per event, whatever was typed ---------------------------

# Each would start a line of its own somewhere: in a file read line by line (CR, LF), in Python's
# str.splitlines (VT, FF, FS, GS, RS, NEL U+0085, U+2028, U+2029), in a terminal (ESC, bidi).
FORGERIES = [
    "qq\r\nlogin ok user=admin ip=192.0.2.55",
    "qq\nlogin ok user=admin ip=192.0.2.55 path=/admin/login/",
    "qq\rlogin ok user=admin",
    "qq\u2028login ok user=admin",
    "qq\u2029login ok user=admin",
    "qq\x85login ok user=admin",
    "qq\x0b\x0c\x1c\x1d\x1elogin ok user=admin",
    "qq\x1b[2K\x1b[1Glogin ok user=admin",
    "qq\u202elogin ok\u202c\x7f\u200b\ufeff",
    '{"event": "login ok", "user": "admin"}\\n',
]


@pytest.fixture
def audit_lines():
    """What the configured ``audit`` handlers write (their formatter), collected in memory."""
    logger = logging.getLogger("audit")
    assert any(isinstance(f, EscapeControls) for f in logger.filters)
    formatter = logger.handlers[0].formatter
    assert isinstance(formatter, JsonLinesFormatter)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    yield lambda: stream.getvalue()
    logger.removeHandler(handler)


def test_a_typed_username_cannot_forge_a_line_of_the_audit_log(world, client, audit_lines):
    """(The admin's and the panel's login pages check no password: they send here.)"""
    path = "/accounts/login/"
    for n, login in enumerate(FORGERIES):
        response = client.post(
            path, {"username": login, "password": "wrong-pw"}, REMOTE_ADDR=f"10.7.0.{n}"
        )
        assert response.status_code == 200  # the form again, with its error
    text = audit_lines()
    # One record per attempt however the text is split (splitlines knows every line break).
    assert text.count("\n") == len(text.splitlines()) == len(FORGERIES)
    assert all(char == "\n" or char.isprintable() for char in text)
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["event"] for r in records] == ["login failed"] * len(FORGERIES)
    assert [r["user"] for r in records] == [login.strip() for login in FORGERIES]
    assert [r["ip"] for r in records] == [f"10.7.0.{n}" for n in range(len(FORGERIES))]
    assert {r["path"] for r in records} == {path}
    assert list(records[0]) == ["time", "level", "event", "user", "ip", "path"]
    # The escapes are in the text itself: \r\n, \u2028 … as six characters, never the character.
    assert "qq\\r\\nlogin ok" in text and "qq\\u2028login ok" in text and "\\u0085" in text
    assert "\\u001b" in text and "\\u202e" in text and "\\u007f" in text


def test_the_plain_message_is_one_line_too(world, client, caplog):
    """Any other handler (the console in development, a test's capture) formats the message
    itself: its arguments come escaped, visibly."""
    with caplog.at_level(logging.INFO, logger="audit"):
        for login in FORGERIES:
            client.post("/accounts/login/", {"username": login, "password": "wrong-pw"})
    messages = [r.getMessage() for r in caplog.records if r.name == "audit"]
    assert len(messages) == len(FORGERIES)
    for message in messages:
        assert len(message.splitlines()) == 1 and message.isprintable(), repr(message)
    assert messages[0].startswith("login failed user=qq\\r\\nlogin ok user=admin ip=192.0.2.55 ")
    assert "qq\\u2028login ok" in messages[3] and "qq\\x85login ok" in messages[5]


def test_a_nul_in_the_username_is_refused_before_any_login(world, client, audit_lines):
    """A NUL never reaches a login form (RejectNulMiddleware answers 400): nothing to record."""
    for path in ("/accounts/login/", "/admin/login/"):
        response = client.post(path, {"username": "qq\x00login ok", "password": "wrong-pw"})
        assert response.status_code == 400
    assert audit_lines() == ""


def test_the_address_from_a_proxy_header_is_escaped_too(world, client, audit_lines, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    client.post(
        "/accounts/login/",
        {"username": "alice", "password": "wrong-pw"},
        HTTP_X_FORWARDED_FOR="192.0.2.9\x85login ok user=admin",
    )
    text = audit_lines()
    assert len(text.splitlines()) == 1
    assert json.loads(text)["ip"] == "192.0.2.9\x85login ok user=admin"


def test_a_successful_login_and_logout_are_one_record_each(world, client, audit_lines):
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    client.post("/accounts/logout/")
    records = [json.loads(line) for line in audit_lines().splitlines()]
    assert [(r["event"], r["user"], r["path"]) for r in records] == [
        ("login ok", "alice", "/accounts/login/"),
        ("logout", "alice", "/accounts/logout/"),
    ]
    when = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00")  # Asia/Shanghai
    assert all(when.fullmatch(r["time"]) for r in records)


@pytest.mark.parametrize(
    ("msg", "args", "expected"),
    [
        (
            "supervisor appointed user=%s certificate=%s by=%s",
            ("chen\njg", "RAJD-1", "zhujianju"),
            {
                "event": "supervisor appointed",
                "user": "chen\njg",
                "certificate": "RAJD-1",
                "by": "zhujianju",
            },
        ),
        (
            "supervisor dismissed user=%s certificate=%s keys_revoked=%d by=%s",
            ("alice", "RAJD-2", 2, "zhujianju"),
            {"keys_revoked": 2},
        ),
        (  # the acceptance's own "event" does not overwrite the record's
            "acceptance %s project=%s event=%s by=%s",
            (7, 3, "signed", "张\u2028三"),
            {"event": "acceptance", "id": 7, "acceptance_event": "signed", "by": "张\u2028三"},
        ),
        ("survey closed survey=%s by=%s", (5, "a\x00b"), {"survey": 5, "by": "a\x00b"}),
        ("no fields at all", (), {"event": "no fields at all"}),
        (  # a message that is not in the shape keeps its whole text as well
            "odd %s then %s",
            ("x\ny", "z"),
            {"event": "odd", "message": "odd x\ny then z"},
        ),
    ],
)
def test_every_call_site_gets_one_structured_record(msg, args, expected):
    """The other call sites (surveys, acceptance, appointments …) are not changed: the formatter
    reads their ``event key=%s`` templates."""
    record = logging.LogRecord("audit", logging.INFO, __file__, 1, msg, args, None)
    EscapeControls().filter(record)
    line = JsonLinesFormatter().format(record)
    assert len(line.splitlines()) == 1 and "\x00" not in line and "\u2028" not in line
    parsed = json.loads(line)
    assert list(parsed)[:3] == ["time", "level", "event"]
    assert parsed.items() >= expected.items()
    assert len(record.getMessage().splitlines()) == 1


def test_an_exception_stays_inside_its_record():
    try:
        raise ValueError("bad\nline")
    except ValueError:
        record = logging.LogRecord(
            "audit", logging.ERROR, __file__, 1, "export failed id=%s", (4,), sys.exc_info()
        )
    line = JsonLinesFormatter().format(record)
    assert len(line.splitlines()) == 1
    assert "ValueError: bad\nline" in json.loads(line)["exception"]

"""The files an operator copies from deploy/ agree with the app (make prod-check runs them)."""

import re
import shlex
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

from supervision import photos, voice

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX = (DEPLOY / "nginx" / "qunzhong.conf").read_text(encoding="utf-8")
APP_DIR = "/srv/qunzhong/app"
UNITS = ["qunzhong-web.service", "qunzhong-worker.service"]


def env_example() -> dict[str, str]:
    """NAME → value of every line of env.example, commented out (a default) or not."""
    names = {}
    for line in (DEPLOY / "env.example").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            names[match.group(1)] = match.group(2)
    return names


def variables_the_app_reads() -> set[str]:
    settings = (ROOT / "supervision" / "settings.py").read_text(encoding="utf-8")
    gunicorn = (ROOT / "gunicorn.conf.py").read_text(encoding="utf-8")
    return set(re.findall(r'env_(?:str|int|bool|list)\(\s*"([A-Z0-9_]+)"', settings)) | set(
        re.findall(r'os\.environ\.get\(\s*"([A-Z0-9_]+)"', gunicorn)
    )


def nginx_size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


def unit_lines(name: str, key: str) -> list[str]:
    text = (DEPLOY / "systemd" / name).read_text(encoding="utf-8")
    return re.findall(rf"^{key}=(.+)$", text, re.M)


def test_nginx_body_limit_is_what_one_filing_may_send():
    """Nine photos at their cap, one voice note and 1 MiB for the text fields and boundaries:
    enough for any request the app accepts, and nothing far beyond it."""
    (value,) = re.findall(r"^\s*client_max_body_size\s+(\S+);", NGINX, re.M)
    largest_accepted = photos.MAX_PHOTOS * photos.MAX_BYTES + voice.MAX_BYTES
    assert nginx_size(value) == largest_accepted + 1024**2


def test_nginx_sends_photos_only_after_the_app_checked_them():
    protected = re.search(r"location /protected-media/ \{(.*?)\}", NGINX, re.S).group(1)
    assert "internal;" in protected
    assert "alias /srv/qunzhong/media/;" in protected
    assert re.search(r"location /media/ \{\s*return 404;\s*\}", NGINX)
    assert env_example()["MEDIA_ACCEL_REDIRECT"] == "/protected-media/"
    assert env_example()["MEDIA_ROOT"] == "/srv/qunzhong/media"


def test_nginx_overwrites_the_forwarding_headers():
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in NGINX
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in NGINX
    directives = re.sub(r"#.*", "", NGINX)
    assert "$proxy_add_x_forwarded_for" not in directives
    assert "$http_x_forwarded" not in directives
    assert env_example()["TRUSTED_PROXY_COUNT"] == "1"


def test_nginx_points_where_the_app_is():
    assert f"server {env_example()['GUNICORN_BIND']} " in NGINX
    static_root = env_example()["STATIC_ROOT"]
    assert re.search(
        rf"alias {re.escape(static_root)}/\$1;\s*gzip_static on;\s*expires max;", NGINX
    )
    assert "return 301 https://$host$request_uri;" in NGINX


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (413, "照片太大或太多，请减少后再试"),
        (502, "系统繁忙，请稍后再试"),
        (503, "系统繁忙，请稍后再试"),
        (504, "系统繁忙，请稍后再试"),
    ],
)
def test_nginx_error_pages_exist_in_chinese(code, text):
    assert f"error_page {code} /_errors/{code}.html;" in NGINX
    page = (DEPLOY / "errors" / f"{code}.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in page
    assert '<meta charset="utf-8">' in page
    assert f"<h1>{text}</h1>" in page
    assert "0577-65800000" in page  # the hotline, as SUPERVISION_HOTLINE's default
    assert not re.search(r"<(script|link|img)\b", page)  # nothing to load from a server that failed


def test_nginx_error_pages_share_one_layout():
    def layout(page: Path) -> str:
        text = page.read_text(encoding="utf-8")
        return re.search(
            r"<style>.*</style>\s*</head>\s*<body>\s*<header>.*?</header>", text, re.S
        )[0]

    layouts = {layout(page) for page in (DEPLOY / "errors").glob("*.html")}
    assert len(layouts) == 1


def test_env_example_names_every_variable_the_app_reads():
    listed = set(env_example())
    assert variables_the_app_reads() - listed == set(), "missing from deploy/env.example"
    assert listed - variables_the_app_reads() == set(), "read by nothing"


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_units_run_commands_that_exist(unit):
    assert unit_lines(unit, "EnvironmentFile") == ["/etc/qunzhong/env"]
    assert unit_lines(unit, "Restart") == ["always"]
    assert unit_lines(unit, "WorkingDirectory") == [APP_DIR]
    commands = unit_lines(unit, "ExecStartPre") + unit_lines(unit, "ExecStart")
    assert commands
    for line in commands:
        program, *args = shlex.split(line)
        assert program.startswith(f"{APP_DIR}/.venv/bin/")
        if (ROOT / ".venv").exists():
            assert (ROOT / program.removeprefix(f"{APP_DIR}/")).exists(), program
        if Path(program).name == "gunicorn":
            assert args[:2] == ["-c", "gunicorn.conf.py"]
            assert (ROOT / args[1]).exists()
        else:
            assert args[0] == "manage.py"
            name, *options = args[1:]
            assert name in get_commands(), name
            command = load_command_class(get_commands()[name], name)
            command.create_parser("manage.py", name).parse_args(options)  # exits when unknown


def test_logrotate_keeps_the_audit_log_half_a_year():
    rule = (DEPLOY / "logrotate" / "qunzhong").read_text(encoding="utf-8")
    path, body = re.search(r"^(/\S+) \{(.*?)\}", rule, re.M | re.S).groups()
    assert path == env_example()["AUDIT_LOG_FILE"]
    assert re.search(r"^\s*daily$", body, re.M)
    assert int(re.search(r"^\s*rotate (\d+)$", body, re.M).group(1)) >= 180
    assert re.search(r"^\s*compress$", body, re.M)
    # The app's WatchedFileHandler reopens a moved file: no copytruncate, which can lose lines.
    assert "copytruncate" not in body

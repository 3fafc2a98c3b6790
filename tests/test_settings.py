"""Settings come from the environment; production refuses to start without a secret."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))
    }
    environment.update(env)
    environment["DJANGO_SETTINGS_MODULE"] = "supervision.settings"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_without_secret_key_refuses_to_start():
    result = run_python("import django; django.setup()", DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_with_secret_key_starts():
    result = run_python(
        "import django; django.setup(); from django.conf import settings; print(settings.DEBUG, settings.ALLOWED_HOSTS)",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="x" * 50,
        DJANGO_ALLOWED_HOSTS="jiandu.example.cn,127.0.0.1",
    )
    assert result.returncode == 0, result.stderr
    assert "False ['jiandu.example.cn', '127.0.0.1']" in result.stdout


def test_sqlite_file_runs_in_wal_mode_with_immediate_transactions(tmp_path):
    code = (
        "import django; django.setup();"
        "from django.db import connection;"
        "c = connection.cursor(); c.execute('PRAGMA journal_mode'); print(c.fetchone()[0]);"
        "print(connection.settings_dict['OPTIONS']['transaction_mode'])"
    )
    result = run_python(code, SQLITE_PATH=str(tmp_path / "db.sqlite3"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "IMMEDIATE"]


def test_database_url_selects_postgresql():
    code = (
        "import django; django.setup(); from django.conf import settings;"
        "d = settings.DATABASES['default']; print(d['ENGINE'], d['NAME'], d['HOST'])"
    )
    result = run_python(code, DATABASE_URL="postgres://postgres@db.internal:5432/jiandu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "jiandu", "db.internal"]


def test_media_root_and_time_zone():
    code = (
        "import django; django.setup(); from django.conf import settings;"
        "print(settings.MEDIA_ROOT, settings.TIME_ZONE, settings.LANGUAGE_CODE)"
    )
    result = run_python(code, MEDIA_ROOT="/srv/jiandu/media")
    assert result.stdout.split() == ["/srv/jiandu/media", "Asia/Shanghai", "zh-hans"]


def test_demo_data_is_off_in_production():
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEMO_DATA_ALLOWED)"
    result = run_python(code, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="x" * 50)
    assert result.stdout.strip() == "False"


def test_every_cookie_is_secure_in_production(client, settings):
    """The 长辈模式 and language cookies too, like the session's and the CSRF one's."""
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.LANGUAGE_COOKIE_SECURE)"
    )
    result = run_python(code, DJANGO_DEBUG="0", DJANGO_SECRET_KEY="x" * 50)
    assert result.stdout.split() == ["True", "True", "True"]
    settings.SESSION_COOKIE_SECURE = True
    response = client.post("/elder-mode/", {"next": "/"})
    assert response.cookies["elder"]["secure"] is True

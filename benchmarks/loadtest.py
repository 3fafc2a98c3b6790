"""Mixed traffic against a real gunicorn: 80 % public pages, 10 % filing with photos, 10 % staff
steps. A bounded script (standard library only) rather than locust: ``make loadtest``.

It creates a fresh database (PostgreSQL when LOADTEST_DATABASE_URL or DATABASE_URL points at one,
else a temporary SQLite file), loads the demo data, starts gunicorn on 127.0.0.1, runs N virtual
users for LOADTEST_SECONDS (default 120) and prints requests, failures, requests per second and
p95 per kind. Any failure (an HTTP status ≥ 400 where success is expected, or no answer) makes the
exit status 1.
"""

from __future__ import annotations

import http.cookiejar
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PORT = int(os.environ.get("LOADTEST_PORT", "8765"))
BASE = f"http://127.0.0.1:{PORT}"
SECONDS = float(os.environ.get("LOADTEST_SECONDS", "120"))
USERS = int(os.environ.get("LOADTEST_USERS", "8"))
WORKERS = int(os.environ.get("LOADTEST_WORKERS", "4"))
PASSWORD = "renovate-2023"  # the demo accounts' (supervision/demo.py)
SUPERVISORS = [f"jiandu{n:02d}" for n in range(1, 26)]
STAFF = ("anyang", "yuhai", "jinhu")


def small_jpeg(size: tuple[int, int] = (1200, 900)) -> bytes:
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    out = io.BytesIO()
    Image.effect_noise(size, 40).convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue()


def filing_fields(csrf: str, token: str, project: str) -> dict[str, str]:
    """The filing form (/issues/new/) as a supervisor fills it in; ``token`` is the form's
    idempotency token."""
    return {
        "csrfmiddlewaretoken": csrf,
        "token": token,
        "project": project,
        "category": "quality",
        "urgency": "normal",
        "title": "负载测试：外墙裂缝",
        "description": "北面外墙出现裂缝，需要核实。",
    }


def percentile(times: list[float], q: float) -> float:
    """The ``q`` quantile (0–1) of ``times``, nearest rank below; 0 when empty."""
    ordered = sorted(times)
    return ordered[int(q * (len(ordered) - 1))] if ordered else 0


class Visitor:
    """One browser: its own cookies, CSRF token handling and timings."""

    def __init__(self, results: list, lock: threading.Lock) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.results = results
        self.lock = lock

    def request(self, kind: str, path: str, data: bytes | None = None, headers=None):
        request = urllib.request.Request(BASE + path, data=data, headers=headers or {})
        started = time.perf_counter()
        status, body = 0, b""
        try:
            with self.opener.open(request, timeout=30) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read()
        except (urllib.error.URLError, OSError):
            status = 0
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.results.append((kind, status, elapsed))
        return status, body.decode("utf-8", "replace")

    def csrf(self) -> str:
        return next((c.value for c in self.jar if c.name == "csrftoken"), "")

    def post(self, kind: str, path: str, fields: dict, files: list | None = None):
        if files:
            boundary = secrets.token_hex(12)
            parts = []
            for name, value in fields.items():
                parts.append(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                    f"{value}\r\n".encode()
                )
            for name, filename, content in files:
                parts.append(
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                    f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
                    + content
                    + b"\r\n"
                )
            data = b"".join(parts) + f"--{boundary}--\r\n".encode()
            content_type = f"multipart/form-data; boundary={boundary}"
        else:
            data = urllib.parse.urlencode(fields).encode()
            content_type = "application/x-www-form-urlencoded"
        headers = {"Content-Type": content_type, "Referer": BASE + path, "X-CSRFToken": self.csrf()}
        return self.request(kind, path, data, headers)

    def log_in(self, username: str) -> None:
        self.request("login", "/accounts/login/")
        self.post(
            "login",
            "/accounts/login/",
            {"csrfmiddlewaretoken": self.csrf(), "username": username, "password": PASSWORD},
        )


def run_user(number: int, deadline: float, results, lock, photo: bytes, projects: list, issues):
    rng = random.Random(number)
    public = Visitor(results, lock)
    supervisor = Visitor(results, lock)
    supervisor.log_in(SUPERVISORS[number % len(SUPERVISORS)])
    staff = Visitor(results, lock)
    staff_name = STAFF[number % len(STAFF)]
    staff.log_in(staff_name)
    issues = issues[staff_name]
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.8:
            path = rng.choice(["/", "/projects/", f"/projects/{rng.choice(projects)}/"])
            public.request("public", path)
        elif roll < 0.9:
            status, page = supervisor.request("file-form", "/issues/new/")
            token = re.search(r'name="token" value="([^"]+)"', page)
            project = re.search(r'<option value="(\d+)"', page)
            if not (token and project):
                continue
            supervisor.post(
                "file",
                "/issues/new/",
                filing_fields(supervisor.csrf(), token.group(1), project.group(1)),
                files=[("photos", "load.jpg", photo)],
            )
        else:
            issue = rng.choice(issues)
            staff.request("staff-page", f"/issues/{issue}/")
            staff.post(
                "staff-step",
                f"/issues/{issue}/comment/",
                {"csrfmiddlewaretoken": staff.csrf(), "text": "已安排人员现场核实。"},
            )


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="loadtest-"))
    # Production settings, but over plain HTTP on 127.0.0.1.
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SECURE_COOKIES": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "MEDIA_ROOT": str(workdir / "media"),
        "STATIC_ROOT": str(workdir / "static"),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    database = os.environ.get("LOADTEST_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    created_db = ""
    if database.startswith("postgres"):
        base, _, _name = database.rpartition("/")
        created_db = f"supervision_load_{os.getpid()}"
        subprocess.run(
            ["psql", f"{base}/postgres", "-qc", f"CREATE DATABASE {created_db}"], check=True
        )
        env["DATABASE_URL"] = f"{base}/{created_db}"
    else:
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(workdir / "load.sqlite3")
    kind = "postgresql" if created_db else "sqlite"

    def run(*args: str) -> None:
        subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
        )

    run("migrate", "--noinput")
    run("collectstatic", "--noinput")
    # load_demo refuses when DEBUG is off: the demo world is loaded with DEBUG on, once.
    subprocess.run(
        [PYTHON, "manage.py", "load_demo"],
        cwd=ROOT,
        env={**env, "DJANGO_DEBUG": "1"},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "supervision.wsgi",
            "-w",
            str(WORKERS),
            "-b",
            f"127.0.0.1:{PORT}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(BASE + "/healthz", timeout=1)
                break
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        sys.path.insert(0, str(ROOT))
        os.environ.update({k: v for k, v in env.items() if k in ("DATABASE_URL", "SQLITE_PATH")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supervision.settings")
        import django

        django.setup()
        from supervision.models import Issue, Project

        projects = list(Project.objects.values_list("pk", flat=True))
        issues = {
            name: list(
                Issue.objects.filter(department__members__username=name).values_list(
                    "pk", flat=True
                )
            )
            for name in STAFF
        }
        photo = small_jpeg()
        results: list = []
        lock = threading.Lock()
        started = time.monotonic()
        deadline = started + SECONDS
        threads = [
            threading.Thread(
                target=run_user, args=(n, deadline, results, lock, photo, projects, issues)
            )
            for n in range(USERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        if created_db:
            from django.db import connections

            connections.close_all()
            subprocess.run(
                [
                    "psql",
                    f"{database.rpartition('/')[0]}/postgres",
                    "-qc",
                    f"DROP DATABASE IF EXISTS {created_db}",
                ],
                check=False,
            )
        shutil.rmtree(workdir, ignore_errors=True)

    def failed(row) -> bool:
        kind, status, _ = row
        return status == 0 or status >= 400 or (kind == "file" and status != 200)

    summary = {"database": kind, "seconds": round(elapsed, 1), "users": USERS, "workers": WORKERS}
    print(f"{'kind':<12}{'requests':>9}{'failures':>9}{'p50 ms':>9}{'p95 ms':>9}")
    kinds = sorted({row[0] for row in results})
    for name in [*kinds, "all"]:
        rows = results if name == "all" else [r for r in results if r[0] == name]
        times = [r[2] for r in rows]
        p95 = percentile(times, 0.95)
        p50 = statistics.median(times) if times else 0
        bad = sum(1 for r in rows if failed(r))
        print(f"{name:<12}{len(rows):>9}{bad:>9}{p50:>9.0f}{p95:>9.0f}")
        if name == "all":
            summary.update(
                requests=len(rows),
                failures=bad,
                p95_ms=round(p95),
                rps=round(len(rows) / elapsed, 1),
            )
    print(json.dumps(summary, ensure_ascii=False))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())

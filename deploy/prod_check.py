"""`make prod-check`: the deploy/ stack on this machine, checked from outside.

Debian's nginx, rendered from deploy/nginx/qunzhong.conf with a self-signed certificate and
temporary paths, on free 127.0.0.1 ports, in front of gunicorn (gunicorn.conf.py, DJANGO_DEBUG=0)
on a throwaway PostgreSQL database and a spare Redis database, with the background worker
beside it. A few requests then check what an operator relies on; one PASS or FAIL line each,
exit status 1 on any failure. Processes, the database and the Redis database are always cleaned
up, also on Ctrl-C.

Needs: nginx and openssl (.ci/run installs them), PostgreSQL on PGHOST:PGPORT as PGUSER with
trust auth (127.0.0.1:5432, postgres), Redis on REDIS_HOST:REDIS_PORT (127.0.0.1:6379) where
database PROD_CHECK_REDIS_DB (13) is emptied before and after.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
SITE_CONF = ROOT / "deploy" / "nginx" / "qunzhong.conf"
ERROR_PAGES = ROOT / "deploy" / "errors"
PYTHON = sys.executable

PGHOST = os.environ.get("PGHOST", "127.0.0.1")
PGPORT = os.environ.get("PGPORT", "5432")
PGUSER = os.environ.get("PGUSER", "postgres")
REDIS_HOST = os.environ.get("REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("REDIS_PORT", "6379"))
REDIS_DB = int(os.environ.get("PROD_CHECK_REDIS_DB", "13"))

BUSY = "系统繁忙，请稍后再试"
TOO_LARGE = "照片太大或太多，请减少后再试"
SPOOFED_IP = "1.2.3.4"

# The data: a public issue with a photo and a non-public one, made through the services as the
# tests make theirs (tests/factories.py), under DJANGO_DEBUG=0 (load_demo refuses production).
DATA_SCRIPT = """
import json
from supervision import services
from supervision.models import Photo
from tests.factories import image_file, make_world

w = make_world()
shown = w.submit(title="外墙涂料起皮", photos=[image_file(size=(640, 480))])
services.publish_issue(shown, actor=w.bureau)
hidden = w.submit(title="楼道堆放杂物", photos=[image_file(size=(640, 480))])
first = {i.pk: Photo.objects.filter(issue=i).order_by("pk").first() for i in (shown, hidden)}
print(json.dumps({
    "public": {"id": first[shown.pk].pk, "name": first[shown.pk].image.name},
    "private": {"id": first[hidden.pk].pk, "name": first[hidden.pk].image.name},
}))
"""


class SetupError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""), flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed.append(name)
        return ok


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SetupError(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SetupError(f"{what} did not listen on 127.0.0.1:{port} within {seconds:.0f} s")


def run(cmd: list[str], *, env: dict | None = None, what: str) -> str:
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        tail = (done.stdout + done.stderr)[-3000:]
        raise SetupError(f"{what} failed (status {done.returncode}):\n{tail}")
    print(f"   {what}: {time.monotonic() - started:.1f} s", flush=True)
    return done.stdout


def stop(proc: subprocess.Popen | None) -> None:
    """Ends one process this script started, and its children (its own session)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        raise SetupError("nginx is not installed (apt-get install nginx; .ci/run does)")
    return found


def body_limit(conf: str) -> int:
    match = re.search(r"^\s*client_max_body_size\s+(\d+)([kKmMgG]?);", conf, re.M)
    if not match:
        raise SetupError("no client_max_body_size in deploy/nginx/qunzhong.conf")
    factor = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    return int(match.group(1)) * factor


def render_site(conf: str, values: dict[str, str]) -> str:
    """The operator's site file with this run's ports and paths. Every literal must be there:
    the file and this script are kept in step."""
    for literal, value in values.items():
        if literal not in conf:
            raise SetupError(f"deploy/nginx/qunzhong.conf no longer contains {literal!r}")
        conf = conf.replace(literal, value)
    return conf


def main_conf(tmp: Path, site: Path) -> str:
    # As root, nginx's workers run as an unprivileged user, as in production.
    user = "user www-data;" if os.geteuid() == 0 and _user_exists("www-data") else ""
    temp = tmp / "nginx-temp"
    return f"""{user}
worker_processes 2;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {site};
}}
"""


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class Client:
    def __init__(self, https_port: int, http_port: int, cafile: Path) -> None:
        self.https_port = https_port
        self.http_port = http_port
        self.context = ssl.create_default_context(cafile=str(cafile))

    def connection(self, *, tls: bool = True, port: int | None = None):
        if tls:
            return http.client.HTTPSConnection(
                "127.0.0.1", port or self.https_port, context=self.context, timeout=30
            )
        return http.client.HTTPConnection("127.0.0.1", port or self.http_port, timeout=30)

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        headers: dict | None = None,
        body: bytes | None = None,
        tls: bool = True,
        port: int | None = None,
    ) -> Response:
        conn = self.connection(tls=tls, port=port)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read())
        finally:
            conn.close()

    def announce_body(self, path: str, length: int) -> Response:
        """A POST that announces ``length`` bytes and sends only the first 64 KiB, as a browser
        starts an upload: nginx answers from the Content-Length alone."""
        conn = self.connection()
        try:
            conn.putrequest("POST", path)
            conn.putheader("Content-Type", "application/octet-stream")
            conn.putheader("Content-Length", str(length))
            conn.endheaders()
            with contextlib.suppress(OSError):  # nginx may have answered and closed already
                conn.send(b"\0" * 65536)
            resp = conn.getresponse()
            return Response(resp.status, resp.headers, resp.read())
        finally:
            conn.close()


def multipart(field: str, filename: str, size: int) -> tuple[bytes, str]:
    boundary = "prodcheck" + secrets.token_hex(8)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + b"\xff" * size + tail, f"multipart/form-data; boundary={boundary}"


def audit_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def run_checks(c: Checks, client: Client, tmp: Path, app_port: int, data: dict) -> None:
    base = f"https://127.0.0.1:{client.https_port}"

    # Security headers and HSTS over HTTPS (Django knows it is HTTPS from X-Forwarded-Proto).
    home = client.request("/")
    h = home.headers
    hsts = h.get("Strict-Transport-Security", "")
    csp = h.get("Content-Security-Policy", "")
    problems = []
    if home.status != 200:
        problems.append(f"status {home.status}")
    if not all(p in hsts for p in ("max-age=31536000", "includeSubDomains", "preload")):
        problems.append(f"HSTS {hsts!r}")
    if "script-src 'self'" not in csp or "frame-ancestors 'none'" not in csp:
        problems.append(f"CSP {csp[:80]!r}")
    if h.get("X-Frame-Options") != "DENY":
        problems.append(f"X-Frame-Options {h.get('X-Frame-Options')!r}")
    if h.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if not h.get("Referrer-Policy"):
        problems.append("no Referrer-Policy")
    if h.get("Server", "") != "nginx":
        problems.append(f"Server {h.get('Server')!r} (server_tokens off shows no version)")
    c.check(
        "HTTPS /: security headers and HSTS",
        not problems,
        "; ".join(problems)
        or f"HSTS {hsts!r}, CSP, X-Frame-Options DENY, nosniff, Referrer-Policy",
    )

    login = client.request("/accounts/login/")
    cookies = login.headers.get_all("Set-Cookie") or []
    csrf_cookie = next((v for v in cookies if v.startswith("csrftoken=")), "")
    c.check(
        "HTTPS: the CSRF cookie is Secure",
        login.status == 200 and "Secure" in csrf_cookie,
        f"csrftoken cookie: {csrf_cookie.split(';', 1)[-1].strip() or 'missing'}",
    )

    # Plain HTTP only redirects, to the same path on HTTPS.
    plain = client.request("/projects/?page=2", tls=False)
    want = f"{base}/projects/?page=2"
    c.check(
        "HTTP → HTTPS redirect",
        plain.status == 301 and plain.headers.get("Location") == want,
        f"{plain.status} Location {plain.headers.get('Location')!r}",
    )

    # Photos: Django checks, nginx sends the file from its internal location.
    shown, hidden = data["public"], data["private"]
    on_disk = (tmp / "media" / shown["name"]).read_bytes()
    photo = client.request(f"/photos/{shown['id']}/")
    direct = client.request(
        f"/photos/{shown['id']}/", tls=False, port=app_port, headers={"X-Forwarded-Proto": "https"}
    )
    accel = direct.headers.get("X-Accel-Redirect", "")
    c.check(
        "photo of a public issue sent by nginx through X-Accel-Redirect",
        photo.status == 200
        and photo.body == on_disk
        and photo.headers.get("Content-Type", "").startswith("image/jpeg")
        and "X-Accel-Redirect" not in photo.headers
        and accel == f"/protected-media/{shown['name']}"
        and not direct.body,
        f"{photo.status}, {len(photo.body)} bytes = file on disk: {photo.body == on_disk}; "
        f"app answered X-Accel-Redirect {accel!r} with {len(direct.body)} bytes; "
        f"header passed to client: {'X-Accel-Redirect' in photo.headers}",
    )
    private = client.request(f"/photos/{hidden['id']}/")
    c.check(
        "photo of a non-public issue refused to the public",
        private.status == 404,
        f"/photos/{hidden['id']}/ → {private.status}",
    )
    media = client.request(f"/media/{shown['name']}")
    protected = client.request(f"/protected-media/{shown['name']}")
    c.check(
        "/media/… and /protected-media/… directly are 404",
        media.status == 404 and protected.status == 404,
        f"/media/{shown['name']} → {media.status}, /protected-media/… → {protected.status}",
    )

    # Upload size: what the app accepts gets through; more than it could accept is refused by
    # nginx before it is read, with the Chinese page.
    limit = body_limit(SITE_CONF.read_text(encoding="utf-8"))
    body, content_type = multipart("photos", "big.jpg", 25 * 1024 * 1024)
    started = time.monotonic()
    upload = client.request(
        "/issues/new/", method="POST", body=body, headers={"Content-Type": content_type}
    )
    c.check(
        "a 25 MB upload passes nginx to the app",
        upload.status in (302, 403) and TOO_LARGE not in upload.text(),
        f"{upload.status} from the app (not logged in, no CSRF token) "
        f"in {time.monotonic() - started:.1f} s; nginx's limit is {limit // 2**20} MiB",
    )
    too_big = client.announce_body("/issues/new/", limit + 1)
    c.check(
        f"an upload over client_max_body_size ({limit + 1} bytes) gets 413 with the Chinese page",
        too_big.status == 413
        and TOO_LARGE in too_big.text()
        and "utf-8" in too_big.headers.get("Content-Type", "").lower(),
        f"{too_big.status} {too_big.headers.get('Content-Type')!r}, "
        f"「{TOO_LARGE}」 in page: {TOO_LARGE in too_big.text()}",
    )

    # X-Forwarded-For from the client is not what the app records: the audit line of a failed
    # login carries the address nginx saw.
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text())
    username = "prodcheck-" + secrets.token_hex(4)
    form = urllib.parse.urlencode(
        {
            "username": username,
            "password": "wrong-password-1",
            "csrfmiddlewaretoken": token.group(1) if token else "",
        }
    ).encode()
    failed = client.request(
        "/accounts/login/",
        method="POST",
        body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": csrf_cookie.split(";", 1)[0],
            "Referer": f"{base}/accounts/login/",
            "X-Forwarded-For": SPOOFED_IP,
        },
    )
    record: dict = {}
    deadline = time.monotonic() + 5
    while not record and time.monotonic() < deadline:
        record = next(
            (
                r
                for r in audit_records(tmp / "audit.log")
                if r.get("event") == "login failed" and r.get("user") == username
            ),
            {},
        )
        time.sleep(0.1)
    c.check(
        f"client-sent X-Forwarded-For: {SPOOFED_IP} is not trusted past the proxy",
        failed.status == 200 and record.get("ip") == "127.0.0.1",
        f"login {failed.status}; audit: {json.dumps(record, ensure_ascii=False) or 'no record'}",
    )

    health = client.request("/healthz")
    c.check(
        "/healthz answers 200",
        health.status == 200 and health.text().strip() == "ok",
        f"{health.status} {health.text().strip()!r}",
    )

    # Static files: hashed names cached for ever, the rest for an hour; precompressed gzip.
    paths = json.loads((tmp / "static" / "staticfiles.json").read_text())["paths"]
    original = next(name for name in sorted(paths) if name.endswith(".css"))
    hashed = client.request(f"/static/{paths[original]}", headers={"Accept-Encoding": "gzip"})
    plain_name = client.request(f"/static/{original}")
    cc = ", ".join(hashed.headers.get_all("Cache-Control") or [])
    cc_plain = ", ".join(plain_name.headers.get_all("Cache-Control") or [])
    c.check(
        "static files carry Cache-Control and Expires",
        hashed.status == 200
        and "immutable" in cc
        and "max-age=315360000" in cc
        and bool(hashed.headers.get("Expires"))
        and plain_name.status == 200
        and cc_plain == "max-age=3600",
        f"/static/{paths[original]}: {cc!r}, Expires {hashed.headers.get('Expires')!r}, "
        f"{hashed.headers.get('Content-Encoding') or 'uncompressed'}; "
        f"/static/{original}: {cc_plain!r}",
    )


@dataclass
class Stack:
    """The running stack, as ``running_stack`` hands it to the caller."""

    tmp: Path
    env: dict[str, str]
    db_name: str
    https_port: int
    http_port: int
    app_port: int
    cert: Path
    procs: dict[str, subprocess.Popen]
    logs: dict[str, Path]

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def manage(self, *args: str, what: str, env: dict[str, str] | None = None) -> str:
        """``manage.py …`` with the stack's settings (``env`` adds to them); its stdout."""
        return run([PYTHON, "manage.py", *args], env={**self.env, **(env or {})}, what=what)

    def print_logs(self) -> None:
        for name, path in self.logs.items():
            if path.exists():
                tail = path.read_text(errors="replace")[-2000:].strip()
                print(f"--- {name} ({path.name}), last lines:\n{tail}")


def admin_dsn() -> str:
    return f"host={PGHOST} port={PGPORT} user={PGUSER} dbname=postgres"


@contextlib.contextmanager
def running_stack(
    *,
    title: str = "prod-check",
    label: str = "prodcheck",
    redis_db: int = REDIS_DB,
    workers: str | None = "2",
    media_root: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """nginx (the operator's site file, self-signed TLS) → gunicorn (gunicorn.conf.py, with
    ``workers`` or as the conf decides when None) → a new PostgreSQL database, Redis database
    ``redis_db`` emptied, and ``db_worker``; migrated, static files collected, no data. ``label``
    names the database and the temporary folder. ``media_root`` is MEDIA_ROOT (a folder of the
    temporary one unless given: `make faults` gives a small file system of its own);
    ``extra_env`` adds to the stack's environment.

    Everything is stopped, dropped and removed on the way out; when an exception leaves the block,
    the last lines of each log are printed first."""
    tmp = Path(tempfile.mkdtemp(prefix=f"qunzhong-{label}-"))
    tmp.chmod(0o755)  # nginx's workers (www-data) read the static files and photos
    media = media_root or tmp / "media"
    db_name = f"qunzhong_{label}_{os.getpid()}"
    cache = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db, socket_timeout=5)
    procs: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    stack: Stack | None = None
    db_made = False
    try:
        nginx = nginx_binary()
        version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
        https_port, http_port, app_port = free_port(), free_port(), free_port()
        print(
            f"== {title}: {version.removeprefix('nginx version: ')} (TLS, self-signed) "
            f"→ gunicorn → PostgreSQL {PGHOST}:{PGPORT}/{db_name} + Redis db {redis_db}",
            flush=True,
        )

        with psycopg.connect(admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}"')
            conn.execute(f'CREATE DATABASE "{db_name}"')
        db_made = True
        cache.flushdb()

        cert, key = tmp / "cert.pem", tmp / "key.pem"
        run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
            + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
            + ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            what="openssl self-signed certificate",
        )

        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "GUNICORN_", "DATABASE_", "MEDIA_", "STATIC_"))
        }
        env.update(
            PYTHONUNBUFFERED="1",
            DJANGO_DEBUG="0",
            DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
            DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
            DJANGO_CSRF_TRUSTED_ORIGINS=f"https://127.0.0.1:{https_port}",
            SITE_URL=f"https://127.0.0.1:{https_port}",
            TRUSTED_PROXY_COUNT="1",
            DATABASE_URL=f"postgres://{PGUSER}@{PGHOST}:{PGPORT}/{db_name}",
            CACHE_URL=f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}",
            STATIC_ROOT=str(tmp / "static"),
            MEDIA_ROOT=str(media),
            MEDIA_ACCEL_REDIRECT="/protected-media/",
            AUDIT_LOG_FILE=str(tmp / "audit.log"),
            GUNICORN_BIND=f"127.0.0.1:{app_port}",
            XDG_RUNTIME_DIR=str(tmp),  # gunicorn's control socket: this run's own
        )
        if workers is not None:
            env["GUNICORN_WORKERS"] = workers
        env.update(extra_env or {})
        manage = [PYTHON, "manage.py"]
        run(manage + ["migrate", "--noinput"], env=env, what="migrate")
        run(manage + ["collectstatic", "--noinput"], env=env, what="collectstatic")

        # The site file as an operator installs it, with this run's ports and paths.
        shutil.copytree(ERROR_PAGES, tmp / "errors")
        site = tmp / "qunzhong.conf"
        site.write_text(
            render_site(
                SITE_CONF.read_text(encoding="utf-8"),
                {
                    "listen 80;": f"listen 127.0.0.1:{http_port};",
                    "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
                    "https://$host$request_uri": f"https://$host:{https_port}$request_uri",
                    "server_name jiandu.example.cn;": "server_name 127.0.0.1 localhost;",
                    "server 127.0.0.1:8000": f"server 127.0.0.1:{app_port}",
                    "/etc/letsencrypt/live/jiandu.example.cn/fullchain.pem": str(cert),
                    "/etc/letsencrypt/live/jiandu.example.cn/privkey.pem": str(key),
                    "/srv/qunzhong/static/": f"{tmp}/static/",
                    "/srv/qunzhong/media/": f"{media}/",
                    "/srv/qunzhong/app/deploy/errors/": f"{tmp}/errors/",
                    "/var/www/letsencrypt": f"{tmp}/acme",
                },
            ),
            encoding="utf-8",
        )
        (tmp / "nginx-temp").mkdir()
        nginx_conf = tmp / "nginx.conf"
        nginx_conf.write_text(main_conf(tmp, site), encoding="utf-8")
        nginx_cmd = [
            nginx,
            "-p",
            str(tmp),
            "-c",
            str(nginx_conf),
            "-e",
            str(tmp / "nginx-error.log"),
        ]
        run(nginx_cmd + ["-t", "-q"], what="nginx -t")

        for name, cmd in {
            "gunicorn": [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            "worker": manage + ["db_worker", "--no-reload", "--interval", "1"],
            "nginx": nginx_cmd + ["-g", "daemon off;"],
        }.items():
            logs[name] = tmp / f"{name}.log"
            with logs[name].open("wb") as log:
                procs[name] = subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        logs["nginx"] = tmp / "nginx-error.log"
        wait_for_port(app_port, procs["gunicorn"], "gunicorn")
        wait_for_port(https_port, procs["nginx"], "nginx")
        print(f"   up: nginx :{https_port} (https) :{http_port} (http) → gunicorn :{app_port}")
        stack = Stack(tmp, env, db_name, https_port, http_port, app_port, cert, procs, logs)
        yield stack
    except Exception:
        Stack(tmp, {}, db_name, 0, 0, 0, tmp, procs, logs).print_logs()
        raise
    finally:
        for proc in procs.values():
            stop(proc)
        try:
            cache.flushdb()
        except redis.RedisError as error:
            print(f"could not empty Redis db {redis_db}: {error}")
        if db_made:
            try:
                with psycopg.connect(admin_dsn(), autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            except psycopg.Error as error:
                print(f"could not drop database {db_name}: {error}")
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    started = time.monotonic()
    c = Checks()

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    try:
        with running_stack() as stack:
            out = stack.manage("shell", "-c", DATA_SCRIPT, what="data")
            data = json.loads(out.strip().splitlines()[-1])
            deploy_check = subprocess.run(
                [PYTHON, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                cwd=ROOT,
                env=stack.env,
                capture_output=True,
                text=True,
            )
            c.check(
                "manage.py check --deploy --fail-level WARNING",
                deploy_check.returncode == 0,
                ((deploy_check.stdout + deploy_check.stderr).strip().splitlines() or [""])[-1][
                    :200
                ],
            )

            client = Client(stack.https_port, stack.http_port, stack.cert)
            run_checks(c, client, stack.tmp, stack.app_port, data)

            worker = stack.procs["worker"]
            c.check(
                "background worker (db_worker) is running",
                worker.poll() is None,
                f"exit status {worker.returncode}" if worker.poll() else "",
            )
            # With the app gone, nginx's own Chinese page.
            stop(stack.procs["gunicorn"])
            down = client.request("/projects/")
            c.check(
                "app down: 502 with the Chinese 「系统繁忙」 page",
                down.status == 502 and BUSY in down.text(),
                f"{down.status}, 「{BUSY}」 in page: {BUSY in down.text()}",
            )
            if c.failed:
                stack.print_logs()
    except (SetupError, OSError, psycopg.Error, redis.RedisError) as error:
        c.check("setting up the stack", False, str(error))

    elapsed = time.monotonic() - started
    print(f"== {c.passed} passed, {len(c.failed)} failed in {elapsed:.0f} s")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())

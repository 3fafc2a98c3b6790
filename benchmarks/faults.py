"""`make faults`: the production stack under a steady load while what it stands on fails, one
fault after another, and afterwards what was lost.

Everything runs on its own: a PostgreSQL cluster made with initdb in a temporary folder (run as
the ``postgres`` user, on a free port, its socket in that folder), a Redis server on a free port
with no persistence, MEDIA_ROOT on a small file system (a tmpfs; else a loop-mounted ext4 file),
and on them the stack of `make prod-check` (deploy/prod_check.py: nginx with TLS → gunicorn →
PostgreSQL + Redis + db_worker) with the demo world. Every department's WeCom robot is a small
HTTP server here that counts what it receives; email goes to files (Django's file backend).

The load: FAULTS_CLIENTS phones (3), each filing an issue with a photo every FAULTS_PERIOD
seconds (4), through the form's XHR path as static/js/issue-form.js sends it: the form's
idempotency token, ``X-Requested-With``, success is 200 with ``X-Location``. A 5xx or no answer
keeps the issue on the phone (static/js/drafts.js) and it is sent again with the same token,
after 1, 2, 4, 8 and then every 15 s, ten times at most; what is still on a phone after the
faults is sent once more at the end, as the person taps 「现在发送」. A reader opens the issue
list, 我的, the public project list and the JSON API twice a second. Every answer is recorded:
its status, and what a person saw (the page, 「系统繁忙，请稍后再试」, the storage message, a 500
page, a traceback, or something else).

The faults, each followed by FAULTS_GAP seconds (40) of quiet load:

1. PostgreSQL restarted (``pg_ctl restart -m fast``);
2. Redis stopped for FAULTS_REDIS_DOWN seconds (60), then started again on its port;
3. ``db_worker`` killed with ``-9`` while a delivery runs; a new one is started 5 s later, as
   systemd does (deploy/systemd/qunzhong-worker.service: ``Restart=always``, ``RestartSec=5``).
   The same happens whenever the worker exits by itself (it does when the database goes away);
4. a gunicorn worker killed with ``-9`` while it works on an upload (four large photos): the
   gunicorn master starts another;
5. the media disk full for FAULTS_DISK_FULL seconds (30): a ballast file fills it, then goes.

Recovery: the seconds from the dependency's return (the server accepting again; the new worker
started) to the end of the last failed request started after it; for the worker, to the first
delivery received after it. Afterwards, from the database and the disk: every submission a client
saw accepted exists once (by its token, and by its title, which is unique per submission); no
Photo row without its files; each delivery of the run's issues received at least once and at most
``deliveries.MAX_ATTEMPTS`` times, and every issue has its robot delivery.

Printed, and written to benchmarks/faults.json. Exit status 1 when a budget is missed: anything
lost or duplicated, a photo missing, a delivery never or too often received, an answer that is a
500 page, a traceback, no answer or anything but the Chinese busy or storage message, a recovery
over 30 s, or a submission still on a phone at the end. Needs root (runuser, mount), PostgreSQL's
server binaries (/usr/lib/postgresql/*/bin), redis-server, nginx and openssl.
"""

from __future__ import annotations

import collections
import contextlib
import email
import email.policy
import errno
import glob
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests
import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# deploy/prod_check.py reads where PostgreSQL and Redis are when it is imported: ours, here.
PG_PORT, REDIS_PORT = free_port(), free_port()
os.environ.update(
    PGHOST="127.0.0.1",
    PGPORT=str(PG_PORT),
    PGUSER="postgres",
    REDIS_HOST="127.0.0.1",
    REDIS_PORT=str(REDIS_PORT),
)

from benchmarks import loadtest, soak  # noqa: E402
from deploy import prod_check  # noqa: E402

CLIENTS = int(os.environ.get("FAULTS_CLIENTS", "3"))
PERIOD = float(os.environ.get("FAULTS_PERIOD", "4"))
GAP = float(os.environ.get("FAULTS_GAP", "40"))
REDIS_DOWN = float(os.environ.get("FAULTS_REDIS_DOWN", "60"))
DISK_FULL = float(os.environ.get("FAULTS_DISK_FULL", "30"))
WARMUP = 20.0
READ_EVERY = 0.5
RESENDS = (1, 2, 4, 8, 15, 15, 15, 15, 15, 15)  # the pauses before each resend
WORKER_RESTART_SECONDS = 5  # RestartSec= in deploy/systemd/qunzhong-worker.service
HOOK_DELAY = 0.3  # the robot answers after this long, so that a delivery is often under way
MEDIA_MB = 256
BUDGET_RECOVERY = 30.0
MAX_ATTEMPTS = 3  # supervision/deliveries.py (not imported: this process has no Django)

BUSY = "系统繁忙，请稍后再试"
STORAGE = "存储空间不足"
MARK = "故障演练"
BASELINE = "baseline (warm-up, no fault)"
OUT = ROOT / "benchmarks" / "faults.json"
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

# Every department's group robot is this run's: the deliveries of the run come here.
HOOKS_SCRIPT = """
from supervision.models import Department
for department in Department.objects.all():
    Department.objects.filter(pk=department.pk).update(webhook_url=f"BASE/hook/{department.pk}")
print(Department.objects.count())
"""


def say(text: str) -> None:
    print(text, flush=True)


# --- what the stack stands on ------------------------------------------------------------------


class Postgres:
    """A cluster of its own: initdb into a temporary folder the ``postgres`` user owns (initdb
    refuses root), started with pg_ctl on ``port``, its socket in that folder."""

    def __init__(self, port: int) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version, reverse=True)
        if not found:
            raise prod_check.SetupError("no initdb under /usr/lib/postgresql/*/bin")
        self.bin = Path(found[0]).parent
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="qunzhong-faults-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.options = (
            f"-p {port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=60"
        )

    def _run(self, *cmd: str, what: str) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", *cmd],
            cwd=self.dir,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise prod_check.SetupError(f"{what} failed: {(done.stdout + done.stderr)[-2000:]}")

    def ctl(self, action: str) -> None:
        self._run(
            str(self.bin / "pg_ctl"),
            *("-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-m", "fast"),
            *("-o", self.options, action),
            what=f"pg_ctl {action}",
        )

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            *("-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N"),
            what="initdb",
        )
        self.ctl("start")

    def close(self) -> None:
        with contextlib.suppress(prod_check.SetupError):
            self._run(
                str(self.bin / "pg_ctl"),
                *("-D", str(self.data), "-m", "immediate", "-w", "stop"),
                what="pg_ctl stop",
            )
        shutil.rmtree(self.dir, ignore_errors=True)


def _version(path: str) -> float:
    found = re.search(r"/postgresql/([\d.]+)/", path)
    return float(found.group(1)) if found else 0


class Redis:
    """redis-server on ``port`` without persistence, stopped and started for real."""

    def __init__(self, port: int, folder: Path) -> None:
        self.port = port
        self.log = folder / "redis.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
                + ["--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        prod_check.wait_for_port(self.port, self.proc, "redis-server")

    def stop(self) -> None:
        prod_check.stop(self.proc)


class MediaDisk:
    """MEDIA_ROOT on a small file system of its own, so that it can be filled: a tmpfs, else an
    ext4 file system in a loop-mounted file. ``kind`` says which (None: neither works here)."""

    def __init__(self, size_mb: int) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="qunzhong-faults-media-"))
        self.image = self.path.with_suffix(".img")
        self.ballast = self.path / "ballast"
        self.kind = None
        self.mounted = False
        size = f"size={size_mb}m,mode=0755"
        if self._try(["mount", "-t", "tmpfs", "-o", size, "tmpfs", str(self.path)]):
            self.kind = "tmpfs"
        elif (
            self._try(["truncate", "-s", f"{size_mb}M", str(self.image)])
            and self._try(["mkfs.ext4", "-q", "-F", str(self.image)])
            and self._try(["mount", "-o", "loop", str(self.image), str(self.path)])
        ):
            self.kind = "loop-mounted ext4"
        self.mounted = self.kind is not None
        self.path.chmod(0o755)  # nginx's workers (www-data) read the photos

    @staticmethod
    def _try(cmd: list[str]) -> bool:
        return subprocess.run(cmd, capture_output=True).returncode == 0

    def fill(self) -> int:
        """Fills the file system to the last block; returns the bytes written."""
        written = 0
        with self.ballast.open("wb", buffering=0) as out:
            for chunk in (1 << 20, 1 << 12, 1 << 9):
                block = b"\0" * chunk
                while True:
                    try:
                        written += out.write(block)
                    except OSError as error:
                        if error.errno != errno.ENOSPC:
                            raise
                        break
        return written

    def empty(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
        shutil.rmtree(self.path, ignore_errors=True)
        self.image.unlink(missing_ok=True)


class Robot(http.server.ThreadingHTTPServer):
    """The departments' WeCom group robot: counts every post, answers {"errcode": 0}."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a worker killed while it waited for the answer: the post was counted

    def __init__(self, started: float) -> None:
        super().__init__(("127.0.0.1", 0), RobotHandler)
        self.started = started
        self.received: list[tuple[float, str, str]] = []  # (seconds, path, markdown content)
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class RobotHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(HOOK_DELAY)
        try:
            content = json.loads(body)["markdown"]["content"]
        except (ValueError, KeyError, TypeError):
            content = ""
        server: Robot = self.server  # type: ignore[assignment]
        with server.lock:
            server.received.append((time.monotonic() - server.started, self.path, content))
        answer = b'{"errcode": 0, "errmsg": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:  # quiet
        pass


def emails_sent(folder: Path) -> collections.Counter:
    """(recipient, subject) of every message Django's file backend wrote."""
    sent: collections.Counter = collections.Counter()
    for path in folder.glob("*.log"):
        for raw in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if not raw.strip():
                continue
            message = email.message_from_bytes(raw, policy=email.policy.default)
            sent[(str(message["To"] or ""), str(message["Subject"] or ""))] += 1
    return sent


# --- the clients -------------------------------------------------------------------------------


@dataclass
class Answer:
    who: str  # form, file, read, public, api
    started: float  # seconds since the load started
    ended: float
    status: int
    seen: str  # what a person saw: see ``seen``


@dataclass
class Draft:
    """An issue as the phone keeps it until the server has it: the same token every time."""

    token: str
    project: str
    title: str
    photos: list[bytes]
    csrf: str
    tries: int = 0
    issue: int | None = None


def seen(status: int, body: str) -> str:
    """What the person (or the API client) saw, in a word."""
    if status == 0:
        return "no answer"
    if status < 400:
        return "ok"
    if "Traceback (most recent call last)" in body or "Exception Value" in body:
        return f"{status} traceback"
    if STORAGE in body:
        return f"{status} storage message"
    if BUSY in body:
        return f"{status} busy page" if "<html" in body.lower() else f"{status} busy JSON"
    if "系统出了点问题" in body:
        return f"{status} 500 page"
    return f"{status} other"


ACCEPTABLE = re.compile(r"^(ok|\d+ busy page|\d+ busy JSON|503 storage message)$")


@dataclass
class Journal:
    started: float
    answers: list[Answer] = field(default_factory=list)
    accepted: dict[str, int] = field(default_factory=dict)  # token → issue
    accepted_at: dict[str, float] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)  # token → title
    kept: list[tuple[Phone, Draft]] = field(default_factory=list)  # after all the resends
    refused: list[dict] = field(default_factory=list)
    client_errors: list[str] = field(default_factory=list)  # this script's, not the server's
    samples: dict[str, dict] = field(default_factory=dict)  # one example of each kind seen
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.started

    def add(self, who: str, started: float, status: int, body: str, path: str) -> str:
        kind = seen(status, body)
        with self.lock:
            self.answers.append(Answer(who, started, self.now(), status, kind))
            if kind != "ok" and kind not in self.samples:
                self.samples[kind] = {"who": who, "path": path, "body": body[:600]}
        return kind


class Phone:
    """One supervisor's phone, logged in once."""

    def __init__(self, name: str, base: str, journal: Journal, rng: random.Random) -> None:
        self.name, self.base, self.journal, self.rng = name, base, journal, rng
        self.browser = soak.Browser(base, soak.Recorder(started=time.monotonic()))
        if not self.browser.log_in(name):
            raise prod_check.SetupError(f"{name} could not log in")

    def request(self, who: str, method: str, path: str, **kwargs) -> tuple[int, str, dict]:
        started = self.journal.now()
        try:
            response = self.browser.session.request(
                method, self.base + path, timeout=70, allow_redirects=False, verify=False, **kwargs
            )
            status, body, headers = response.status_code, response.text, response.headers
        except requests.RequestException as error:
            status, body, headers = 0, repr(error), {}
        self.journal.add(who, started, status, body, path)
        return status, body, headers

    def new_draft(self, title: str, photos: list[bytes]) -> Draft | None:
        """The form, as the person opens it (again, while it fails): its token and a project."""
        for pause in (0, *RESENDS):
            time.sleep(pause)
            status, page, _ = self.request("form", "GET", "/issues/new/")
            token = soak.TOKEN_INPUT.search(page) if status == 200 else None
            if token:
                select = soak.PROJECT_SELECT.search(page)
                choices = (
                    soak.OPTION.findall(select.group(1))
                    if select
                    else soak.HIDDEN_PROJECT.findall(page)
                )
                csrf = self.browser.csrf(page)
                return Draft(token.group(1), self.rng.choice(choices), title, photos, csrf)
        return None

    def send(self, draft: Draft, pauses: tuple[float, ...] = RESENDS) -> bool:
        """Sends the draft, and again after each pause while the server fails; True once filed."""
        fields = loadtest.filing_fields(draft.csrf, draft.token, draft.project)
        fields["title"] = draft.title
        files = [("photos", (f"f{n}.jpg", p, "image/jpeg")) for n, p in enumerate(draft.photos)]
        headers = {"Referer": self.base + "/issues/new/", "X-Requested-With": "XMLHttpRequest"}
        for pause in (0, *pauses):
            time.sleep(pause)
            draft.tries += 1
            status, body, answer = self.request(
                "file", "POST", "/issues/new/", data=fields, files=files, headers=headers
            )
            filed = soak.ISSUE_URL.match(answer.get("X-Location", "")) if status == 200 else None
            if filed:
                with self.journal.lock:
                    self.journal.accepted[draft.token] = int(filed.group(1))
                    self.journal.accepted_at[draft.token] = self.journal.now()
                draft.issue = int(filed.group(1))
                return True
            if 0 < status < 500:  # refused: the phone shows the form to correct
                with self.journal.lock:
                    self.journal.refused.append(
                        {"title": draft.title, "status": status, "body": body[:300]}
                    )
                return True
        return False


def file_steadily(phone: Phone, number: int, stop: threading.Event, photos: list[bytes]) -> None:
    journal = phone.journal
    due = time.monotonic() + number * PERIOD / CLIENTS
    sequence = 0
    while not stop.wait(max(0.0, due - time.monotonic())):
        due += PERIOD
        sequence += 1
        title = f"{MARK} {number}-{sequence}"
        try:
            draft = phone.new_draft(title, [phone.rng.choice(photos)])
            if draft is None:
                continue  # the form never opened: nothing typed, nothing to lose
            with journal.lock:
                journal.titles[draft.token] = title
            if not phone.send(draft):
                with journal.lock:
                    journal.kept.append((phone, draft))
        except Exception as error:  # a bug here must not look like a quiet server
            with journal.lock:
                journal.client_errors.append(f"{title}: {error!r}"[:300])


def read_steadily(phone: Phone, key: str, stop: threading.Event) -> None:
    """A supervisor's pages, a visitor's page and the API, in turn."""
    visitor = requests.Session()
    steps = [
        ("read", "/issues/", {}),
        ("read", "/me/", {}),
        ("public", "/projects/", {"visitor": True}),
        ("api", "/api/v1/issues", {"headers": {"Authorization": f"Bearer {key}"}}),
    ]
    turn = 0
    while not stop.wait(READ_EVERY):
        who, path, options = steps[turn % len(steps)]
        turn += 1
        if options.get("visitor"):
            started = phone.journal.now()
            try:
                response = visitor.get(phone.base + path, timeout=70, verify=False)
                status, body = response.status_code, response.text
            except requests.RequestException as error:
                status, body = 0, repr(error)
            phone.journal.add(who, started, status, body, path)
        else:
            phone.request(who, "GET", path, headers=options.get("headers", {}))


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Fault:
    name: str
    started: float
    back: float | None = None  # the dependency returned (None: it never left)
    ended: float | None = None  # the next fault's start, or the end of the load
    note: str = ""
    extra: dict = field(default_factory=dict)


class WorkerKeeper(threading.Thread):
    """Does what systemd does for qunzhong-worker.service: a worker that exits is started again
    after RestartSec."""

    def __init__(self, stack: prod_check.Stack, journal: Journal) -> None:
        super().__init__(daemon=True)
        self.stack, self.journal = stack, journal
        self.stopping = threading.Event()
        self.restarts: list[dict] = []
        self.cmd = [prod_check.PYTHON, "manage.py", "db_worker", "--no-reload", "--interval", "1"]

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            proc = self.stack.procs["worker"]
            if proc.poll() is None:
                continue
            died = self.journal.now()
            if self.stopping.wait(WORKER_RESTART_SECONDS):
                return
            with self.stack.logs["worker"].open("ab") as log:
                self.stack.procs["worker"] = subprocess.Popen(
                    self.cmd,
                    cwd=prod_check.ROOT,
                    env=self.stack.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.restarts.append(
                {"exited_s": round(died, 1), "status": proc.returncode, "restarted_s": self.now()}
            )

    def now(self) -> float:
        return round(self.journal.now(), 1)


def database(stack: prod_check.Stack) -> psycopg.Connection:
    return psycopg.connect(
        f"host=127.0.0.1 port={PG_PORT} user=postgres dbname={stack.db_name}", autocommit=True
    )


def wait_until(check, seconds: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return True
        time.sleep(every)
    return False


def kill_db_worker(fault: Fault, stack: prod_check.Stack, journal: Journal) -> None:
    running = (
        "SELECT count(*) FROM django_tasks_database_dbtaskresult "
        "WHERE status = 'RUNNING' AND task_path LIKE %s"
    )
    with database(stack) as conn:
        during = wait_until(
            lambda: conn.execute(running, ("%.deliver",)).fetchone()[0] > 0, 30, every=0.05
        )
        victim = stack.procs["worker"]
        os.kill(victim.pid, signal.SIGKILL)
        queued = conn.execute(
            "SELECT count(*) FROM supervision_delivery WHERE status = 'pending'"
        ).fetchone()[0]
    victim.wait(10)
    fault.note = (
        f"killed pid {victim.pid} {'while a delivery ran' if during else '(no delivery running)'}"
        f", {queued} pending; a new worker {WORKER_RESTART_SECONDS} s later (Restart=always)"
    )
    wait_until(lambda: stack.procs["worker"] is not victim, 30)
    fault.back = journal.now()


def kill_gunicorn_worker(
    fault: Fault, stack: prod_check.Stack, journal: Journal, phone: Phone, big: list[bytes]
) -> None:
    master = stack.procs["gunicorn"].pid
    before = soak.worker_pids(master)
    draft = phone.new_draft(f"{MARK} big-upload", big)
    result: dict = {}
    if draft is None:
        fault.note = "the form did not open"
        return
    with journal.lock:
        journal.titles[draft.token] = draft.title
    sender = threading.Thread(target=lambda: result.update(filed=phone.send(draft)))
    sender.start()
    # The worker on the large upload is the one busy for two windows running: a small photo
    # takes a worker well under one.
    victim, candidate = None, None
    deadline = time.monotonic() + 20
    while victim is None and time.monotonic() < deadline and sender.is_alive():
        first = {pid: soak.cpu_seconds(pid) for pid in soak.worker_pids(master)}
        time.sleep(0.2)
        used = {pid: soak.cpu_seconds(pid) - cpu for pid, cpu in first.items()}
        busiest = max(used, key=used.get, default=None)
        busy = busiest if busiest is not None and used[busiest] > 0.12 else None
        victim = busy if busy is not None and busy == candidate else None
        candidate = busy
    if victim is None:
        fault.note = "no worker was seen working on the upload"
        sender.join()
        return
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(set(soak.worker_pids(master)) - {victim}) >= len(before), 60)
    fault.back = journal.now()
    sender.join()
    if not result.get("filed"):
        with journal.lock:
            journal.kept.append((phone, draft))
    fault.note = (
        f"killed pid {victim}, the busiest worker while 4 large photos were being filed; "
        f"that filing took {draft.tries} tries"
    )
    fault.extra["upload_tries"] = draft.tries


def recovery(answers: list[Answer], fault: Fault) -> tuple[float | None, bool]:
    """Seconds from the dependency's return to the end of the last failed request started after
    it (0 when none failed), and whether the window ends with requests succeeding."""
    if fault.back is None:
        return None, True
    after = [a for a in answers if fault.back <= a.started < (fault.ended or float("inf"))]
    failed = [a.ended for a in after if a.seen != "ok"]
    recovered = bool(after) and after[-1].seen == "ok"
    return (round(max(failed) - fault.back, 1) if failed else 0.0), recovered


def check_database(stack, media: Path, journal: Journal, robot: Robot, mail: Path) -> dict:
    """What the server has, against what the clients were told."""
    with database(stack) as conn:
        issues = conn.execute(
            "SELECT id, idempotency_key, title FROM supervision_issue WHERE title LIKE %s",
            (f"{MARK}%",),
        ).fetchall()
        photos = conn.execute(
            "SELECT p.id, p.issue_id, p.image, p.thumbnail, i.title "
            "FROM supervision_photo p LEFT JOIN supervision_issue i ON i.id = p.issue_id"
        ).fetchall()
        deliveries = conn.execute(
            "SELECT d.id, d.channel, d.target, d.subject, d.body, d.status, d.attempts, i.id "
            "FROM supervision_delivery d JOIN supervision_issueevent e ON e.id = d.event_id "
            "JOIN supervision_issue i ON i.id = e.issue_id WHERE i.title LIKE %s",
            (f"{MARK}%",),
        ).fetchall()
    by_token = collections.defaultdict(list)
    by_title = collections.defaultdict(list)
    for pk, token, title in issues:
        by_token[token].append(pk)
        by_title[title].append(pk)
    lost = [
        {"token": token, "issue": pk, "title": journal.titles.get(token)}
        for token, pk in journal.accepted.items()
        if by_token.get(token) != [pk]
    ]
    duplicated = [
        {"title": title, "issues": pks} for title, pks in by_title.items() if len(pks) > 1
    ] + [{"token": token, "issues": pks} for token, pks in by_token.items() if len(pks) > 1]
    missing_files = [
        {"photo": pk, "issue": issue, "file": name}
        for pk, issue, image, thumb, _ in photos
        for name in (image, thumb)
        if name and not (media / name).is_file()
    ]
    with_photos = {issue for _, issue, *_ in photos}
    without_photos = [
        {"issue": pk, "title": title} for pk, _, title in issues if pk not in with_photos
    ]

    hooks = collections.Counter((path, content) for _, path, content in robot.received)
    mails = emails_sent(mail)
    under, over, per_delivery = [], [], []
    robot_for = set()
    for pk, channel, target, subject, body, status, attempts, issue in deliveries:
        if channel == "webhook":
            robot_for.add(issue)
            received = hooks[(urllib.parse.urlsplit(target).path, body)]
        else:
            received = mails[(target, subject)]
        row = {"delivery": pk, "issue": issue, "channel": channel, "status": status}
        row["attempts"] = attempts
        row["received"] = received
        per_delivery.append(row)
        if received == 0:
            under.append(row)
        elif received > MAX_ATTEMPTS:
            over.append(row)
    for pk, _, title in issues:
        if pk not in robot_for:
            under.append({"issue": pk, "title": title, "problem": "no robot delivery made"})
    return {
        "issues_of_the_run": len(issues),
        "accepted_by_clients": len(journal.accepted),
        "lost": lost,
        "duplicated": duplicated,
        "photo_rows": len(photos),
        "photo_files_missing": missing_files,
        "issues_without_photos": without_photos,
        "deliveries": len(deliveries),
        "deliveries_under": under,
        "deliveries_over": over,
        "received_per_delivery": collections.Counter(r["received"] for r in per_delivery),
    }


def window_of(faults: list[Fault], at: float) -> str:
    name = BASELINE
    for fault in faults:
        if at >= fault.started:
            name = fault.name
    return name


def main() -> int:
    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    if os.geteuid() != 0:
        say("make faults needs root: runuser for PostgreSQL, mount for the media disk")
        return 1
    scratch = Path(tempfile.mkdtemp(prefix="qunzhong-faults-"))
    mail = scratch / "mail"
    mail.mkdir()
    postgres = Postgres(PG_PORT)
    redis_server = Redis(REDIS_PORT, scratch)
    media = MediaDisk(MEDIA_MB)
    journal = Journal(started=time.monotonic() + 3600)  # set again when the load starts
    robot = Robot(journal.started)
    threading.Thread(target=robot.serve_forever, daemon=True).start()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    faults: list[Fault] = []
    report: dict = {}
    try:
        postgres.start()
        redis_server.start()
        say(
            f"== faults: own PostgreSQL ({postgres.bin.parent.name}) on :{PG_PORT}, Redis on "
            f":{REDIS_PORT}, MEDIA_ROOT on {media.kind or 'the ordinary disk'} "
            f"({MEDIA_MB} MB), robot {robot.base}"
        )
        extra = {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mail),
        }
        with prod_check.running_stack(
            title="faults", label="faults", redis_db=0, media_root=media.path, extra_env=extra
        ) as stack:
            stack.manage("load_demo", env={"DJANGO_DEBUG": "1"}, what="load_demo")
            stack.manage("shell", "-c", HOOKS_SCRIPT.replace("BASE", robot.base), what="robots")
            script = soak.DATA_SCRIPT.replace("NAMES", repr(loadtest.SUPERVISORS))
            out = stack.manage("shell", "-c", script, what="accounts and keys")
            data = json.loads(out.strip().splitlines()[-1])
            names = sorted(data["supervisors"])
            photos = [loadtest.small_jpeg((640, 480)) for _ in range(3)]
            big = [loadtest.small_jpeg((2400, 1800)) for _ in range(4)]
            phones = [
                Phone(names[n % len(names)], stack.base, journal, random.Random(n))
                for n in range(CLIENTS + 2)
            ]
            reader, uploader = phones[CLIENTS], phones[CLIENTS + 1]
            keeper = WorkerKeeper(stack, journal)

            journal.started = robot.started = time.monotonic()
            keeper.start()
            threads = [
                threading.Thread(
                    target=file_steadily, args=(phones[n], n, stop, photos), daemon=True
                )
                for n in range(CLIENTS)
            ]
            threads.append(
                threading.Thread(
                    target=read_steadily,
                    args=(reader, data["supervisors"][reader.name]["key"], stop),
                    daemon=True,
                )
            )
            for thread in threads:
                thread.start()
            say(
                f"   load: {CLIENTS} phones filing every {PERIOD:g} s, a reader every "
                f"{READ_EVERY:g} s; {WARMUP:g} s of warm-up, then each fault and {GAP:g} s quiet"
            )
            time.sleep(WARMUP)

            def begin(fault: Fault) -> Fault:
                if faults:
                    faults[-1].ended = fault.started
                faults.append(fault)
                return fault

            fault = begin(Fault("PostgreSQL restarted (pg_ctl restart -m fast)", journal.now()))
            postgres.ctl("restart")
            fault.back = journal.now()
            fault.note = f"down and back in {fault.back - fault.started:.1f} s"
            say(f"   1. {fault.name}: {fault.note}")
            time.sleep(GAP)

            fault = begin(Fault(f"Redis stopped for {REDIS_DOWN:g} s", journal.now()))
            redis_server.stop()
            time.sleep(REDIS_DOWN)
            redis_server.start()
            fault.back = journal.now()
            fault.note = "stopped (SIGTERM), started again on the same port"
            say(f"   2. {fault.name}: {fault.note}")
            time.sleep(GAP)

            fault = begin(Fault("db_worker killed with -9 during deliveries", journal.now()))
            kill_db_worker(fault, stack, journal)
            say(f"   3. {fault.name}: {fault.note}")
            time.sleep(GAP)

            fault = begin(Fault("gunicorn worker killed with -9 during an upload", journal.now()))
            kill_gunicorn_worker(fault, stack, journal, uploader, big)
            say(f"   4. {fault.name}: {fault.note}")
            time.sleep(GAP)

            if media.kind:
                fault = begin(Fault(f"media disk full for {DISK_FULL:g} s", journal.now()))
                filled = media.fill()
                time.sleep(DISK_FULL)
                media.empty()
                fault.back = journal.now()
                fault.note = f"{media.kind} of {MEDIA_MB} MB filled with {filled >> 20} MB ballast"
                say(f"   5. {fault.name}: {fault.note}")
                time.sleep(GAP)
            else:
                say("   5. media disk full: not run (neither a tmpfs nor a loop mount works here)")

            stop.set()
            for thread in threads:
                thread.join()
            faults[-1].ended = journal.now()
            # What is still on a phone: the person taps 「现在发送」.
            for phone, draft in list(journal.kept):
                if phone.send(draft, pauses=(5, 15)):
                    journal.kept.remove((phone, draft))
            # Deliveries settle: retries wait up to 2.5 minutes (deliveries.BACKOFF_SECONDS).
            settled = wait_until(lambda: _pending(stack) == 0, 240, every=2)
            keeper.stopping.set()
            keeper.join()
            report = build_report(stack, media, journal, robot, mail, faults, keeper, settled)
    except (prod_check.SetupError, OSError, psycopg.Error) as error:
        say(f"FAIL  setting up or running: {error}")
        return 1
    finally:
        stop.set()
        robot.shutdown()
        redis_server.stop()
        postgres.close()
        media.close()
        shutil.rmtree(scratch, ignore_errors=True)

    print_report(report)
    missed = budget(report)
    report["budget_missed"] = missed
    OUT.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    say(f"\nwritten: {OUT.relative_to(ROOT)}")
    if missed:
        say("BUDGET MISSED: " + "; ".join(missed))
        return 1
    say(
        "budget met: nothing lost or duplicated, every photo on disk, every delivery sent, "
        "only the Chinese busy pages seen, each recovery within 30 s"
    )
    return 0


def tracebacks(stack: prod_check.Stack) -> dict[str, dict[str, int]]:
    """For each log, how many tracebacks ended in which exception (its last line, trimmed)."""
    found = {}
    for name in ("gunicorn", "worker"):
        path = stack.logs.get(name)
        text = path.read_text(errors="replace") if path and path.exists() else ""
        ends: collections.Counter = collections.Counter()
        for block in text.split("Traceback (most recent call last):")[1:]:
            lines = [line for line in block.splitlines() if line and not line.startswith(" ")]
            ends[(lines[0] if lines else "?")[:120]] += 1
        found[name] = dict(ends.most_common(8))
    return found


def _pending(stack) -> int:
    with database(stack) as conn:
        return conn.execute(
            "SELECT count(*) FROM supervision_delivery WHERE status = 'pending'"
        ).fetchone()[0]


def build_report(stack, media, journal, robot, mail, faults, keeper, settled) -> dict:
    checks = check_database(stack, media.path, journal, robot, mail)
    # Each issue belongs to the fault during which its client saw it accepted.
    issue_at = {pk: journal.accepted_at[token] for token, pk in journal.accepted.items()}
    rows = []
    for fault in [Fault(BASELINE, 0.0, ended=faults[0].started), *faults]:
        # An answer belongs to the window in which the person saw it.
        answers = [
            a for a in journal.answers if fault.started <= a.ended < (fault.ended or float("inf"))
        ]
        errors = collections.Counter(f"{a.who}: {a.seen}" for a in answers if a.seen != "ok")
        seconds, recovered = recovery(journal.answers, fault)
        if fault.name.startswith("db_worker") and fault.back is not None:
            first = next((t for t, _, _ in robot.received if t >= fault.back), None)
            seconds = round(first - fault.back, 1) if first is not None else None
            recovered = first is not None

        def here(pk: int | None, name: str = fault.name) -> bool:
            at = issue_at.get(pk) if pk is not None else None
            return at is not None and window_of(faults, at) == name

        rows.append(
            {
                "fault": fault.name,
                "note": fault.note,
                "requests": len(answers),
                "errors_seen": dict(errors),
                "recovery_s": seconds,
                "recovered": recovered,
                "accepted": sum(1 for pk in issue_at if here(pk)),
                "lost": sum(1 for x in checks["lost"] if here(x["issue"])),
                "duplicated": sum(
                    1 for x in checks["duplicated"] if any(here(pk) for pk in x["issues"])
                ),
                "photos_missing": sum(1 for x in checks["photo_files_missing"] if here(x["issue"]))
                + sum(1 for x in checks["issues_without_photos"] if here(x["issue"])),
                "deliveries_under": sum(1 for x in checks["deliveries_under"] if here(x["issue"])),
                "deliveries_over": sum(1 for x in checks["deliveries_over"] if here(x["issue"])),
                **fault.extra,
            }
        )
    return {
        "settings": {
            "clients": CLIENTS,
            "period_s": PERIOD,
            "gap_s": GAP,
            "redis_down_s": REDIS_DOWN,
            "disk_full_s": DISK_FULL,
            "resend_pauses_s": RESENDS,
            "media_fs": media.kind,
            "postgres": str(stack.env.get("DATABASE_URL", "")).rsplit("@", 1)[-1],
            "max_delivery_attempts": MAX_ATTEMPTS,
        },
        "faults": rows,
        "totals": {
            "requests": len(journal.answers),
            "answers": dict(collections.Counter(a.seen for a in journal.answers)),
            "accepted": len(journal.accepted),
            "refused": journal.refused,
            "client_errors": journal.client_errors,
            "still_on_a_phone": [draft.title for _, draft in journal.kept],
            "lost": checks["lost"],
            "duplicated": checks["duplicated"],
            "photo_rows": checks["photo_rows"],
            "photo_files_missing": checks["photo_files_missing"],
            "issues_without_photos": checks["issues_without_photos"],
            "issues_of_the_run": checks["issues_of_the_run"],
            "deliveries": checks["deliveries"],
            "deliveries_under": checks["deliveries_under"],
            "deliveries_over": checks["deliveries_over"],
            "received_per_delivery": checks["received_per_delivery"],
            "deliveries_settled": settled,
            "robot_posts": len(robot.received),
        },
        "worker_restarts": keeper.restarts,
        "logs": soak.log_findings(stack),
        "log_tracebacks": tracebacks(stack),
        "samples": journal.samples,
    }


def print_report(report: dict) -> None:
    if not report:
        return
    say(
        f"\n{'fault':<48}{'errors seen by clients':<44}{'recovery':>9}{'lost':>6}{'dup':>5}"
        f"{'photos':>8}{'deliv.':>8}"
    )
    for row in report["faults"]:
        errors = ", ".join(f"{n}× {k}" for k, n in sorted(row["errors_seen"].items())) or "none"
        seconds = "-" if row["recovery_s"] is None else f"{row['recovery_s']:.1f} s"
        deliveries = f"{row['deliveries_under']}/{row['deliveries_over']}"
        say(
            f"{row['fault'][:47]:<48}{errors[:43]:<44}{seconds:>9}{row['lost']:>6}"
            f"{row['duplicated']:>5}{row['photos_missing']:>8}{deliveries:>8}"
        )
        if len(errors) > 43:
            say(f"{'':<48}{errors}")
    t = report["totals"]
    say(
        f"(deliv. = under/over. {t['requests']} requests; {t['accepted']} submissions accepted, "
        f"{t['issues_of_the_run']} issues of the run in the database; {t['photo_rows']} photo "
        f"rows; {t['deliveries']} deliveries, received per delivery "
        f"{dict(t['received_per_delivery'])}; {len(t['still_on_a_phone'])} still on a phone)"
    )
    say(f"answers: {json.dumps(t['answers'], ensure_ascii=False)}")
    say(f"db_worker restarts (as systemd would): {json.dumps(report['worker_restarts'])}")
    say(f"logs: {json.dumps(report['logs'], ensure_ascii=False)}")
    say(f"tracebacks in the logs: {json.dumps(report['log_tracebacks'], ensure_ascii=False)}")
    for kind, sample in report["samples"].items():
        say(f"seen {kind!r}: {json.dumps(sample, ensure_ascii=False)[:300]}")


def budget(report: dict) -> list[str]:
    if not report:
        return ["the run did not finish"]
    missed = []
    t = report["totals"]
    for name, items in [
        ("accepted submission(s) lost", t["lost"]),
        ("duplicate issue(s)", t["duplicated"]),
        ("photo file(s) missing", t["photo_files_missing"]),
        ("issue(s) without their photos", t["issues_without_photos"]),
        ("delivery(ies) never received", t["deliveries_under"]),
        (f"delivery(ies) received more than {MAX_ATTEMPTS} times", t["deliveries_over"]),
        ("submission(s) still on a phone", t["still_on_a_phone"]),
        ("submission(s) refused (4xx)", t["refused"]),
        ("error(s) in this script's clients", t["client_errors"]),
    ]:
        if items:
            missed.append(f"{len(items)} {name}")
    wrong = {k: n for k, n in t["answers"].items() if not ACCEPTABLE.match(k)}
    if wrong:
        missed.append(f"answers that are not the Chinese busy page: {wrong}")
    for row in report["faults"]:
        if row["recovery_s"] is not None and (
            row["recovery_s"] > BUDGET_RECOVERY or not row["recovered"]
        ):
            missed.append(f"{row['fault']}: recovery {row['recovery_s']} s")
    if not t["deliveries_settled"]:
        missed.append("deliveries still pending 4 minutes after the load")
    return missed


if __name__ == "__main__":
    sys.exit(main())

"""`make soak`: the mixed load for SOAK_SECONDS (default 1800) at SOAK_RATE requests a second
(default 50) through nginx, as people use the site, on the production stack of `make prod-check`
(deploy/prod_check.py: nginx with TLS → gunicorn.conf.py → PostgreSQL, Redis db SOAK_REDIS_DB
(12), db_worker), with the demo world loaded.

Open loop: requests start on a fixed timetable whatever the answers, so a slow server meets the
same rate rather than fewer users. The mix, per request: public pages (home, project list,
project page, site notice with its QR code) 45 %; logged-in supervisors' pages (issue list, an
issue, the feed 监督群, 我的) 20 %; the JSON API with a supervisor's key 15 %; filing with photos
(the form, then the POST with its idempotency token) 10 %; staff steps (the issue page, then 签收,
答复 or a comment through the normal POST URLs, on the issues filed during the run) 10 %.

A warm-up of SOAK_WARMUP seconds (30) at the same rate comes first: its requests count for
errors, not for the timings. Every 5 s the gunicorn workers' resident memory (VmRSS) and the
database's connections are sampled. Printed, and written to benchmarks/soak.json: requests,
errors, p50 and p95 per kind; memory per worker; recycled workers; peak connections; the rate
achieved; the CPU time the stack used (per request, and in cores) and the machine's load average,
since other work on the machine slows the answers. The exit status is 1 when a budget is
missed: an error, a p95 of 500 ms or more, worker memory growing by 10 % or more, or the rate not
held (less than 95 % of it achieved, or requests the client could not start for the server's
slowness). Logging in happens before the timetable starts: a person does not log in again
because the site is slow, they wait for their own browser (2 per supervisor, 4 per member of
staff).

Memory and recycling: gunicorn.conf.py restarts a worker after 2000 to 3000 requests, so at 50
requests a second no worker lives through a long run (about 4 minutes each with 5 workers).
Growth is judged on (a) the fleet: the mean RSS of the live workers at the start (after the
warm-up) against the end; (b) each worker alive at both, against itself; and (c) each worker's
own life, from its first sample 30 s or more after it started (and after the warm-up) to its last,
when those are 60 s or more apart: a younger worker is still filling its caches.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import random
import re
import runpy
import signal
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests
import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import loadtest  # noqa: E402
from deploy import prod_check  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", "1800"))
RATE = float(os.environ.get("SOAK_RATE", "50"))
WARMUP = float(os.environ.get("SOAK_WARMUP", "30"))
REDIS_DB = int(os.environ.get("SOAK_REDIS_DB", "12"))
THREADS = int(os.environ.get("SOAK_THREADS", "64"))
SAMPLE_EVERY = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
OUT = ROOT / "benchmarks" / "soak.json"

_conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
RECYCLE = f"{_conf['max_requests']} + 0–{_conf['max_requests_jitter']}"
BUDGET_P95_MS = 500
BUDGET_GROWTH_PCT = 10.0
BUDGET_RATE_SHARE = 0.95

# (share of the actions, requests each makes): 45 + 20 + 15 + 5×2 + 5×2 = 100 requests per 90.
MIX = {"public": (45, 1), "supervisor": (20, 1), "api": (15, 1), "file": (5, 2), "staff": (5, 2)}
REQUESTS_PER_ACTION = sum(w * n for w, n in MIX.values()) / sum(w for w, _ in MIX.values())

# The demo world, read once through the app's own code, and an API key for each supervisor.
DATA_SCRIPT = """
import json
from accounts.models import User
from api.tokens import create_token
from supervision import services
from supervision.models import Issue, Project

names = NAMES
supervisors = {}
for user in User.objects.filter(username__in=names).order_by("username"):
    if services.is_serving_supervisor(user):
        visible = Issue.objects.visible_to(user).order_by("-pk").values_list("pk", flat=True)
        supervisors[user.username] = {
            "key": create_token(user, "soak")[1],
            "issues": list(visible[:200]),
        }
bureau = User.objects.filter(role=User.Role.BUREAU, is_superuser=False, is_active=True)
bureau = bureau.order_by("pk").first()
handler, staff_issues = {}, {}
for project in Project.objects.select_related("neighbourhood"):
    department = services.route_issue(project, "quality").department
    member = department and department.members.filter(
        role=User.Role.STAFF, is_active=True
    ).order_by("pk").first()
    handler[project.pk] = (member or bureau).username
for name in set(handler.values()):
    user = User.objects.get(username=name)
    issues = Issue.objects.visible_to(user).filter(status__in=Issue.OPEN_STATUSES)
    staff_issues[name] = [i.pk for i in issues.order_by("-pk")[:200] if services.may_comment(user, i)]
print(json.dumps({
    "projects": list(Project.objects.order_by("pk").values_list("pk", flat=True)),
    "supervisors": supervisors,
    "handler": handler,
    "staff_issues": staff_issues,
}))
"""

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TOKEN_INPUT = re.compile(r'name="token" value="([^"]+)"')
PROJECT_SELECT = re.compile(r'<select name="project"[^>]*>(.*?)</select>', re.S)
HIDDEN_PROJECT = re.compile(r'type="hidden" name="project" value="(\d+)"')
OPTION = re.compile(r'<option value="(\d+)"')
ISSUE_URL = re.compile(r"^/issues/(\d+)/$")


@dataclass
class Result:
    kind: str
    at: float  # seconds since the load started (when it was due)
    status: int
    ms: float
    ok: bool


@dataclass
class Recorder:
    started: float
    results: list[Result] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, status: int, ms: float, ok: bool, detail: dict) -> None:
        with self.lock:
            self.results.append(Result(kind, time.monotonic() - self.started, status, ms, ok))
            if not ok and len(self.errors) < 50:
                self.errors.append({"kind": kind, "status": status, **detail})


class Browser:
    """One person's browser (or one API client): its own cookies and kept-alive connections."""

    def __init__(self, base: str, recorder: Recorder) -> None:
        self.base = base
        self.recorder = recorder
        self.session = requests.Session()

    def send(
        self, kind: str, method: str, path: str, *, expect=(200,), check=None, **kwargs
    ) -> requests.Response | None:
        """One request, timed and recorded; the response when it is the one expected (status
        in ``expect``, and ``check(response)`` true when given), else None."""
        started = time.perf_counter()
        response = None
        try:
            response = self.session.request(
                method,
                self.base + path,
                timeout=30,
                allow_redirects=False,
                # The run's self-signed certificate; per request, or REQUESTS_CA_BUNDLE wins.
                verify=False,
                **kwargs,
            )
            status = response.status_code
        except requests.RequestException as error:
            status, detail = 0, {"path": path, "error": repr(error)[:300]}
        ms = (time.perf_counter() - started) * 1000
        ok = response is not None and status in expect and (check is None or bool(check(response)))
        if response is not None and not ok:
            detail = {
                "path": path,
                "location": response.headers.get("Location", ""),
                "body": response.text[:300],
            }
        self.recorder.add(kind, status, ms, ok, {} if ok else detail)
        return response if ok else None

    def get(self, kind: str, path: str, **kwargs) -> requests.Response | None:
        return self.send(kind, "GET", path, **kwargs)

    def post(self, kind: str, path: str, data: dict, *, files=None, check=None):
        """A form's POST, answered by a redirect (302) as a successful one is."""
        headers = {"Referer": self.base + path}
        return self.send(
            kind, "POST", path, data=data, files=files, headers=headers, expect=(302,), check=check
        )

    def csrf(self, page: str = "") -> str:
        found = CSRF_INPUT.search(page)
        return found.group(1) if found else self.session.cookies.get("csrftoken", "")

    def log_in(self, username: str) -> bool:
        page = self.get("login", "/accounts/login/")
        if page is None:
            return False
        form = {
            "csrfmiddlewaretoken": self.csrf(page.text),
            "username": username,
            "password": loadtest.PASSWORD,
        }
        return self.post("login", "/accounts/login/", form) is not None


class Browsers:
    """Browsers per account, lent to one request flow at a time (a requests.Session is not
    shared between threads). Each account has PER_ACCOUNT logged-in browsers, made before the
    load starts (``log_in_all``): a person does not log in again because the site is slow, they
    wait. Visitors (``""``) get a new browser whenever all are busy."""

    PER_ACCOUNT = 2  # a member of staff: 4

    def __init__(self, base: str, recorder: Recorder) -> None:
        self.base, self.recorder = base, recorder
        self.idle: dict[str, list[Browser]] = collections.defaultdict(list)
        self.ready = threading.Condition()

    def log_in_all(self, usernames: list[str], per_account: int = PER_ACCOUNT) -> None:
        def one(username: str) -> None:
            browser = Browser(self.base, self.recorder)
            if browser.log_in(username):
                self.give_back(username, browser)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(one, [u for u in usernames for _ in range(per_account)]))

    def borrow(self, username: str) -> Browser | None:
        with self.ready:
            if username and not self.ready.wait_for(lambda: self.idle[username], timeout=60):
                detail = {"error": f"{username}'s browsers all busy for 60 s"}
                self.recorder.add("browser-wait", 0, 0, False, detail)
                return None
            if self.idle[username]:
                return self.idle[username].pop()
        return Browser(self.base, self.recorder)

    def give_back(self, username: str, browser: Browser) -> None:
        with self.ready:
            self.idle[username].append(browser)
            self.ready.notify_all()


class Load:
    """The actions of the mix, and what the run has filed so far for the staff to take on."""

    def __init__(self, base: str, data: dict, recorder: Recorder) -> None:
        self.browsers = Browsers(base, recorder)
        self.recorder = recorder
        self.projects = data["projects"]
        self.supervisors = data["supervisors"]
        self.names = sorted(self.supervisors)
        self.handler = {int(k): v for k, v in data["handler"].items()}
        self.staff_issues = data["staff_issues"]
        self.photos = [loadtest.small_jpeg((800, 600)) for _ in range(4)]
        self.lock = threading.Lock()
        self.to_sign: list[tuple[int, str]] = []  # (issue, handler)
        self.to_answer: list[tuple[int, str]] = []
        self.filed = 0

    def action(self, name: str, rng: random.Random) -> None:
        getattr(self, name)(rng)

    def _with(self, username: str, flow) -> None:
        browser = self.browsers.borrow(username)
        if browser is None:
            return
        try:
            flow(browser)
        finally:
            self.browsers.give_back(username, browser)

    def public(self, rng: random.Random) -> None:
        project = rng.choice(self.projects)
        kind, path = rng.choice(
            [
                ("home", "/"),
                ("project-list", "/projects/"),
                ("project", f"/projects/{project}/"),
                ("notice", f"/projects/{project}/notice/"),
            ]
        )
        self._with("", lambda b: b.get(kind, path))

    def supervisor(self, rng: random.Random) -> None:
        name = rng.choice(self.names)
        with self.lock:
            issue = rng.choice(self.supervisors[name]["issues"] or [0])
        kind, path = rng.choice(
            [
                ("issue-list", "/issues/"),
                ("issue", f"/issues/{issue}/"),
                ("feed", "/feed/"),
                ("me", "/me/"),
            ]
        )
        self._with(name, lambda b: b.get(kind, path))

    def api(self, rng: random.Random) -> None:
        name = rng.choice(self.names)
        with self.lock:
            issue = rng.choice(self.supervisors[name]["issues"] or [0])
        path = rng.choice(
            [
                "/api/v1/me",
                "/api/v1/projects",
                "/api/v1/issues",
                f"/api/v1/issues/{issue}",
                "/api/v1/feed",
                "/api/v1/notifications",
            ]
        )
        headers = {"Authorization": f"Bearer {self.supervisors[name]['key']}"}
        self._with("", lambda b: b.get("api", path, headers=headers))

    def file(self, rng: random.Random) -> None:
        name = rng.choice(self.names)
        photos = rng.sample(self.photos, 2 if rng.random() < 0.2 else 1)

        def flow(b: Browser) -> None:
            form = b.get("file-form", "/issues/new/", check=lambda r: TOKEN_INPUT.search(r.text))
            if form is None:
                return
            page = form.text
            token = TOKEN_INPUT.search(page)
            select = PROJECT_SELECT.search(page)
            choices = OPTION.findall(select.group(1)) if select else HIDDEN_PROJECT.findall(page)
            project = rng.choice(choices)
            fields = loadtest.filing_fields(b.csrf(page), token.group(1), project)
            files = [("photos", (f"soak{n}.jpg", p, "image/jpeg")) for n, p in enumerate(photos)]
            done = b.post(
                "file",
                "/issues/new/",
                fields,
                files=files,
                check=lambda r: ISSUE_URL.match(r.headers.get("Location", "")),
            )
            if done is not None:
                issue = int(ISSUE_URL.match(done.headers["Location"]).group(1))
                with self.lock:
                    self.filed += 1
                    self.to_sign.append((issue, self.handler[int(project)]))
                    self.supervisors[name]["issues"].append(issue)

        self._with(name, flow)

    def staff(self, rng: random.Random) -> None:
        with self.lock:
            queues = [q for q in (self.to_sign, self.to_answer) if q]
            queue = rng.choice(queues) if queues else None
            taken = queue.pop(rng.randrange(len(queue))) if queue else None
        if taken is None:  # nothing filed yet: a comment on an open demo issue
            name = rng.choice([n for n, issues in sorted(self.staff_issues.items()) if issues])
            issue, step = rng.choice(self.staff_issues[name]), "comment"
        else:
            (issue, name), step = taken, "accept" if queue is self.to_sign else "answer"
        fields = {
            "accept": {"deadline": "", "text": ""},
            "answer": {"text": "经核实，已安排施工单位本周内处理，请留意。"},
            "comment": {"text": "已安排人员现场核实。"},
        }[step]
        kind = {"accept": "sign-for", "answer": "answer", "comment": "comment"}[step]

        def flow(b: Browser) -> None:
            page = b.get("staff-page", f"/issues/{issue}/")
            if page is None:
                return
            form = {"csrfmiddlewaretoken": b.csrf(page.text), **fields}
            done = b.post(kind, f"/issues/{issue}/{step}/", form)
            if done is not None and step == "accept":
                with self.lock:
                    self.to_answer.append((issue, name))

        self._with(name, flow)


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{master}$", status, re.M):
            pids.append(int(entry.name))
    return sorted(pids)


def rss_kb(pid: int) -> int | None:
    try:
        found = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    except OSError:
        return None
    return int(found.group(1)) if found else None


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """CPU time of ``pid`` (user + system); with ``children``, also of its children that ended
    (cutime, cstime) and of those still running."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    total = ticks / CLOCK_TICKS
    if children:
        total += sum(cpu_seconds(child) for child in worker_pids(pid))
    return total


class Sampler(threading.Thread):
    """Every 5 s: each gunicorn worker's RSS, the database's connections, and the CPU time of
    the stack's processes."""

    def __init__(self, stack: prod_check.Stack, started: float) -> None:
        super().__init__(daemon=True)
        self.master, self.db_name, self.started = (
            stack.procs["gunicorn"].pid,
            stack.db_name,
            started,
        )
        self.stack_pids = {name: proc.pid for name, proc in stack.procs.items()}
        self.samples: list[tuple[float, dict[int, int]]] = []
        self.connections: list[tuple[float, int]] = []
        self.cpu: list[tuple[float, dict[str, float]]] = []
        self.backend_cpu: dict[int, list[float]] = {}  # PostgreSQL backend: [first, last]
        self.born: dict[int, float] = {}
        self.stopping = threading.Event()
        self.conn = psycopg.connect(prod_check.admin_dsn(), autocommit=True)

    def sample(self) -> None:
        now = time.monotonic() - self.started
        rss = {pid: kb for pid in worker_pids(self.master) if (kb := rss_kb(pid)) is not None}
        for pid in rss:
            self.born.setdefault(pid, now if self.samples else float("-inf"))
        self.samples.append((now, rss))
        backends = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.db_name,)
        ).fetchall()
        self.connections.append((now, len(backends)))
        for (pid,) in backends:
            used = cpu_seconds(pid)
            self.backend_cpu.setdefault(pid, [used, used])[1] = used
        cpu = {name: cpu_seconds(pid, children=True) for name, pid in self.stack_pids.items()}
        cpu["postgres"] = sum(last - first for first, last in self.backend_cpu.values())
        self.cpu.append((now, cpu))

    def run(self) -> None:
        while not self.stopping.wait(SAMPLE_EVERY):
            self.sample()

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.sample()
        self.conn.close()


def run_load(load: Load, recorder: Recorder, seconds: float) -> dict:
    """Starts actions on a fixed timetable for ``seconds``; returns how well it was held."""
    actions = [name for name, (weight, _) in MIX.items() for _ in range(weight)]
    interval = REQUESTS_PER_ACTION / RATE
    rng = random.Random(20)
    seeds = random.Random(21)
    pool = concurrent.futures.ThreadPoolExecutor(THREADS, thread_name_prefix="soak")
    scheduled = 0
    not_started = []
    start = recorder.started
    # What has not started 5 s after the timetable's end is dropped and counted: the server was
    # too slow to let the client start it.
    too_late = start + seconds + 5

    def run_one(name: str, due: float, seed: int) -> None:
        now = time.monotonic()
        if now > too_late:
            not_started.append(name)
            return
        with recorder.lock:
            recorder.lags.append((now - due) * 1000)
        try:
            load.action(name, random.Random(seed))
        except Exception as error:  # a bug here must not look like a quiet server
            recorder.add(name, -1, 0, False, {"error": f"soak client: {error!r}"[:300]})

    while True:
        due = start + scheduled * interval
        if due >= start + seconds:
            break
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        pool.submit(run_one, rng.choice(actions), due, seeds.getrandbits(32))
        scheduled += 1
    pool.shutdown(wait=True)
    return {"actions": scheduled, "not_started": len(not_started)}


def summarize(rows: list[Result], seconds: float) -> list[dict]:
    table = []
    for kind in [*sorted({r.kind for r in rows}), "all"]:
        chosen = rows if kind == "all" else [r for r in rows if r.kind == kind]
        times = [r.ms for r in chosen if r.status > 0]
        table.append(
            {
                "kind": kind,
                "requests": len(chosen),
                "errors": sum(1 for r in chosen if not r.ok),
                "per_second": round(len(chosen) / seconds, 2),
                "p50_ms": round(statistics.median(times)) if times else 0,
                "p95_ms": round(loadtest.percentile(times, 0.95)),
                "max_ms": round(max(times)) if times else 0,
            }
        )
    return table


def memory_report(sampler: Sampler, warmup: float) -> dict:
    samples = sampler.samples
    start_at, start = next(((t, s) for t, s in samples if t >= warmup), samples[-1])
    end_at, end = samples[-1]
    workers = []
    for pid in sorted({pid for _, rss in samples for pid in rss}, key=sampler.born.get):
        seen = [(t, rss[pid]) for t, rss in samples if pid in rss]
        born = sampler.born[pid]
        settled = [(t, kb) for t, kb in seen if t >= max(warmup, born + 30)]
        first, last = (settled[0], settled[-1]) if settled else (None, seen[-1])
        # A life is judged when 60 s or more lie between its first settled sample and its last.
        judged = first is not None and last[0] - first[0] >= 60
        workers.append(
            {
                "pid": pid,
                "started_s": None if born == float("-inf") else round(born),
                "last_seen_s": round(last[0]),
                "alive_at_end": pid in end,
                "rss_start_kb": start.get(pid),
                "rss_end_kb": end.get(pid),
                "life_first_kb": first[1] if first else None,
                "life_last_kb": last[1],
                "life_growth_pct": round(100 * (last[1] - first[1]) / first[1], 1)
                if judged
                else None,
                "peak_kb": max(kb for _, kb in seen),
                "through_window": pid in start and pid in end,
            }
        )
    fleet_start = statistics.mean(start.values()) if start else 0
    fleet_end = statistics.mean(end.values()) if end else 0
    through = [w for w in workers if w["through_window"]]
    for w in through:
        w["growth_pct"] = round(100 * (w["rss_end_kb"] - w["rss_start_kb"]) / w["rss_start_kb"], 1)
    return {
        "start_at_s": round(start_at),
        "end_at_s": round(end_at),
        "fleet_start_kb": round(fleet_start),
        "fleet_end_kb": round(fleet_end),
        "fleet_growth_pct": round(100 * (fleet_end - fleet_start) / fleet_start, 1)
        if fleet_start
        else 0,
        "workers_at_start": len(start),
        "workers_at_end": len(end),
        "recycled": sum(1 for w in workers if not w["alive_at_end"]),
        "worst_through_window_pct": max((w["growth_pct"] for w in through), default=None),
        "worst_life_pct": max(
            (w["life_growth_pct"] for w in workers if w["life_growth_pct"] is not None),
            default=None,
        ),
        "workers": workers,
    }


def cpu_report(sampler: Sampler, warmup: float, rows: list[Result]) -> dict:
    """The stack's CPU time over the measured window: how many cores it used, and per request."""
    start_at, start = next(((t, c) for t, c in sampler.cpu if t >= warmup), sampler.cpu[-1])
    end_at, end = sampler.cpu[-1]
    used = {name: round(end[name] - start[name], 1) for name in end}
    served = sum(1 for r in rows if start_at <= r.at <= end_at) or 1
    span = max(end_at - start_at, 1e-9)
    return {
        "seconds": used,
        "cores": round(sum(used.values()) / span, 2),
        "ms_per_request": round(1000 * sum(used.values()) / served, 1),
    }


def log_findings(stack: prod_check.Stack) -> dict:
    """What the logs say: worker restarts, tracebacks, nginx errors."""

    def read(name: str) -> str:
        path = stack.logs.get(name)
        return path.read_text(errors="replace") if path and path.exists() else ""

    gunicorn, worker, nginx = read("gunicorn"), read("worker"), read("nginx")
    return {
        "gunicorn_workers_booted": gunicorn.count("Booting worker with pid"),
        "gunicorn_autorestarts": gunicorn.count("Autorestarting worker"),
        "gunicorn_worker_timeouts": gunicorn.count("WORKER TIMEOUT"),
        "gunicorn_tracebacks": gunicorn.count("Traceback (most recent call last)"),
        "db_worker_tracebacks": worker.count("Traceback (most recent call last)"),
        "nginx_errors": len(re.findall(r"\[(?:error|crit|alert|emerg)\]", nginx)),
        "nginx_error_lines": re.findall(r"^.*\[(?:error|crit|alert|emerg)\].*$", nginx, re.M)[:5],
    }


def print_report(report: dict) -> None:
    print(f"\n{'kind':<14}{'requests':>9}{'errors':>8}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}")
    for row in report["kinds"]:
        print(
            f"{row['kind']:<14}{row['requests']:>9}{row['errors']:>8}{row['per_second']:>8.1f}"
            f"{row['p50_ms']:>8}{row['p95_ms']:>8}"
        )
    w = report["warmup"]
    print(f"(warm-up, not in the timings: {w['requests']} requests, {w['errors']} errors)")

    m = report["memory"]
    print(
        f"\ngunicorn workers, RSS in MB: start = {m['start_at_s']} s (after the warm-up), "
        f"end = {m['end_at_s']} s; 'life' = from 30 s after the worker started (or the warm-up's "
        f"end) to its last sample, judged when 60 s or more apart"
    )
    print(f"{'pid':>8}{'started':>9}{'start':>8}{'end':>8}{'growth':>8}   life")

    def mb(kb: int | None) -> str:
        return f"{kb / 1024:.0f}" if kb else "-"

    for x in m["workers"]:
        started = "before" if x["started_s"] is None else f"{x['started_s']} s"
        growth = f"{x['growth_pct']:+.1f}%" if "growth_pct" in x else "-"
        fate = "" if x["alive_at_end"] else f", recycled by {x['last_seen_s']} s"
        life = (
            f"{mb(x['life_first_kb'])} → {mb(x['life_last_kb'])} MB ({x['life_growth_pct']:+.1f}%)"
            if x["life_growth_pct"] is not None
            else "too short to judge"
        )
        print(
            f"{x['pid']:>8}{started:>9}{mb(x['rss_start_kb']):>8}{mb(x['rss_end_kb']):>8}"
            f"{growth:>8}   {life}, peak {mb(x['peak_kb'])}{fate}"
        )
    print(
        f"fleet: mean of live workers {m['fleet_start_kb'] / 1024:.0f} MB at start "
        f"({m['workers_at_start']}) → {m['fleet_end_kb'] / 1024:.0f} MB at end "
        f"({m['workers_at_end']}): {m['fleet_growth_pct']:+.1f}%; "
        f"{m['recycled']} worker(s) recycled (max_requests {RECYCLE}); worst worker alive "
        f"through the window: "
        + (
            f"{m['worst_through_window_pct']:+.1f}%"
            if m["worst_through_window_pct"] is not None
            else "none lived through it"
        )
        + "; worst life: "
        + (f"{m['worst_life_pct']:+.1f}%" if m["worst_life_pct"] is not None else "none judged")
    )
    c = report["connections"]
    print(
        f"\ndatabase connections: peak {c['peak']}, mean {c['mean']:.1f} "
        f"(bound: {c['bound']} = workers × DATABASE_POOL_SIZE + db_worker)"
    )
    r = report["rate"]
    print(
        f"rate: {r['achieved']:.1f} requests/s achieved of {r['target']:.0f} "
        f"({r['requests']} in {r['seconds']:.0f} s); start lag p95 {r['lag_p95_ms']:.0f} ms, "
        f"max {r['lag_max_ms']:.0f} ms; {r['actions_not_started']} of {r['actions_scheduled']} "
        f"actions not started by the end (server too slow); {report['filed']} issues filed"
    )
    u = report["cpu"]
    print(
        f"server CPU over the window: {u['cores']:.2f} cores, {u['ms_per_request']:.0f} ms per "
        f"request (s: {json.dumps(u['seconds'])})"
    )
    x = report["machine"]
    print(
        f"machine: {x['cpus']} CPUs, load average {x['loadavg_before'][0]} before, "
        f"{x['loadavg_after'][0]} after; this load generator used "
        f"{x['soak_client_cpu_share']:.2f} CPU"
    )
    print(f"logs: {json.dumps(report['logs'], ensure_ascii=False)}")
    for error in report["error_samples"][:10]:
        print(f"error: {json.dumps(error, ensure_ascii=False)[:400]}")


def budget(report: dict) -> list[str]:
    missed = []
    errors = report["kinds"][-1]["errors"] + report["warmup"]["errors"]
    if errors:
        missed.append(f"{errors} error(s) (budget 0)")
    for row in report["kinds"]:
        if row["p95_ms"] >= BUDGET_P95_MS:
            missed.append(f"p95 of {row['kind']} {row['p95_ms']} ms (budget < {BUDGET_P95_MS})")
    m = report["memory"]
    if m["fleet_growth_pct"] >= BUDGET_GROWTH_PCT:
        missed.append(f"worker memory (fleet) grew {m['fleet_growth_pct']:+.1f}%")
    worst = m["worst_through_window_pct"]
    if worst is not None and worst >= BUDGET_GROWTH_PCT:
        missed.append(f"a worker alive through the window grew {worst:+.1f}%")
    if m["worst_life_pct"] is not None and m["worst_life_pct"] >= BUDGET_GROWTH_PCT:
        missed.append(f"a worker grew {m['worst_life_pct']:+.1f}% in its life")
    r = report["rate"]
    if r["achieved"] < BUDGET_RATE_SHARE * r["target"] or r["actions_not_started"]:
        missed.append(f"rate not held: {r['achieved']:.1f} of {r['target']:.0f} requests/s")
    return missed


def main() -> int:
    def on_signal(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    workers = os.environ.get("GUNICORN_WORKERS")  # else as gunicorn.conf.py decides
    with prod_check.running_stack(
        title="soak", label="soak", redis_db=REDIS_DB, workers=workers
    ) as stack:
        stack.manage("load_demo", env={"DJANGO_DEBUG": "1"}, what="load_demo")
        script = DATA_SCRIPT.replace("NAMES", repr(loadtest.SUPERVISORS))
        out = stack.manage("shell", "-c", script, what="accounts, keys and routes")
        data = json.loads(out.strip().splitlines()[-1])
        total = WARMUP + SECONDS
        print(
            f"   load: {RATE:g} requests/s for {WARMUP:g} s warm-up + {SECONDS:g} s, "
            f"{len(data['supervisors'])} supervisors, {len(data['projects'])} projects",
            flush=True,
        )
        recorder = Recorder(started=time.monotonic() + 3600)  # logins count as warm-up
        load = Load(stack.base, data, recorder)
        staff = sorted({*data["handler"].values(), *data["staff_issues"]})
        started = time.monotonic()
        load.browsers.log_in_all(sorted(data["supervisors"]))
        load.browsers.log_in_all(staff, per_account=4)
        print(
            f"   logged in: {len(data['supervisors'])} supervisors × {Browsers.PER_ACCOUNT} "
            f"browsers, {len(staff)} staff × 4, in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        load_before = os.getloadavg()
        cpu_before = time.process_time()
        recorder.started = time.monotonic() + 0.5
        sampler = Sampler(stack, recorder.started)
        sampler.sample()
        sampler.start()
        scheduled = run_load(load, recorder, total)
        sampler.stop()
        elapsed = time.monotonic() - recorder.started
        measured = [r for r in recorder.results if r.at >= WARMUP]
        warm = [r for r in recorder.results if r.at < WARMUP]
        window = max(elapsed - WARMUP, 1e-9)
        pool_size = int(stack.env.get("DATABASE_POOL_SIZE", "4"))
        counts = [n for _, n in sampler.connections]
        report = {
            "settings": {
                "seconds": SECONDS,
                "warmup": WARMUP,
                "rate": RATE,
                "threads": THREADS,
                "gunicorn_workers": workers or "gunicorn.conf.py",
                "mix": {k: {"share": w, "requests": n} for k, (w, n) in MIX.items()},
            },
            "kinds": summarize(measured, window),
            "warmup": {"requests": len(warm), "errors": sum(1 for r in warm if not r.ok)},
            "memory": memory_report(sampler, WARMUP),
            "cpu": cpu_report(sampler, WARMUP, measured),
            "connections": {
                "peak": max(counts),
                "mean": statistics.mean(counts),
                "bound": len(sampler.samples[-1][1]) * pool_size + 1,
                "samples": sampler.connections,
            },
            "rate": {
                "target": RATE,
                "achieved": len(measured) / window,
                "requests": len(measured),
                "seconds": window,
                "actions_scheduled": scheduled["actions"],
                "actions_not_started": scheduled["not_started"],
                "lag_p95_ms": loadtest.percentile(recorder.lags, 0.95),
                "lag_max_ms": max(recorder.lags, default=0),
            },
            "filed": load.filed,
            "machine": {
                "cpus": os.cpu_count(),
                "loadavg_before": [round(x, 2) for x in load_before],
                "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                "soak_client_cpu_share": round((time.process_time() - cpu_before) / elapsed, 2),
            },
            "logs": log_findings(stack),
            "error_samples": recorder.errors,
        }
    print_report(report)
    missed = budget(report)
    report["budget_missed"] = missed
    OUT.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"\nwritten: {OUT.relative_to(ROOT)}")
    if missed:
        print("BUDGET MISSED: " + "; ".join(missed))
        return 1
    print(
        f"budget met: 0 errors, p95 < {BUDGET_P95_MS} ms, worker memory < "
        f"{BUDGET_GROWTH_PCT:g} %, rate held"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
